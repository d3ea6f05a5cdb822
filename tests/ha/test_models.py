"""Payload parsing, the OBIS description table and the translations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from payloads import INFO, SERIAL, SYSTEM_TITLE, info_payload

from custom_components.dlms_edge.const import HEALTH_CODE_OTHER, HEALTH_CODES
from custom_components.dlms_edge.models import (
    Health,
    InvalidPayload,
    MeterInfo,
    MeterTopic,
    Reading,
    parse_discovery,
    parse_time,
    valid_prefix,
)
from custom_components.dlms_edge.sensor import describe_obis
from custom_components.dlms_edge.statistics import ProfileRow

INTEGRATION = Path(__file__).parents[2] / "custom_components" / "dlms_edge"


def load(name: str) -> dict[str, Any]:
    return json.loads((INTEGRATION / name).read_text(encoding="utf-8"))


def test_info_round_trip() -> None:
    info = MeterInfo.from_payload(info_payload())
    assert info.unique_id == SERIAL
    assert info.system_title == SYSTEM_TITLE
    assert info.objects[0].unit == "Wh"
    assert MeterInfo.from_dict(info.as_dict()) == info


def test_info_ignores_unknown_keys_and_fills_optional() -> None:
    info = MeterInfo.from_payload(
        json.dumps(
            {
                "agent": "a",
                "meter": "m",
                "serial": "S1",
                "future": 1,
                "objects": [{"obis": "1.0.1.8.0.255", "extra": True}],
            }
        )
    )
    assert info.manufacturer is None and info.system_title is None
    assert info.objects[0].name is None
    assert info.title == "Meter m"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"serial": None, "system_title": None}, "no identity"),
        ({"agent": "a/b"}, "one MQTT topic level"),
        ({"meter": "+"}, "one MQTT topic level"),
        ({"serial": 5}, "expected a string"),
        ({"system_title": "53414d"}, "16 hex digits"),
        ({"objects": [{"obis": "1.0.1.8.0.255"}, {"obis": "1.0.1.8.0.255"}]}, "twice"),
        ({"objects": [{"obis": "1-0:1.8.0"}]}, "OBIS code"),
        ({"objects": [{"obis": "1.0.1.8.0.255", "class_id": True}]}, "class id"),
        ({"objects": "none"}, "objects"),
    ],
)
def test_info_rejected(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        MeterInfo.from_payload(info_payload(**changes))


@pytest.mark.parametrize("payload", ["", "{", "null", "1", '"x"', b"\x80"])
def test_info_not_an_object(payload: str | bytes) -> None:
    with pytest.raises(InvalidPayload):
        MeterInfo.from_payload(payload)


def test_discovery_checks_topic_against_payload() -> None:
    prefix, info = parse_discovery("home/dlms/pi-kitchen/1SAG67929081/info", info_payload())
    assert prefix == "home/dlms" and info.agent == "pi-kitchen"
    with pytest.raises(InvalidPayload, match="published for"):
        parse_discovery("dlms/pi-kitchen/OTHER/info", info_payload())
    with pytest.raises(InvalidPayload, match="not <prefix>"):
        parse_discovery("pi-kitchen/1SAG/info", info_payload())


def test_topic_parse() -> None:
    assert MeterTopic.parse("a/b/c/ag/me/1.0.1.8.0.255") == MeterTopic(
        "a/b/c", "ag", "me", "1.0.1.8.0.255"
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"state": "ok", "code": null, "message": "", "since": "t"}', Health("ok", None, "", "t")),
        (
            '{"state": "problem", "code": "wrong_key", "message": "m"}',
            Health("problem", "wrong_key", "m", None),
        ),
    ],
)
def test_health(payload: str, expected: Health) -> None:
    assert Health.from_payload(payload) == expected


@pytest.mark.parametrize(
    "payload", ['{"state": "problem"}', '{"state": "bad"}', '{"code": "x"}', "ok"]
)
def test_health_rejected(payload: str) -> None:
    with pytest.raises(InvalidPayload):
        Health.from_payload(payload)


def test_reading() -> None:
    assert Reading.from_payload('{"value": 1.5, "unit": "kWh", "ts": "t"}') == Reading(
        1.5, "kWh", "t"
    )
    assert Reading.from_payload('{"value": null}') == Reading(None, None, None)
    assert Reading.from_payload('{"value": [1, "a"]}').value == [1, "a"]
    for bad in ('{"value": {"a": 1}}', '{"unit": "W"}', '{"value": 1, "unit": 5}', "[]"):
        with pytest.raises(InvalidPayload):
            Reading.from_payload(bad)


@pytest.mark.parametrize(
    ("raw", "expected"), [(" dlms ", "dlms"), ("/home/dlms/", "home/dlms"), ("a/b", "a/b")]
)
def test_prefix(raw: str, expected: str) -> None:
    assert valid_prefix(raw) == expected


@pytest.mark.parametrize(
    ("obis", "key", "placeholders"),
    [
        ("1.0.1.8.0.255", "energy_import", None),
        ("1.0.2.8.3.255", "energy_export_tariff", {"tariff": "3"}),
        ("1.0.21.7.0.255", "power_import_phase", {"phase": "L1"}),
        ("1.0.52.7.0.255", "voltage_phase", {"phase": "L2"}),
        ("1.0.71.7.0.255", "current_phase", {"phase": "L3"}),
        ("1.0.91.7.0.255", "current_phase", {"phase": "N"}),
        ("1.0.73.7.0.255", "power_factor_phase", {"phase": "L3"}),
        ("1.0.16.7.0.255", "power_net", None),
        ("1.1.14.7.0.255", "frequency", None),
    ],
)
def test_known_obis(obis: str, key: str, placeholders: dict[str, str] | None) -> None:
    description = describe_obis(obis)
    assert description is not None
    assert (description.translation_key, description.translation_placeholders) == (
        key,
        placeholders,
    )


@pytest.mark.parametrize(
    "obis",
    [
        "1.0.1.8.0.101",  # billing period value, not the current one
        "7.0.3.0.0.255",  # gas
        "0.0.96.1.0.255",  # abstract
        "1.0.1.7.1.255",  # power per tariff: not a register we name
        "1.0.34.7.0.255",  # L1 frequency does not exist
        "1.0.21.8.1.255",  # phase and tariff at once
        "1.0.99.1.0.255",  # load profile
    ],
)
def test_unknown_obis(obis: str) -> None:
    assert describe_obis(obis) is None


def _keys(tree: dict[str, Any], path: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        here = f"{path}.{key}" if path else key
        out |= _keys(value, here) if isinstance(value, dict) else {here}
    return out


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


def test_translations_complete_and_consistent() -> None:
    strings = load("strings.json")
    assert load("translations/en.json") == strings
    german = load("translations/de.json")
    assert _keys(german) == _keys(strings)
    for key in _keys(strings):
        english, deutsch = strings, german
        for part in key.split("."):
            english, deutsch = english[part], deutsch[part]
        assert _placeholders(english) == _placeholders(deutsch), key
    assert "[%key:" not in json.dumps(strings)  # custom integrations cannot resolve these


def test_every_reachable_translation_key_exists() -> None:
    from custom_components.dlms_edge.models import MeterObject
    from custom_components.dlms_edge.sensor import (
        _ABSTRACT_NAMES,
        CLOCK_DRIFT_DESCRIPTION,
        build_description,
    )

    names = load("strings.json")["entity"]["sensor"]
    reachable = {}
    for c in range(256):
        for d in range(256):
            for e in range(10):
                if (description := describe_obis(f"1.0.{c}.{d}.{e}.255")) is not None:
                    reachable[description.translation_key] = description.translation_placeholders
    for obis in _ABSTRACT_NAMES:
        description = build_description(MeterObject(obis, None, 1, None, None, None))
        reachable[description.translation_key] = description.translation_placeholders
    reachable[CLOCK_DRIFT_DESCRIPTION.translation_key] = None
    assert set(reachable) == set(names)
    for key, placeholders in reachable.items():
        assert _placeholders(names[key]["name"]) == set(placeholders or ()), key


def test_every_health_code_has_an_issue_text() -> None:
    from custom_components.dlms_edge.issues import AGENT_OFFLINE, METER_REMOVED

    issues = load("strings.json")["issues"]
    assert set(issues) == HEALTH_CODES | {HEALTH_CODE_OTHER, AGENT_OFFLINE, METER_REMOVED}
    assert "confirm" in issues[METER_REMOVED]["fix_flow"]["step"]


def test_manifest_and_hacs() -> None:
    manifest = load("manifest.json")
    assert manifest["domain"] == "dlms_edge"
    assert manifest["mqtt"] == ["dlms/+/+/info"]
    assert manifest["dependencies"] == ["mqtt"]
    assert manifest["iot_class"] == "local_push"
    assert manifest["config_flow"] is True
    hacs = json.loads((INTEGRATION.parents[1] / "hacs.json").read_text())
    assert hacs["homeassistant"] == "2025.4.0" and hacs["render_readme"] is True


def test_info_fixture_matches_contract_example() -> None:
    """The fixture's first object is the one docs/mqtt-contract.md shows."""
    contract = (INTEGRATION.parents[1] / "docs" / "mqtt-contract.md").read_text()
    example = json.loads(contract.split("```json", 1)[1].split("```", 1)[0])
    assert MeterInfo.from_dict(example).objects[0] == MeterInfo.from_dict(INFO).objects[0]


