"""``python -m build`` makes a wheel and an sdist that hold everything the package needs
at run time, and the wheel installs into a fresh virtualenv and imports cleanly."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "sessionware"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel (built from the sdist, as ``python -m build`` does)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("sessionware-*-py3-none-any.whl")
    return wheel


def _data_files() -> set[str]:
    """Every non-Python file the package reads at run time, as wheel paths."""
    found = set()
    for path in PACKAGE.rglob("*"):
        cached = "__pycache__" in path.parts
        if path.is_file() and path.suffix not in (".py", ".pyc") and not cached:
            found.add(path.relative_to(PACKAGE.parent).as_posix())
    return found


def test_wheel_holds_templates_static_files_data_and_py_typed(dist: Path) -> None:
    """Templates, static files, the password list and its NOTICE, and py.typed are in
    the wheel, beside every module; tests are not."""
    names = set(zipfile.ZipFile(_wheel(dist)).namelist())
    wanted = _data_files()
    assert {
        "sessionware/py.typed",
        "sessionware/data/common-passwords.txt.gz",
        "sessionware/demo/templates/login.html",
        "sessionware/demo/static/style.css",
    } <= wanted
    assert wanted - names == set()
    modules = {p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py")}
    assert modules - names == set()
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_metadata_declares_license_python_and_extras(dist: Path) -> None:
    """The METADATA names the license (and ships the file), Python >= 3.11, the core
    dependencies (python-multipart among them) and every extra."""
    wheel = zipfile.ZipFile(_wheel(dist))
    meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(wheel.read(meta_name).decode())
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    assert set(meta.get_all("Provides-Extra") or []) >= {
        "redis", "postgres", "auth", "flask", "demo", "docs", "test"
    }
    core = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert any(r.startswith("python-multipart") for r in core)
    assert any(r.startswith("starlette") for r in core)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    entry = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "sessionware = sessionware.cli:main" in wheel.read(entry).decode()


def test_sdist_holds_the_sources_license_and_readme(dist: Path) -> None:
    """The sdist can rebuild the wheel: pyproject, README, LICENSE and the data files."""
    (sdist,) = dist.glob("sessionware-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "LICENSE"} <= names
    assert {f"src/{f}" for f in _data_files()} - names == set()


def test_wheel_installs_and_imports_in_a_fresh_virtualenv(
    dist: Path, tmp_path: Path
) -> None:
    """A new virtualenv with only the wheel (and its declared dependencies) imports the
    package, the CSRF layer and the SQLite store, and runs the console script."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    install = subprocess.run(
        [*pip, str(_wheel(dist))],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    code = (
        "import sessionware, sessionware.csrf, sessionware.cli\n"
        "from sessionware.stores import SQLiteStore\n"
        "from importlib import resources\n"
        "assert resources.files('sessionware').joinpath('py.typed').is_file()\n"
        "print(sessionware.__version__)\n"
    )
    run = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0.1.0"
    version = subprocess.run(
        [str(venv / "bin" / "sessionware"), "--version"], capture_output=True, text=True
    )
    assert version.stdout.strip() == "sessionware 0.1.0"


FLASK_USER = """
import os, re, runpy, sys
os.environ["SECRET_KEY"] = "k" * 64
os.environ["SESSIONWARE_STORE"] = "sqlite:///" + os.path.abspath("sessions.sqlite3")
app = runpy.run_path(sys.argv[1])["app"]
client = app.test_client()
assert client.get("/").status_code == 302, "login_required lets a stranger in"
page = client.get("/login").text
token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
form = {"username": "ada", "password": "correct horse battery staple", "_csrf": token,
        "remember": "on"}
assert client.post("/login", data=form).status_code == 302
print(client.get("/").get_json()["user"])
client.delete_cookie("sid")  # the session cookie gone: remember-me signs the browser in
print(client.get("/").get_json()["user"], client.get("/").get_json()["visits"])
"""


def test_the_flask_extra_runs_the_readme_flask_app_in_a_fresh_virtualenv(
    dist: Path, tmp_path: Path
) -> None:
    """What a Flask user does: ``pip install 'sessionware[flask]'`` and nothing else, then
    the README's app (examples/flask_app.py): CSRF token, password login, remember-me."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"{_wheel(dist)}[flask]"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    run = subprocess.run(
        [str(python), "-c", FLASK_USER, str(ROOT / "examples" / "flask_app.py")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["ada", "ada", "2"]
