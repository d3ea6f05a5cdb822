import os
import stat

import pytest

from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret
from edge_agent.state.facts import FactStore


def test_facts_persist_merge_and_forget(tmp_path):
    facts = FactStore(tmp_path)
    assert facts.get("t210d") == {}
    facts.set("t210d", pass3_signing_required=True)
    facts.set("t210d", scalers={"1.0.1.8.0.255": [0, 30]})
    again = FactStore(tmp_path)
    assert again.get("t210d") == {
        "pass3_signing_required": True,
        "scalers": {"1.0.1.8.0.255": [0, 30]},
    }
    assert again.get_fact("t210d", "pass3_signing_required") is True
    assert again.forget("t210d", "scalers") == {"pass3_signing_required": True}
    assert again.forget("t210d") == {}
    path = tmp_path / "facts" / "t210d.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "facts",
    [
        {"ek": "00" * 16},
        {"global_key": "x"},
        {"lls_password": "1234"},
        {"notes": Secret(b"k")},
        {"nested": {"a": [b"\x00"]}},
    ],
)
def test_keys_are_never_stored(tmp_path, facts):
    with pytest.raises(ConfigError):
        FactStore(tmp_path).set("m", **facts)
    assert FactStore(tmp_path).get("m") == {}


def test_damaged_file_counts_as_empty(tmp_path):
    facts = FactStore(tmp_path)
    facts.set("m", a=1)
    (tmp_path / "facts" / "m.json").write_text("{broken")
    assert facts.get("m") == {}
    assert facts.set("m", b=2) == {"b": 2}


def test_a_change_by_another_process_is_seen_at_the_next_read(tmp_path):
    # The agent reads its facts from memory while the file is unchanged; another store
    # (another process, e.g. `dlms-edge read` on the same state dir) replaces the file,
    # and that must show.
    agent, cli = FactStore(tmp_path), FactStore(tmp_path)
    agent.set("m", scalers={"1.0.1.8.0.255": [0, 30]}, serial="A1")
    assert agent.get_fact("m", "serial") == "A1"
    cli.forget("m", "scalers")
    assert agent.get("m") == {"serial": "A1"}
    cli.set("m", serial="B2")
    assert agent.get_fact("m", "serial") == "B2"
    (tmp_path / "facts" / "m.json").unlink()
    assert agent.get("m") == {}
    assert agent.set("m", a=1) == {"a": 1}


def test_what_a_caller_changes_in_a_returned_set_stays_its_own(tmp_path):
    facts = FactStore(tmp_path)
    returned = facts.set("m", a=1, b={"x": 1})
    returned["a"] = 2
    got = facts.get("m")
    got["c"] = 3
    del got["b"]
    assert facts.get("m") == {"a": 1, "b": {"x": 1}}
    assert FactStore(tmp_path).get("m") == {"a": 1, "b": {"x": 1}}


def test_an_update_merges_into_the_file_even_where_a_read_could_not_see_the_change(tmp_path):
    # A change that keeps the inode, the size and the modification time (an inode number
    # reused within one tick of a coarse clock) can hide from the in-memory read; an
    # update must still start from the file, so the other writer's fact is not lost.
    facts = FactStore(tmp_path)
    facts.set("m", serial="A1")
    path = tmp_path / "facts" / "m.json"
    before = path.stat()
    changed = path.read_bytes().replace(b'"A1"', b'"B2"')
    with path.open("r+b") as file:
        file.write(changed)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size) == (before.st_ino, before.st_size)
    assert facts.set("m", a=1) == {"serial": "B2", "a": 1}
    assert FactStore(tmp_path).get("m") == {"serial": "B2", "a": 1}
