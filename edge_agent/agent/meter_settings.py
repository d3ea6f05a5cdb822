"""How the config becomes a meter client: connection and session settings, keys, facts name.

Keys are read from their files or environment variables at each association, so a fixed
key file is picked up without a restart; key material goes straight into
:class:`~edge_agent.dlms.secret.Secret` values and never into a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.agent.config_model import (
    BusTransport,
    MeterConfig,
    SecurityConfig,
    SerialSettings,
    SerialTransport,
    TcpTransport,
)
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import ConfigError, DecodeError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from edge_agent.dlms.security.signing import PublicKeyOrCertificate


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}; check the path and "
                          "that the agent's user may read it") from None


def _signing_material(security: SecurityConfig, where: str
                      ) -> tuple[ec.EllipticCurvePrivateKey | None, PublicKeyOrCertificate | None]:
    """The client's signing key and the meter's certificate (either may be None)."""
    # Imported here: certificates pull in cryptography and its x509 (about 13 MB
    # resident), which only meters with a signing key or a meter certificate need.
    from edge_agent.dlms.security.certificates import load_certificate, load_private_key

    signing_key = server_key = None
    if security.signing_key is not None:
        signing_key = load_private_key(_read_file(security.signing_key,
                                                  f"{where}.signing_key"))
    if security.meter_certificate is not None:
        try:
            server_key = load_certificate(_read_file(security.meter_certificate,
                                                     f"{where}.meter_certificate"))
        except DecodeError as exc:
            raise ConfigError(f"{where}.meter_certificate: {exc}") from None
    return signing_key, server_key


def client_settings(security: SecurityConfig, where: str) -> ClientSettings:
    """Session settings for one association; reads the keys (Secrets) now."""
    signing_key = server_key = None
    if security.signing_key is not None or security.meter_certificate is not None:
        signing_key, server_key = _signing_material(security, where)
    return ClientSettings(
        security=security.policy, suite=security.suite, authentication=security.auth,
        password=None if security.password is None else security.password.resolve(),
        system_title=security.system_title,
        ek=None if security.ek is None else security.ek.resolve(),
        ak=None if security.ak is None else security.ak.resolve(),
        signing_key=signing_key, server_public_key=server_key,
        association=bytes(Obis.parse(security.association)))


def frame_counter(security: SecurityConfig) -> Obis | None:
    """The meter's frame counter object to read before a first ciphered association."""
    return None if security.frame_counter is None else Obis.parse(security.frame_counter)


def connection_settings(meter: MeterConfig, bus_serial: SerialSettings | None = None
                        ) -> ConnectionSettings:
    """How to reach a polled meter; ``bus_serial`` for meters on a bus."""
    transport = meter.transport
    common = {"client_sap": meter.addresses.client, "server_logical": meter.addresses.logical,
              "server_physical": meter.addresses.physical, "timeout": meter.timeout,
              "retries": meter.retries, "hdlc_parameters": meter.hdlc}
    if isinstance(transport, TcpTransport):
        return ConnectionSettings(tcp=(transport.host, transport.port),
                                  hdlc=meter.link == "hdlc", **common)
    if isinstance(transport, SerialTransport):
        serial = transport.serial
    elif isinstance(transport, BusTransport) and bus_serial is not None:
        serial = bus_serial
    else:
        raise ConfigError(f"meters[{meter.index}]: no transport to poll it with")
    return ConnectionSettings(serial=serial.device, baud=serial.baud, parity=serial.parity,
                              bytesize=serial.bytesize, stopbits=serial.stopbits,
                              optical=serial.optical, rs485=serial.rs485, **common)


def facts_key(meter: MeterConfig) -> str:
    """Name of the meter's facts (learned classes, scalers, serial): its id, or where it is."""
    if meter.id is not None:
        return meter.id
    transport = meter.transport
    where = (f"{transport.host}-{transport.port}" if isinstance(transport, TcpTransport)
             else transport.bus if isinstance(transport, BusTransport)
             else Path(transport.serial.device).name if isinstance(transport, SerialTransport)
             else f"meter-{meter.index}")
    text = f"{where}-{meter.addresses.logical}-{meter.addresses.physical}"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
