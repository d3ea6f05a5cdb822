"""What a simulated meter keeps and announces like a real one: its own invocation counter
across restarts (never a key/IV pair twice), its PDU size, its enforced security policy."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sim_io import CLI, RecordingProxy, cli, simulator, wrapper_frames

from edge_agent import children
from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import AARE
from edge_agent.dlms.cosem.security_setup import Attribute as SetupAttribute
from edge_agent.dlms.cosem.security_setup import SecurityPolicy
from edge_agent.dlms.security import CipheredApdu
from edge_agent.dlms.security.tags import is_ciphered
from edge_agent.simulator.meter import (
    EXAMPLE_AK,
    EXAMPLE_EK,
    SimulatedMeterStation,
    SimulatorOptions,
)
from edge_agent.simulator.objects import Refused

pytestmark = pytest.mark.timeout(120)

# The generic meter's management client with ciphering and HLS-5 (example keys).
SECURED = ["--security", "authenc", "--auth", "hls-gmac", "--suite", "0", "--accept-unsigned-pass3"]
CLIENT_SECURED = ["--client", "1", "--security", "authenc", "--auth", "hls-gmac", "--suite", "0",
                  "--ek", EXAMPLE_EK.hex(), "--ak", EXAMPLE_AK.hex(), "--pass3-signing", "never"]


# --- the meter's own invocation counter -----------------------------------------------------


def test_the_counter_continues_above_every_value_after_a_restart(tmp_path: Path) -> None:
    options = SimulatorOptions(security="authenc", authentication="hls-gmac", state_dir=str(tmp_path))
    first = SimulatedMeterStation(options)
    used = [first.next_invocation_counter() for _ in range(7)]
    first.close()
    second = SimulatedMeterStation(options)
    again = [second.next_invocation_counter() for _ in range(3)]
    second.close()
    assert used == sorted(set(used)) and min(again) > max(used)
    # One counter per key: another EK starts its own, and no file names a key.
    files = sorted(p.name for p in (tmp_path / "counters").glob("*.json"))
    assert len(files) == 1 and EXAMPLE_EK.hex() not in files[0].lower()
    assert json.loads((tmp_path / "counters" / files[0]).read_text())["meter_id"].startswith("simulator-")


def test_without_a_state_dir_the_counter_lives_in_memory() -> None:
    station = SimulatedMeterStation(SimulatorOptions(security="authenc", authentication="hls-gmac"))
    assert [station.next_invocation_counter() for _ in range(3)] == [1, 2, 3]


def _meter_counters(recording_bytes: bytes) -> list[int]:
    counters = []
    for frame in wrapper_frames(recording_bytes):
        apdu = frame.apdu
        if apdu[0] == AARE.TAG:
            aare = AARE.decode(apdu)
            apdu = aare.user_information or b""
        if apdu and is_ciphered(apdu[0]):
            counters.append(CipheredApdu.decode(apdu)[0].invocation_counter)
    return counters


def _start_simulator(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = children.spawn([*CLI, "simulate", "--tcp", "127.0.0.1:0", *args],
                             stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if match := re.search(r"listening on [0-9.]+:(\d+)", line):
            return process, int(match.group(1))
    children.stop(process)
    raise AssertionError("the simulator did not start")


def test_a_restarted_simulator_never_repeats_a_key_iv_pair(tmp_path: Path) -> None:
    """Two runs of ``dlms-edge simulate`` on one state dir, the first ended by SIGKILL:
    every invocation counter the meter used under the key is new, and the client (same
    state dir, so it remembers the meter's counters) accepts the second run's answers."""
    seen: list[list[int]] = []
    for run in range(2):
        process, port = _start_simulator(*SECURED, "--state-dir", str(tmp_path / "meter"))
        try:
            with RecordingProxy(port) as proxy:
                result = cli("read", "--tcp", f"127.0.0.1:{proxy.port}", *CLIENT_SECURED,
                             "--state-dir", str(tmp_path / "client"), "--json", "1.0.1.8.0.255")
                time.sleep(0.3)
                # The client may first read the frame counter as the public client.
                seen.append([ic for r in proxy.recordings for ic in _meter_counters(r.meter_bytes)])
        finally:
            if run == 0:
                process.send_signal(signal.SIGKILL)  # no clean stop: the reservation must hold
                process.wait(10)
            else:
                children.stop(process)
        assert result.returncode == 0, result.stderr
    first, second = seen
    assert len(first) >= 3 and len(second) >= 3
    assert first == sorted(set(first)) and second == sorted(set(second))
    assert min(second) > max(first), (first, second)


# --- the PDU size ---------------------------------------------------------------------------


def test_answers_longer_than_the_meters_pdu_come_in_blocks(tmp_path: Path) -> None:
    with simulator(SimulatorOptions(max_receive_pdu_size=128)) as (_, _, port), RecordingProxy(port) as proxy:
        result = cli("read", "--tcp", f"127.0.0.1:{proxy.port}", "--state-dir", str(tmp_path), "--json")
        time.sleep(0.3)
        recording = proxy.recordings[0]
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) > 5, "the whole object list was read"
    apdus = [frame.apdu for frame in wrapper_frames(recording.meter_bytes)]
    initiate = x.decode_apdu(AARE.decode(apdus[0]).user_information)
    assert initiate.server_max_receive_pdu_size == 128
    assert max(map(len, apdus)) <= 128
    blocks = [a for a in apdus if a[:2] == b"\xc4\x02"]  # get-response-with-datablock
    assert len(blocks) >= 3, "the object list (far over 128 bytes) came in datablocks"


def test_the_pdu_size_is_per_meter_model_and_checked(tmp_path: Path) -> None:
    from edge_agent.simulator.meter_models import MAX_PDU_SIZE

    for profile, size in MAX_PDU_SIZE.items():
        options = SimulatorOptions(profile=profile, keys_dir=str(tmp_path / profile))
        station = SimulatedMeterStation(options)
        assert station.settings.max_receive_pdu_size == size and f"max PDU {size}" in station.describe()
        station.close()
    result = cli("simulate", "--tcp", "127.0.0.1:0", "--max-pdu", "20")
    assert result.returncode == 2 and "max PDU size must be 64..65535" in result.stderr


# --- Security setup reports the policy it enforces -----------------------------------------


def _policy(station: SimulatedMeterStation) -> SecurityPolicy:
    attribute = station.security_setup.attributes()[SetupAttribute.SECURITY_POLICY]
    return SecurityPolicy(int(attribute.get(None)))  # type: ignore[misc]


def test_security_policy_is_the_enforced_one(tmp_path: Path) -> None:
    t210d = SimulatedMeterStation(SimulatorOptions(profile="t210d", keys_dir=str(tmp_path / "k")))
    assert t210d.settings.clients[1].security == "authenc"
    assert _policy(t210d) == (SecurityPolicy.AUTHENTICATED_REQUEST | SecurityPolicy.ENCRYPTED_REQUEST
                              | SecurityPolicy.AUTHENTICATED_RESPONSE | SecurityPolicy.ENCRYPTED_RESPONSE)
    plain = SimulatedMeterStation(SimulatorOptions())
    assert plain.settings.clients[1].security == "none" and _policy(plain) == SecurityPolicy.NONE


def test_security_activate_changes_what_the_next_association_enforces() -> None:
    station = SimulatedMeterStation(SimulatorOptions(security="auth"))
    assert _policy(station) == SecurityPolicy.AUTHENTICATED_REQUEST | SecurityPolicy.AUTHENTICATED_RESPONSE
    setup = station.security_setup
    stronger = SecurityPolicy.AUTHENTICATED_REQUEST | SecurityPolicy.ENCRYPTED_REQUEST
    setup.security_activate(None, int(stronger))  # type: ignore[arg-type]
    assert _policy(station) == (SecurityPolicy.AUTHENTICATED_REQUEST | SecurityPolicy.ENCRYPTED_REQUEST
                                | SecurityPolicy.AUTHENTICATED_RESPONSE | SecurityPolicy.ENCRYPTED_RESPONSE)
    assert station.settings_now().clients[1].security == "authenc"
    with pytest.raises(Refused, match="digitally signed"):
        setup.security_activate(None, int(SecurityPolicy.DIGITALLY_SIGNED_REQUEST))  # type: ignore[arg-type]


def test_a_policy_without_keys_is_refused() -> None:
    station = SimulatedMeterStation(SimulatorOptions())  # no keys at all
    with pytest.raises(Refused, match="needs keys"):
        station.security_setup.security_activate(None, int(SecurityPolicy.AUTHENTICATED_REQUEST))  # type: ignore[arg-type]
    assert _policy(station) == SecurityPolicy.NONE
