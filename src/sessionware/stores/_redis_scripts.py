"""The Lua scripts behind :class:`~sessionware.stores.redis.RedisStore`.

Each script touches one key, so it runs unchanged on Redis Cluster, and each is
atomic because Redis runs a script to the end before serving anything else
(https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
They are sent with EVALSHA; when a server has not seen a script yet (a restart, a
new cluster node) the store loads it and sends the command again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["APPLY", "CREATE", "INCR", "INCR_EXISTING", "SCRIPTS", "Script"]

# Lua's unpack() pushes every value on the C stack, which holds about 8000 slots
# (LUAI_MAXCSTACK), so large field lists are written in chunks. The chunk is even so
# HSET's field/value pairs never split.
_EACH = """
local function each(cmd, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call(cmd, KEYS[1], unpack(ARGV, i, j))
    i = j + 1
  end
end
"""


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua source and its SHA-1, the name EVALSHA knows it by."""

    name: str
    source: str

    @property
    def sha(self) -> str:
        """The SHA-1 hex digest Redis files the script under."""
        return hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


#: KEYS[1] record; ARGV[1] ttl in ms, ARGV[2] n = number of fields to set, then n
#: field/value pairs, then the fields to delete. Returns 1, or 0 (and changes nothing)
#: when the record is gone: a slow request never resurrects a destroyed session.
APPLY = Script(
    "apply",
    _EACH
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = 2 + 2 * tonumber(ARGV[2])
if last > 2 then each('HSET', 3, last) end
if #ARGV > last then each('HDEL', last + 1, #ARGV) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
""",
)

#: KEYS[1] record; ARGV[1] ttl in ms, then field/value pairs. Returns 0 when the key
#: is taken (the core then retries with a new id), else writes and returns 1.
CREATE = Script(
    "create",
    _EACH
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
each('HSET', 2, #ARGV)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
""",
)

#: KEYS[1] record; ARGV[1] field, ARGV[2] amount, ARGV[3] ttl in ms. The expiry is set
#: only when the key has none, i.e. when HINCRBY just created it: a counter keeps the
#: window it started with.
INCR = Script(
    "incr",
    """
local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return value
""",
)

#: KEYS[1] record; ARGV[1] field, ARGV[2] amount. HINCRBY only when the record
#: exists, leaving its expiry alone; returns the new value, or nil (and creates
#: nothing) when the record is gone: an increment never resurrects a destroyed session.
INCR_EXISTING = Script(
    "incr_existing",
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
""",
)

SCRIPTS = (APPLY, CREATE, INCR, INCR_EXISTING)
