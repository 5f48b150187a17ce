# Shared set-up steps for scripts/demo and scripts/test (sourced, not run).

# setup_python [EXTRAS]: make .venv and install the project with those extras
# (default: everything the tests need).
setup_python() {
  local extras="${1:-test,demo,bench}"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -U pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
}

# setup_python_once EXTRAS: setup_python, skipped when nothing it depends on changed since
# the last run with the same extras (pyproject.toml, the extras, the Python version), so
# scripts/demo and scripts/docs start in about a second the second time. The project is
# installed in editable mode: changes to its code need no reinstall.
setup_python_once() {
  local extras="$1" stamp=".venv/.sessionware-setup-${1//,/-}" want
  want="$(cat pyproject.toml; echo "$extras"; python3 --version 2>&1)"
  want="$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)"
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "setting up .venv with the ${extras} extras (first run takes a minute)" >&2
  setup_python "$extras"
  printf '%s\n' "$want" > "$stamp"
}

setup_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

ensure_services() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting redis on 127.0.0.1:6379" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    echo "starting postgresql on 127.0.0.1:5432" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  fi
  for _ in $(seq 1 30); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "redis or postgresql did not come up" >&2
  return 1
}
