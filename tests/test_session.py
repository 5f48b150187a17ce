"""session.py: the Session mapping, its change tracking and its lifecycle verbs."""

from __future__ import annotations

import math

import pytest

from sessionware import SessionConfig
from sessionware.core import SessionCore
from sessionware.exceptions import SessionTooLargeError, StoreError
from sessionware.session import CSRF_FIELD, Session
from sessionware.stores import MemoryStore
from sessionware.testing import ManualClock
from sessionware.tokens import new_session_id
from tests.helpers import SECRET


@pytest.fixture
def core() -> SessionCore:
    """A core on a development memory store with a hand-moved clock."""
    clock = ManualClock()
    return SessionCore(
        SessionConfig(secrets=[SECRET], clock=clock, max_size=1024),
        MemoryStore(development=True, clock=clock),
    )


async def stored(core: SessionCore, **values: object) -> Session:
    """A session with ``values`` that was saved and loaded back, as on a second request."""
    s = Session(core, None, None)
    s.update(values)
    await s.save()
    sid = s.id
    fields = await core.store.load(core.key(sid))
    assert fields is not None
    return Session(core, sid, fields)


def test_non_json_value_raises_type_error_naming_the_key(core: SessionCore) -> None:
    """Setting a value JSON cannot hold raises TypeError naming the key, and sets nothing."""
    s = Session(core, None, None)
    with pytest.raises(TypeError, match="'when'") as info:
        s["when"] = object()
    assert "nothing was written" in str(info.value)
    assert "when" not in s
    assert not s.modified


@pytest.mark.parametrize("bad", [{1, 2}, b"bytes", math.nan, math.inf, {"k": object()}])
def test_values_json_refuses_are_refused(core: SessionCore, bad: object) -> None:
    """Sets, bytes, NaN, infinity and nested non-JSON values are all refused with TypeError."""
    s = Session(core, None, None)
    with pytest.raises(TypeError):
        s["x"] = bad


def test_update_with_one_bad_value_sets_none(core: SessionCore) -> None:
    """update() checks every value first: one bad value means no key is set."""
    s = Session(core, None, None)
    with pytest.raises(TypeError, match="'b'"):
        s.update({"a": 1, "b": object(), "c": 3})
    assert dict(s) == {}
    assert s.changes() == ({}, [])


def test_non_string_key_is_refused(core: SessionCore) -> None:
    """Keys must be str, since they become JSON object keys."""
    s = Session(core, None, None)
    with pytest.raises(TypeError, match="str"):
        s[1] = "x"  # type: ignore[index]


def test_value_over_max_size_is_refused_clearly(core: SessionCore) -> None:
    """A single value over max_size raises SessionTooLargeError naming the key and the limit."""
    s = Session(core, None, None)
    with pytest.raises(SessionTooLargeError, match=r"'blob'.*max_size=1024"):
        s["blob"] = "x" * 2000
    assert "blob" not in s


def test_session_over_max_size_in_total_is_refused_at_write(core: SessionCore) -> None:
    """Many values that together pass max_size are refused when the write is planned."""
    s = Session(core, None, None)
    for i in range(5):
        s[f"k{i}"] = "x" * 300
    with pytest.raises(SessionTooLargeError, match="nothing was written"):
        core.plan(s, core.clock())


def test_size_limit_counts_bytes_not_characters(core: SessionCore) -> None:
    """max_size is in bytes: 400 four-byte characters (1600 bytes) exceed 1024."""
    s = Session(core, None, None)
    with pytest.raises(SessionTooLargeError):
        s["emoji"] = "🙂" * 400


@pytest.mark.anyio
async def test_in_place_change_of_nested_value_is_saved(core: SessionCore) -> None:
    """Appending to a list held in the session is noticed and written."""
    s = await stored(core, cart=["apple"])
    s["cart"].append("pear")
    assert s.modified
    sets, dels = s.changes()
    assert sets == {".cart": '["apple","pear"]'} and dels == []


@pytest.mark.anyio
async def test_in_place_change_after_a_mid_request_save_is_saved(core: SessionCore) -> None:
    """A list set, saved with save(), then appended to in the same request is written again."""
    s = Session(core, None, None)
    s["cart"] = ["apple"]
    await s.save()
    assert not s.modified
    s["cart"].append("pear")
    assert s.modified
    assert s.changes() == ({".cart": '["apple","pear"]'}, [])


@pytest.mark.anyio
async def test_plain_values_skip_the_nested_comparison(core: SessionCore) -> None:
    """A session holding no list or dict is never re-encoded to look for in-place changes."""
    s = await stored(core, n=1, name="ada")
    assert s.get("n") == 1 and not s._nested
    nested = await stored(core, cart=[1])
    assert nested.get("cart") == [1] and nested._nested