def test_flow_texts_exist_for_every_step_error_and_abort() -> None:
    """pytest-homeassistant-custom-component does not check flow translations; we do."""
    source = (INTEGRATION / "config_flow.py").read_text()
    config = load("strings.json")["config"]
    flow_source, options_source = source.split("class DlmsEdgeOptionsFlow", 1)
    for step in re.findall(r'step_id="(\w+)"', flow_source):
        assert step in config["step"], step
    for step in re.findall(r'step_id="(\w+)"', options_source):
        assert step in load("strings.json")["options"]["step"], step
    for reason in re.findall(r'reason="(\w+)"', flow_source):
        assert reason in config["abort"], reason
    for reason in re.findall(r'reason="(\w+)"', options_source):
        assert reason in load("strings.json")["options"]["abort"], reason
    for error in re.findall(r'errors\[[^]]+\] = "(\w+)"', source):
        assert error in config["error"], error
    assert "init" in load("strings.json")["options"]["step"]
    init = (INTEGRATION / "__init__.py").read_text()
    for key in re.findall(r'translation_key="(\w+)"', init):
        assert key in load("strings.json")["exceptions"], key


@pytest.mark.parametrize(
    ("obis", "unit", "device_class", "ha_unit", "suggested"),
    [
        ("1.0.1.8.0.255", "Wh", "energy", "Wh", "kWh"),
        ("1.0.1.8.0.255", "kWh", "energy", "kWh", "kWh"),
        # A unit that does not fit the class: keep the value, drop the class.
        ("1.0.1.8.0.255", "VAh", None, "VAh", None),
        ("1.0.32.7.0.255", None, None, None, None),
        ("1.0.13.7.0.255", None, "power_factor", None, None),
        ("1.0.13.7.0.255", "%", "power_factor", "%", None),
    ],
)
def test_build_description_units(
    obis: str,
    unit: str | None,
    device_class: str | None,
    ha_unit: str | None,
    suggested: str | None,
) -> None:
    from custom_components.dlms_edge.models import MeterObject
    from custom_components.dlms_edge.sensor import build_description

    description = build_description(MeterObject(obis, None, 3, unit, None, None))
    assert description.device_class == device_class
    assert description.native_unit_of_measurement == ha_unit
    assert description.suggested_unit_of_measurement == suggested
    assert description.entity_registry_enabled_default


