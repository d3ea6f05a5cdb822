"""Topic contract (docs/mqtt-contract.md) and id validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.errors import ConfigError
from edge_agent.mqtt.topics import Topics, check_id, obis_leaf


def test_every_contract_topic() -> None:
    t = Topics("dlms", "pi-kitchen")
    assert t.status() == "dlms/pi-kitchen/status"
    assert t.info("t210d") == "dlms/pi-kitchen/t210d/info"
    assert t.availability("t210d") == "dlms/pi-kitchen/t210d/availability"
    assert t.health("t210d") == "dlms/pi-kitchen/t210d/health"
    assert t.state("t210d") == "dlms/pi-kitchen/t210d/state"
    assert t.value("t210d", "1.0.1.8.0.255") == "dlms/pi-kitchen/t210d/1.0.1.8.0.255"
    assert t.profile("t210d", "1-0:99.1.0*255") == "dlms/pi-kitchen/t210d/profile/1.0.99.1.0.255"
    assert t.all_topics() == "dlms/pi-kitchen/#"


def test_multi_level_prefix() -> None:
    assert Topics("home/meters", "pi").status() == "home/meters/pi/status"


@pytest.mark.parametrize(("text", "leaf"), [
    ("1.0.1.8.0.255", "1.0.1.8.0.255"),
    ("1-0:1.8.0*255", "1.0.1.8.0.255"),
    ("1-0:1.8.0.255", "1.0.1.8.0.255"),
    ("1-0:32.7.0", "1.0.32.7.0.255"),
    (" 0.0.1.0.0.255 ", "0.0.1.0.0.255"),
    (b"\x01\x00\x01\x08\x00\xff", "1.0.1.8.0.255"),
    ((0, 0, 96, 1, 0, 255), "0.0.96.1.0.255"),
])
def test_obis_leaf_forms(text: object, leaf: str) -> None:
    assert obis_leaf(text) == leaf


@pytest.mark.parametrize("bad", ["1.8.0", "1.0.1.8.0.256", "a.b.c.d.e.f", "", b"\x01\x02",
                                 (1, 2, 3, 4, 5, 6, 7), (1, 0, 1, 8, 0, -1), 3.14])
def test_obis_leaf_rejects(bad: object) -> None:
    with pytest.raises(ConfigError, match="OBIS"):
        obis_leaf(bad)


@given(st.lists(st.integers(0, 255), min_size=6, max_size=6))
def test_obis_leaf_round_trip(groups: list[int]) -> None:
    leaf = obis_leaf(bytes(groups))
    assert obis_leaf(leaf) == leaf
    assert [int(g) for g in leaf.split(".")] == groups


@pytest.mark.parametrize(("bad", "why"), [
    ("", "empty"), ("a/b", "separator"), ("a+b", "wildcard"), ("meter#1", "wildcard"),
    ("$SYS", "reserves"), (" pi", "spaces"), (7, "text"), ("a\x00", "NUL"),
])
def test_bad_ids_are_config_errors(bad: object, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        check_id(bad, "meter id")
    with pytest.raises(ConfigError):
        Topics("dlms", bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Topics("dlms", "pi").info(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "/dlms", "dlms/", "dl+ms", "a//b", "#"])
def test_bad_prefix(bad: str) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        Topics(bad, "pi")


def test_topics_is_frozen() -> None:
    t = Topics("dlms", "pi")
    with pytest.raises(AttributeError):
        t.agent = "x"  # type: ignore[misc]
