"""Public captures of real meters' pushes (tests/fixtures/captures, sources in captures.json).

Every capture goes three ways: the decoder tree (``inspect``, what ``dlms-edge decode``
prints), the push decoder a listener runs (fed whole and in small pieces, as a serial
line delivers it), and the ``decode`` command. Each must give what the manifest records
(and what the capture's source states, under ``"stated"``); ciphered frames without their
key are refused with the sender's system title, manufacturer, security control byte and
the key options they need; damaged and cut-off frames are named; nothing raises anything
but a DlmsError and nothing hangs.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli import main
from edge_agent.dlms.errors import DlmsError
from edge_agent.dlms.inspect import DecodeKeys, inspect
from edge_agent.dlms.push.decoder import PushDecoder, PushMessage, PushRejected
from edge_agent.dlms.push.notification_quirks import TAGGED_DATE_TIME_NOTE
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.control import CipherKeys

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
MANIFEST: list[dict[str, Any]] = json.loads((CAPTURES / "captures.json").read_text())
IDS = [entry["file"] for entry in MANIFEST]


def capture(entry: dict[str, Any]) -> bytes:
    return bytes.fromhex(re.sub(r"[^0-9A-Fa-f]", "", (CAPTURES / entry["file"]).read_text()))


def secret(entry: dict[str, Any], name: str) -> Secret | None:
    value = entry.get("keys", {}).get(name)
    return Secret.from_hex(value, name.upper()) if value else None


def summary(node: dict[str, Any]) -> dict[str, Any]:
    """What the manifest records of one APDU of the tree."""
    if "content" in node:
        return {**summary(node["content"]), "deciphered_from": node["type"]}
    if node.get("deciphered") is False:
        title = node.get("system_title", {})
        return {"type": node["type"], "system_title": title.get("hex"),
                "manufacturer": title.get("manufacturer"),
                "security_control": node["security_control"]["byte"]}
    out: dict[str, Any] = {"type": node["type"]}
    for key in ("meter_number", "timestamp"):
        if node.get(key):
            out[key] = node[key]
    if node.get("notes"):
        out["notes"] = len(node["notes"])
    if node.get("values") is not None:
        out["value_count"] = len(node["values"])
    return out


def apdus_of(tree: dict[str, Any]) -> list[dict[str, Any]]:
    return [tree["apdu"]] if "apdu" in tree else list(tree.get("apdus", []))


def test_every_capture_has_its_source_noted() -> None:
    files = {str(p.relative_to(CAPTURES)) for p in CAPTURES.rglob("*.hex")}
    assert files == set(IDS)
    assert len(MANIFEST) >= 100
    for entry in MANIFEST:
        assert entry["source"] and entry["licence"] and entry["meter"], entry["file"]


@pytest.mark.parametrize("entry", MANIFEST, ids=IDS)
def test_capture_decodes_as_recorded(entry: dict[str, Any]) -> None:
    expect = entry["expect"]
    keys = DecodeKeys(CipherKeys(ek=secret(entry, "ek"), ak=secret(entry, "ak")))
    tree = inspect(capture(entry), keys)
    assert tree["format"] == expect["format"]
    assert [summary(node) for node in apdus_of(tree)] == expect["apdus"]
    problems = tree.get("problems", [])
    assert len(problems) == len(expect.get("problems", []))
    for problem, wanted in zip(problems, expect.get("problems", []), strict=True):
        assert problem["kind"] == wanted["kind"] and wanted["words"] in problem["message"]
        if "system_title" in wanted:
            assert problem["seen"]["system_title"] == wanted["system_title"]
            assert problem["seen"]["system_title"].upper() in problem["message"]
    assert [[s["offset"], s["length"]] for s in tree.get("skipped", [])] == expect.get("skipped", [])
    for node in apdus_of(tree):
        if node.get("deciphered") is False:  # refused without its key: says who and what
            title = node["system_title"]["hex"].upper()
            assert title in node["note"] and "encryption key (EK)" in node["note"]
            assert node["security_control"]["byte"] in node["note"]
            assert node["keys"] == (["ek", "ak"] if node["security_control"]["authentication"]
                                    else ["ek"])


@pytest.mark.parametrize("entry", [e for e in MANIFEST if "stated" in e],
                         ids=[e["file"] for e in MANIFEST if "stated" in e])
def test_capture_gives_what_its_source_states(entry: dict[str, Any]) -> None:
    stated = entry["stated"]
    keys = DecodeKeys(CipherKeys(ek=secret(entry, "ek"), ak=secret(entry, "ak")))
    tree = inspect(capture(entry), keys)
    nodes = [node.get("content", node) for node in apdus_of(tree)]
    values = {obis: v["value"] for node in nodes for obis, v in (node.get("values") or {}).items()}
    assert {obis: values.get(obis) for obis in stated.get("values", {})} == stated.get("values", {})
    if "meter_number" in stated:
        assert stated["meter_number"] in [node.get("meter_number") for node in nodes]
    if "timestamp" in stated:
        assert stated["timestamp"] in [node.get("timestamp") for node in nodes]
    text = json.dumps(tree)
    for word in stated.get("body_texts", []):
        assert f'"text": "{word}"' in text
    for number in stated.get("body_values", []):
        assert f'"value": {number}' in text
    if stated.get("tagged_date_time"):
        assert nodes and all(TAGGED_DATE_TIME_NOTE in node.get("notes", []) for node in nodes)
    if "system_title" in stated:
        assert stated["system_title"] in text
    if "plaintext" in stated:
        assert tree["plaintext"] == stated["plaintext"]


def listener_outcomes(entry: dict[str, Any], piece: int) -> Counter[str]:
    decoder = PushDecoder(entry["listen_format"], ek=secret(entry, "ek"), ak=secret(entry, "ak"))
    data = capture(entry)
    events = [event for start in range(0, len(data), piece)
              for event in decoder.feed(data[start : start + piece])]
    outcomes: Counter[str] = Counter()
    for event in events:
        if isinstance(event, PushMessage):
            outcomes[f"message:{len(event.items)}"] += 1
        else:
            assert isinstance(event, PushRejected)
            outcomes[f"rejected:{event.code}"] += 1
            if event.code == "wrong_key":  # no key given: the refusal names sender and key
                assert "system title" in event.message and "(EK)" in event.message
    return outcomes


@pytest.mark.parametrize("entry", [e for e in MANIFEST if "listen_format" in e],
                         ids=[e["file"] for e in MANIFEST if "listen_format" in e])
def test_capture_through_the_listener_whole_and_in_pieces(entry: dict[str, Any]) -> None:
    whole = listener_outcomes(entry, 1 << 20)
    assert whole == listener_outcomes(entry, 7), "a serial line's small reads change nothing"
    expect = entry["expect"]
    telegrams = len(expect["apdus"])
    refused = sum(1 for a in expect["apdus"] if "security_control" in a)
    decoded = [a["value_count"] for a in expect["apdus"] if a.get("value_count")]
    assert whole["rejected:wrong_key"] == refused
    assert sorted(int(k.split(":")[1]) for k in whole.elements() if k.startswith("message:")) \
        == sorted(decoded)
    # Telegrams without named values (IDIS lists, proprietary layouts) and every problem
    # of the capture come out as decode errors: one event per telegram, none lost.
    assert sum(whole.values()) >= telegrams


@pytest.mark.parametrize("entry", MANIFEST, ids=IDS)
def test_capture_through_dlms_edge_decode(entry: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["decode", "--json"]
    for flag in ("ek", "ak"):
        if entry.get("keys", {}).get(flag):
            argv += [f"--{flag}", entry["keys"][flag]]
    code = main([*argv, capture(entry).hex()])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    problems = entry["expect"].get("problems", [])
    if not problems:
        assert code == 0, err
        assert len(apdus_of(json.loads(out))) == len(entry["expect"]["apdus"])
    else:
        assert code == 7, err  # malformed data: the capture lacks something
        assert problems[0]["words"] in err
        if entry["expect"]["apdus"]:
            assert json.loads(out)["problems"]  # the rest is printed all the same
    for key in entry.get("keys", {}).values():
        assert key not in out + err
    refused = [a for a in entry["expect"]["apdus"] if "security_control" in a]
    for apdu in refused:  # the command names the options that would open it
        assert f"system title {apdu['system_title'].upper()}" in err and "--ek HEX" in err


def test_manifest_apdus_cover_every_kind_of_push() -> None:
    """The captures exercise what real meters do (a guard against a thinned-out corpus)."""
    kinds: Counter[str] = Counter()
    for entry in MANIFEST:
        expect = entry["expect"]
        kinds["gbt"] += "general-block-transfer" in json.dumps(expect) or entry["file"].endswith(
            ("gh740.hex", "-gbt.hex", "vse-2026.hex", "pr16942.hex"))
        kinds["tagged-date-time"] += any(a.get("notes") for a in expect["apdus"])
        kinds["refused-without-key"] += any("security_control" in a for a in expect["apdus"])
        kinds["deciphered"] += any("deciphered_from" in a for a in expect["apdus"])
        kinds["damaged"] += any(p["kind"] == "damaged" for p in expect.get("problems", []))
        kinds["incomplete"] += any(p["kind"] == "incomplete" for p in expect.get("problems", []))
        kinds["skipped"] += bool(expect.get("skipped"))
        kinds["llc-without-frame"] += expect["format"] == "llc"
        kinds["mbus"] += expect["format"] == "mbus"
    assert all(kinds[k] >= 1 for k in ("gbt", "tagged-date-time", "refused-without-key",
                                       "deciphered", "damaged", "incomplete", "skipped",
                                       "llc-without-frame", "mbus")), kinds


def test_no_capture_raises_anything_but_a_dlms_error_when_cut_anywhere() -> None:
    for entry in MANIFEST[::7]:
        data = capture(entry)
        for cut in range(1, len(data), max(1, len(data) // 9)):
            try:
                inspect(data[:cut])
            except DlmsError:
                pass