def test_generic_description_from_info() -> None:
    from custom_components.dlms_edge.models import MeterObject
    from custom_components.dlms_edge.sensor import build_description

    gas = build_description(
        MeterObject("7.0.3.0.0.255", "Gas volume", 4, "m3", "gas", "total_increasing")
    )
    assert (gas.name, gas.device_class, gas.state_class) == (
        "Gas volume",
        "gas",
        "total_increasing",
    )
    assert gas.native_unit_of_measurement == "m³"
    assert not gas.entity_registry_enabled_default
    odd = build_description(MeterObject("0.0.96.50.0.255", None, 1, None, "nonsense", "weird"))
    assert (odd.name, odd.device_class, odd.state_class) == ("OBIS 0.0.96.50.0.255", None, None)


def test_brand_images_for_hacs() -> None:
    """HACS and Home Assistant 2026.x read brand images from the integration folder."""
    from PIL import Image

    for name, size in (
        ("icon.png", 256),
        ("icon@2x.png", 512),
        ("dark_icon.png", 256),
        ("dark_icon@2x.png", 512),
    ):
        with Image.open(INTEGRATION / "brand" / name) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (size, size), "RGBA"), name


def test_icons_name_translated_entities() -> None:
    icons = load("icons.json")["entity"]
    names = load("strings.json")["entity"]
    for platform, keys in icons.items():
        for key, icon in keys.items():
            assert key in names[platform], (platform, key)
            assert icon["default"].startswith("mdi:"), key


