"""Config loading: examples validate; each bad config names its key path and the fix."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.agent.config import (
    BusTransport,
    KeyRef,
    SerialTransport,
    TcpTransport,
    check_config,
    load_config,
)
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
EK_HEX = "000102030405060708090a0b0c0d0e0f"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_there_are_five_examples() -> None:
    assert len(EXAMPLES) == 5


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(example: Path) -> None:
    config = load_config(example)
    assert config.meters
    assert config.mqtt.prefix == "dlms"


def test_t210d_example_in_detail() -> None:
    config = load_config(Path(__file__).parents[2] / "examples" / "t210d-optical.yaml")
    (meter,) = config.meters
    assert config.agent_id == "pi-kitchen" and meter.id == "t210d"
    assert isinstance(meter.transport, SerialTransport) and meter.transport.serial.optical
    assert meter.link == "hdlc"
    assert (meter.addresses.client, meter.addresses.logical, meter.addresses.physical) == (
        1, 1, 16)
    security = meter.security
    assert (security.suite, security.policy, security.auth, security.pass3_signing) == (
        1, "authenc", "hls-gmac", "auto")
    assert security.system_title == bytes.fromhex("0F0E0D0C0B0A0908")
    assert security.ek == KeyRef("file", "/etc/dlms-edge/keys/t210d.ek",
                                 "meters[0].security.keys.ek", 16)
    assert [(g.name, g.interval) for g in meter.poll] == [
        ("instantaneous", 10.0), ("energy", 60.0), ("everything-else", 900.0)]
    assert meter.poll[2].objects == "all"


def test_defaults_and_shapes(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
        state_dir: state
        mqtt: {tls: true, username: u, password: pw, queue: {max_bytes: 1MB}}
        buses: [{id: b, device: /dev/ttyS1}]
        meters:
          - transport: {tcp: "[::1]"}
          - transport: {bus: b}
            addresses: {physical: 0x21}
          - id: mbus
            push: {format: mbus, serial: {device: /dev/ttyS2}}
            security: {policy: enc, keys: {ek: {env: MBUS_EK}}}
    """))
    assert config.state_dir == (tmp_path / "state").resolve()
    assert config.mqtt.port == 8883 and config.mqtt.tls is not None
    assert config.mqtt.queue_max_bytes == 1 << 20
    assert isinstance(config.mqtt.password, Secret) and "pw" not in repr(config.mqtt)
    tcp, bus, push = config.meters
    assert tcp.transport == TcpTransport("::1", 4059) and tcp.link == "wrapper"
    assert [g.objects for g in tcp.poll] == ["all"]
    assert bus.transport == BusTransport("b") and bus.addresses.physical == 0x21
    assert config.bus("b").serial.rs485 is True
    assert push.transport is None and push.poll == ()
    assert (push.push.serial.baud, push.push.serial.parity) == (2400, "E")