@pytest.mark.anyio
async def test_unchanged_loaded_session_has_no_changes(core: SessionCore) -> None:
    """Reading every value of a loaded session changes nothing."""
    s = await stored(core, user="ada", cart=["apple"], prefs={"a": 1})
    assert dict(s) == {"user": "ada", "cart": ["apple"], "prefs": {"a": 1}}
    assert not s.modified
    assert s.changes() == ({}, [])


@pytest.mark.anyio
async def test_delete_pop_and_clear_record_deletions(core: SessionCore) -> None:
    """del, pop and clear each mark stored keys for deletion."""
    s = await stored(core, a=1, b=2, c=3)
    del s["a"]
    assert s.pop("b") == 2
    assert s.pop("missing", "dflt") == "dflt"
    # ".o", the key-order hint, goes too: one key left has no order to keep.
    assert sorted(s.changes()[1]) == [".a", ".b", "o"]
    s.clear()
    assert sorted(s.changes()[1])[:3] == [".a", ".b", ".c"]


@pytest.mark.anyio
async def test_metadata_is_kept_out_of_the_mapping(core: SessionCore) -> None:
    """Metadata fields are readable with get_meta and invisible as session keys."""
    s = Session(core, None, None)
    s["user"] = "ada"
    s.set_meta("u", "42")
    await s.save()
    loaded = Session(core, s.id, await core.store.load(s.key))
    assert dict(loaded) == {"user": "ada"}
    assert loaded.get_meta("u") == "42"
    loaded.clear()  # clear() ends the session: its metadata (a login) goes with it
    assert loaded.get_meta("u") is None


@pytest.mark.parametrize("name", ["", ".x", "c", "a"])
def test_reserved_metadata_names_are_refused(core: SessionCore, name: str) -> None:
    """Metadata names may not be empty, start with a dot, or be the time fields."""
    with pytest.raises(ValueError):
        Session(core, None, None).set_meta(name, "x")


@pytest.mark.anyio
async def test_set_meta_none_deletes_the_field(core: SessionCore) -> None:
    """set_meta(name, None) removes a stored metadata field."""
    s = Session(core, None, None)
    s["x"] = 1
    s.set_meta("u", "42")
    await s.save()
    loaded = Session(core, s.id, await core.store.load(s.key))
    loaded.set_meta("u", None)
    assert loaded.changes() == ({}, ["u"])


@pytest.mark.anyio
async def test_regenerate_drops_csrf_secret_keeps_other_metadata(core: SessionCore) -> None:
    """regenerate() keeps data and metadata such as the user id, but not the CSRF secret."""
    s = Session(core, None, None)
    s["user"] = "ada"
    s.set_meta("u", "42")
    s.set_meta(CSRF_FIELD, "old-csrf-secret")
    await s.save()
    old_id, old_key = s.id, s.key
    loaded = Session(core, old_id, await core.store.load(old_key))
    await loaded.regenerate()
    await loaded.save()
    assert loaded.id != old_id
    assert await core.store.load(old_key) is None
    fields = dict(await core.store.load(loaded.key) or {})
    assert fields[".user"] == '"ada"'
    assert fields["u"] == "42"
    assert CSRF_FIELD not in fields
    assert loaded.get_meta(CSRF_FIELD) is None


@pytest.mark.anyio
async def test_destroy_then_set_starts_a_new_session(core: SessionCore) -> None:
    """After destroy(), setting a value starts a fresh session with a new id and no old data."""
    s = await stored(core, user="ada")
    old_id = s.id
    await s.destroy()
    assert dict(s) == {}
    s["theme"] = "dark"
    await s.save()
    assert s.id != old_id
    assert dict(await core.store.load(s.key) or {}).keys() >= {".theme"}
    assert ".user" not in dict(await core.store.load(s.key) or {})


@pytest.mark.anyio
async def test_reload_drops_unsaved_changes(core: SessionCore) -> None:
    """reload() re-reads the record, dropping what this request had not saved."""
    s = await stored(core, user="ada")
    s["user"] = "mallory"
    await s.reload()
    assert s["user"] == "ada"
    assert not s.modified


@pytest.mark.anyio
async def test_reload_of_a_vanished_session_leaves_it_empty(core: SessionCore) -> None:
    """reload() after the record was deleted elsewhere gives an empty session, flagged vanished."""
    s = await stored(core, user="ada")
    await core.store.delete(s.key)
    await s.reload()
    assert dict(s) == {}
    assert s.vanished