def test_quality_scale_lists_every_rule_with_a_status() -> None:
    import yaml

    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    expected = {
        # bronze
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow-test-coverage",
        "config-flow",
        "dependency-transparency",
        "docs-actions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
        # silver
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
        # gold
        "devices",
        "diagnostics",
        "discovery-update-info",
        "discovery",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
        # platinum
        "async-dependency",
        "inject-websession",
        "strict-typing",
    }
    assert set(rules) == expected
    for rule, status in rules.items():
        if isinstance(status, dict):
            assert status["status"] in ("exempt", "todo"), rule
            assert status["comment"], rule
        else:
            assert status == "done", rule


def test_license_matches_pyproject() -> None:
    import tomllib

    root = INTEGRATION.parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-10T12:15:00Z", "2026-03-10T12:15:00+00:00"),
        ("2026-03-10T13:15:00+01:00", "2026-03-10T13:15:00+01:00"),
        ("2026-03-10T12:15:00", "2026-03-10T12:15:00"),  # local time: the caller decides
        ("2026-43-10T12:00:00Z", None),  # well-formed, impossible (found by fuzzing)
        ("2026-02-30T12:00:00Z", None),
        ("yesterday", None),
        ("2026-03-10T12:15:00Z" + " " * 40, None),  # longer than any time stamp
    ],
)
def test_parse_time(text: str, expected: str | None) -> None:
    parsed = parse_time(text)
    assert (None if parsed is None else parsed.isoformat()) == expected


def test_a_profile_row_with_an_impossible_time_is_invalid() -> None:
    """Home Assistant's parse_datetime raises ValueError on it; the row must be refused as
    malformed (InvalidPayload), not raise through the MQTT callback."""
    with pytest.raises(InvalidPayload, match="ISO 8601"):
        ProfileRow.from_payload(b'{"ts":"2026-43-10T12:00:00Z","values":{},"units":{}}')
    row = ProfileRow.from_payload(b'{"ts":"2026-03-10T12:15:00Z","values":{},"units":{}}')
    assert row.ts.isoformat() == "2026-03-10T12:15:00+00:00"