def test_profiles_per_meter_and_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
        profiles: [{obis: 1-0:99.1.0, interval: 5m, backfill: 2d}]
        meters:
          - transport: {tcp: "h:1"}
          - transport: {tcp: "h:2"}
            profiles: [{obis: 1.0.99.2.0.255}]
          - transport: {tcp: "h:3"}
            profiles: []
          - id: p
            push: {format: dsmr, port: 2000}
    """))
    default, own, none, push = config.meters
    assert [(p.obis, p.interval, p.backfill, p.name) for p in default.profiles] == [
        ("1.0.99.1.0.255", 300.0, 172800.0, "profile 1.0.99.1.0.255")]
    # Defaults of an entry: every 15 minutes, back as far as the meter keeps rows (None).
    assert [(p.obis, p.interval, p.backfill) for p in own.profiles] == [
        ("1.0.99.2.0.255", 900.0, None)]
    assert none.profiles == () and push.profiles == ()


def test_mqtt_password_env_resolves_lazily(tmp_path: Path, monkeypatch) -> None:
    config = load_config(write(tmp_path, """
        mqtt: {username: u, password_env: TEST_MQTT_PW}
        meters: [{transport: {tcp: "h:1"}}]
    """))
    monkeypatch.setenv("TEST_MQTT_PW", "s3cret")
    assert config.mqtt.password_secret().reveal() == b"s3cret"
    monkeypatch.delenv("TEST_MQTT_PW")
    with pytest.raises(ConfigError, match="TEST_MQTT_PW is not set"):
        config.mqtt.password_secret()


# Each bad config (a meter merged into a valid skeleton, or whole sections) must name
# exactly this key path, with a message containing the fix.
BAD = [
    ("ek: {inline}", {"security": {"policy": "enc", "keys": {"ek": EK_HEX}}},
     "meters[0].security.keys.ek", "file"),
    ("ek: path without file", {"security": {"policy": "enc", "keys": {"ek": "/etc/k.ek"}}},
     "meters[0].security.keys.ek", "{file: /etc/k.ek}"),
    ("ak missing", {"security": {"policy": "authenc", "system_title": "0102030405060708",
                                 "keys": {"ek": {"env": "EK"}}}},
     "meters[0].security.keys.ak", "policy authenc"),
    ("system title missing", {"security": {"policy": "enc", "keys": {"ek": {"env": "E"}}}},
     "meters[0].security.system_title", "16 hex digits"),
    ("system title unquoted", {"security": {"system_title": 1}},
     "meters[0].security.system_title", "quotes"),
    ("system title short", {"security": {"system_title": "0102"}},
     "meters[0].security.system_title", "16 hex digits"),
    ("lls without password", {"security": {"auth": "low"}},
     "meters[0].security.keys.password", "password"),
    ("pass3 on suite 0", {"security": {"auth": "hls-gmac", "pass3_signing": "always",
                                       "signing_key": "k.pem", "system_title": "0102030405060708",
                                       "keys": {"ek": {"env": "E"}, "ak": {"env": "A"}}}},
     "meters[0].security.suite", "suite 1"),
    ("pass3 without key", {"security": {"suite": 1, "auth": "hls-gmac",
                                        "pass3_signing": "always",
                                        "system_title": "0102030405060708",
                                        "keys": {"ek": {"env": "E"}, "ak": {"env": "A"}}}},
     "meters[0].security.signing_key", "private key"),
    ("bad suite", {"security": {"suite": 3}}, "meters[0].security.suite", "0, 1 or 2"),
    ("bad policy", {"security": {"policy": "all"}}, "meters[0].security.policy", "authenc"),
    ("typo", {"securty": {}}, "meters[0].securty", "did you mean 'security'"),
    ("two transports", {"transport": {"tcp": "h:1", "serial": {"device": "/dev/x"}}},
     "meters[0].transport", "exactly one"),
    ("no transport", {"transport": None}, "meters[0].transport", "mapping"),
    ("bad port", {"transport": {"tcp": "h:70000"}}, "meters[0].transport.tcp", "HOST:PORT"),
    ("bad baud", {"transport": {"serial": {"device": "/dev/x", "baud": 1234}}},
     "meters[0].transport.serial.baud", "9600"),
    ("bad parity", {"transport": {"serial": {"device": "/dev/x", "parity": "X"}}},
     "meters[0].transport.serial.parity", "N, E or O"),
    ("optical rs485", {"transport": {"serial": {"device": "/dev/x", "optical": True,
                                                "rs485": True}}},
     "meters[0].transport.serial", "exclude"),
    ("unknown bus", {"transport": {"bus": "nope"}}, "meters[0].transport.bus", "no bus"),
    ("wrapper on serial", {"transport": {"serial": {"device": "/dev/x"}}, "link": "wrapper"},
     "meters[0].link", "TCP"),
    ("client SAP range", {"addresses": {"client": 300}}, "meters[0].addresses.client",
     "0..127"),
    ("bad id", {"id": "a/b"}, "meters[0].id", "separator"),
    ("bad obis", {"poll": [{"name": "x", "interval": 5, "objects": ["1.8.0"]}]},
     "meters[0].poll[0].objects", "OBIS"),
    ("bad interval", {"poll": [{"name": "x", "interval": "soon"}]},
     "meters[0].poll[0].interval", "10s"),
    ("poll name missing", {"poll": [{"interval": 5}]}, "meters[0].poll[0].name", "required"),
    ("push both", {"push": {"format": "mbus", "port": 4059,
                            "serial": {"device": "/dev/y"}}}, "meters[0].push", "exactly one"),
    ("push format", {"push": {"format": "sml", "port": 1}}, "meters[0].push.format", "mbus"),
    ("timeout", {"timeout": "0s"}, "meters[0].timeout", ">= 0.1"),
    ("profile obis", {"profiles": [{"obis": "99.1.0"}]}, "meters[0].profiles[0].obis", "OBIS"),
    ("profile obis missing", {"profiles": [{"interval": "15m"}]},
     "meters[0].profiles[0].obis", "required"),
    ("profile interval", {"profiles": [{"obis": "1.0.99.1.0.255", "interval": "often"}]},
     "meters[0].profiles[0].interval", "1d"),
    ("profile backfill", {"profiles": [{"obis": "1.0.99.1.0.255", "backfill": "2 weeks"}]},
     "meters[0].profiles[0].backfill", "5m"),
    ("profile timezone", {"profiles": [{"obis": "1.0.99.1.0.255", "timezone": "Mars/Olympus"}]},
     "meters[0].profiles[0].timezone", "Europe/Vienna"),
    ("profile typo", {"profiles": [{"obis": "1.0.99.1.0.255", "backfil": "1d"}]},
     "meters[0].profiles[0].backfil", "did you mean 'backfill'"),
    ("profile twice", {"profiles": [{"obis": "1.0.99.1.0.255"}, {"obis": "1-0:99.1.0"}]},
     "meters[0].profiles[1].obis", "twice"),
    ("profiles not a list", {"profiles": {"obis": "1.0.99.1.0.255"}}, "meters[0].profiles",
     "list"),
]


@pytest.mark.parametrize(("meter", "path", "hint"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_meter(tmp_path: Path, meter: dict, path: str, hint: str) -> None:
    base = {"id": "m", "transport": {"tcp": "10.0.0.1:4059"}}
    document = {"meters": [{**base, **meter}]}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, yaml.safe_dump(document)))
    lines = info.value.problems
    assert any(line.startswith(path + ":") and hint in line for line in lines), lines


ONE_METER = "\nmeters: [{transport: {tcp: 'h:1'}}]"
BUS = "buses: [{id: b, device: /dev/x}]\n"
BAD_FILES = [
    ("duplicate meter id",
     "meters: [{id: a, transport: {tcp: 'h:1'}}, {id: a, transport: {tcp: 'h:2'}}]",
     "meters[1].id", "duplicate"),
    ("no meters", "mqtt: {}", "meters", "required"),
    ("empty meters", "meters: []", "meters", "at least one"),
    ("push-only without id", "meters: [{push: {format: dsmr, port: 2000}}]",
     "meters[0].id", "push-only"),
    ("neither", "meters: [{id: a}]", "meters[0]", "transport"),
    ("two meters one address",
     BUS + "meters: [{id: a, transport: {bus: b}, addresses: {physical: 17}}, "
           + "{id: c, transport: {bus: b}, addresses: {physical: 17}}]",
     "meters[1].addresses.physical", "already used by a"),
    ("bus meter without address", BUS + "meters: [{id: a, transport: {bus: b}}]",
     "meters[0].addresses.physical", "shared bus"),
    ("device twice", BUS + "meters: [{id: a, transport: {serial: {device: /dev/x}}}]",
     "meters[0].transport.serial.device", "already used by buses[0].device"),
    ("mqtt typo", "mqtt: {hots: x}" + ONE_METER, "mqtt.hots", "did you mean 'host'"),
    ("mqtt protocol", "mqtt: {protocol: 4.0}" + ONE_METER, "mqtt.protocol", "3.1.1"),
    ("mqtt prefix", "mqtt: {prefix: 'a/#'}" + ONE_METER, "mqtt.prefix", "wildcard"),
    ("mqtt both passwords", "mqtt: {username: u, password: p, password_env: P}" + ONE_METER,
     "mqtt.password_env", "not both"),
    ("mqtt password alone", "mqtt: {password: p}" + ONE_METER, "mqtt.username",
     "needs a username"),
    ("tls key alone", "mqtt: {tls: {key: k.pem}}" + ONE_METER, "mqtt.tls.key",
     "certificate"),
    ("queue too small", "mqtt: {queue: {max_messages: 5}}" + ONE_METER,
     "mqtt.queue.max_messages", ">= 100"),
    ("logging level", "logging: {level: loud}" + ONE_METER, "logging.level", "DEBUG"),
    ("agent id", "agent: {id: 'x+y'}" + ONE_METER, "agent.id", "wildcard"),
    ("top typo", "meter: []" + ONE_METER, "meter", "did you mean 'meters'"),
    ("duplicate poll group", "poll: [{name: a, interval: 1}, {name: a, interval: 2}]"
     + ONE_METER, "poll[1].name", "duplicate"),
    ("top profile", "profiles: [{obis: 1.0.99.1.0.255, interval: 0}]" + ONE_METER,
     "profiles[0].interval", ">= 1"),
    ("push-only profile", ("meters: [{id: a, push: {format: dsmr, port: 2000}, "
                           "profiles: [{obis: 1.0.99.1.0.255}]}]"),
     "meters[0].profiles", "needs a transport"),
]


@pytest.mark.parametrize(("text", "path", "hint"), [case[1:] for case in BAD_FILES],
                         ids=[case[0] for case in BAD_FILES])
def test_bad_file(tmp_path: Path, text: str, path: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    lines = info.value.problems
    assert any(line.startswith(path + ":") and hint in line for line in lines), lines


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, """
            mqtt: {hots: x}
            meters:
              - {id: a, transport: {tcp: "h:0"}}
              - {id: b, security: {policy: enc, keys: {ek: "00"}}, transport: {tcp: "h:1"}}
        """))
    text = str(info.value)
    assert "3 problems" in text
    assert "mqtt.hots" in text and "meters[0].transport.tcp" in text
    assert "meters[1].security.keys.ek" in text and '"00"' not in text


@pytest.mark.parametrize(("text", "hint"), [
    ("meters: [", "line 1, column 10"),
    ("meters: []\nmeters: []", "duplicate key 'meters'"),
    ("- just a list", "mapping"),
])
def test_yaml_level_errors(tmp_path: Path, text: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


# --- keys, resolved lazily and never shown ------------------------------------------------


def test_key_file_hex_raw_and_wrong_length(tmp_path: Path) -> None:
    (tmp_path / "hex.ek").write_text(EK_HEX.upper()[:16] + "\n " + EK_HEX[16:] + "\n")
    (tmp_path / "raw.ek").write_bytes(bytes.fromhex(EK_HEX))
    (tmp_path / "short.ek").write_text("0011")
    for name in ("hex.ek", "raw.ek"):
        secret = KeyRef("file", str(tmp_path / name), "ek", 16).resolve()
        assert secret.reveal() == bytes.fromhex(EK_HEX)
        assert EK_HEX not in repr(secret)
    with pytest.raises(ConfigError, match="2 bytes, expected 16"):
        KeyRef("file", str(tmp_path / "short.ek"), "ek", 16).resolve()
    with pytest.raises(ConfigError, match="cannot read key file"):
        KeyRef("file", str(tmp_path / "none.ek"), "ek", 16).resolve()


def test_check_config_resolves_keys_and_warns(tmp_path: Path, monkeypatch) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "client.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(tmp_path / "client.pem", 0o600)
    (tmp_path / "ek").write_text(EK_HEX)
    os.chmod(tmp_path / "ek", 0o644)
    monkeypatch.delenv("CHECK_AK", raising=False)
    path = write(tmp_path, f"""
        meters:
          - id: m
            transport: {{serial: {{device: {tmp_path}/no-such-tty}}}}
            security:
              suite: 1
              policy: authenc
              auth: hls-gmac
              system_title: "0102030405060708"
              keys: {{ek: {{file: ek}}, ak: {{env: CHECK_AK}}}}
              signing_key: client.pem
    """)
    warnings = check_config(path)
    assert any("meters[0].security.keys.ek" in w and "chmod 600" in w for w in warnings)
    assert any("CHECK_AK is not set" in w for w in warnings)
    assert any("no-such-tty does not exist" in w for w in warnings)
    assert EK_HEX not in "".join(warnings)
    monkeypatch.setenv("CHECK_AK", "00")
    with pytest.raises(ConfigError, match="meters\\[0\\].security.keys.ak: env CHECK_AK "
                                          "holds 1 bytes, expected 16"):
        check_config(path)
    monkeypatch.setenv("CHECK_AK", EK_HEX)
    (tmp_path / "client.pem").write_bytes(ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="signing_key: expected an EC secp256r1 key"):
        check_config(path)