@pytest.mark.anyio
async def test_touch_refreshes_even_inside_the_throttle(core: SessionCore) -> None:
    """touch() writes the activity time now, whatever touch_interval says."""
    s = await stored(core, user="ada")
    clock = core.clock
    assert isinstance(clock, ManualClock)
    clock.advance(1)
    await s.touch()
    fields = dict(await core.store.load(s.key) or {})
    assert fields["a"] == str(int(clock.now))


@pytest.mark.anyio
async def test_touch_of_a_vanished_session_raises(core: SessionCore) -> None:
    """touch() on a session deleted meanwhile raises a StoreError rather than recreating it."""
    s = await stored(core, user="ada")
    await core.store.delete(s.key)
    with pytest.raises(StoreError):
        await s.touch()
    assert await core.store.load(s.key) is None


@pytest.mark.anyio
async def test_save_of_a_vanished_session_does_not_resurrect(core: SessionCore) -> None:
    """save() after the record was deleted elsewhere writes nothing back."""
    s = await stored(core, user="ada")
    key = s.key
    await core.store.delete(key)
    s["user"] = "mallory"
    await s.save()
    assert await core.store.load(key) is None
    assert s.vanished


def test_new_session_flags(core: SessionCore) -> None:
    """A new session is_new, unmodified, and gets an id only when asked."""
    s = Session(core, None, None)
    assert s.is_new and not s.modified and not s.accessed
    assert s.created is None and s.last_seen is None
    assert len(s.id) == 43
    assert s.key == core.key(s.id)


def test_repr_shows_no_id_or_values(core: SessionCore) -> None:
    """repr() names the keys, never the id or the values."""
    sid = new_session_id()
    s = Session(core, sid, {"c": "1", "a": "1", ".user": '"secret-value"'})
    assert s["user"] == "secret-value"  # loads the data, so repr lists keys
    text = repr(s)
    assert sid not in text
    assert "secret-value" not in text
    assert "user" in text


def test_update_with_a_non_string_key_sets_none(core: SessionCore) -> None:
    """update() refuses a non-str key before setting any of the other keys."""
    s = Session(core, None, None)
    with pytest.raises(TypeError, match="str"):
        s.update([("a", 1), (2, "b")])
    assert dict(s) == {}


def test_update_accepts_pairs_and_keywords(core: SessionCore) -> None:
    """update() takes a mapping or pairs, plus keywords, like dict.update."""
    s = Session(core, None, None)
    s.update([("a", 1)], b=2)
    s.update({"c": 3})
    assert dict(s) == {"a": 1, "b": 2, "c": 3}


@pytest.mark.anyio
async def test_touch_is_not_repeated_at_the_end_of_the_request(core: SessionCore) -> None:
    """After touch(), the response plans no second refresh of the same session."""
    s = await stored(core, user="ada")
    clock = core.clock
    assert isinstance(clock, ManualClock)
    clock.advance(120)  # well past touch_interval
    await s.touch()
    assert core.plan(s, clock.now) is None


@pytest.mark.anyio
async def test_repr_does_not_count_as_reading_the_session(core: SessionCore) -> None:
    """Logging a session (repr) leaves it unread, so the response gets no Vary: Cookie."""
    fresh = Session(core, None, None)
    assert "new keys=[]" in repr(fresh)
    assert not fresh.accessed
    s = await stored(core, a=1)
    loaded = Session(core, s.id, await core.store.load(s.key))
    assert "['a']" in repr(loaded) and not loaded.accessed
    loaded.get("a")
    assert "['a']" in repr(loaded) and loaded.accessed


@pytest.mark.parametrize(
    "text", ["[NaN]", '{"a":Infinity}', "-Infinity", "[1e999]", '["\\ud800"]', '{"\\udc80":1}']
)
def test_loads_refuses_what_dumps_could_not_write_back(text: str) -> None:
    """A stored value holding NaN, an infinity or a lone surrogate is refused with
    ValueError, so a damaged record opens as no session instead of failing the response
    that re-encodes it (found by record fuzzing: a nested ``[NaN]`` answered 500)."""
    from sessionware.session import loads

    with pytest.raises(ValueError):
        loads(text)


def test_a_record_holding_nan_in_a_container_opens_as_no_session(core: SessionCore) -> None:
    """The core's open path turns the refusal into "no session" (never an exception)."""
    now = str(int(core.clock()))
    fields = {"c": now, "a": now, ".cart": "[1,NaN]"}
    session, _ = core.opened("sid=v", ("x" * 43, "k" * 64), fields, Session)
    assert session.is_new and dict(session) == {}
