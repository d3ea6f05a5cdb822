"""xDLMS InitiateRequest (0x01) and InitiateResponse (0x08) (Green Book 9.3.2, 9.5).

They ride in the user-information of AARQ/AARE, plain or ciphered (glo-initiate 0x21/0x28,
done by the security module). A-XDR: OPTIONAL is a 00/01 marker, DEFAULT is 00 for the
default or 01 and the value; the conformance block alone is BER (``5F 1F 04 00 ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from edge_agent.dlms.apdu.base import (
    Apdu,
    Buffer,
    put_octet_string,
    put_u8,
    put_u16,
    read_octet_string,
    read_presence,
    read_u8,
    read_u16,
)
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.errors import DecodeError, EncodeError
from edge_agent.dlms.secret import Secret

INITIATE_REQUEST = 0x01
INITIATE_RESPONSE = 0x08

#: The only DLMS version in use since 2001 (Green Book 9.3.2).
DLMS_VERSION = 6
#: vaa-name of an LN association (SN associations use 0xFA00).
VAA_NAME_LN = 0x0007


def _read_conformance(buf: Buffer, offset: int) -> tuple[Conformance, int]:
    try:
        return Conformance.decode(buf, offset)
    except DecodeError as error:
        raise type(error)(f"initiate: {error}") from None


def _read_qos(buf: Buffer, offset: int, what: str) -> tuple[int | None, int]:
    present, offset = read_presence(buf, offset, what)
    if not present:
        return None, offset
    value, offset = read_u8(buf, offset, what)
    return value - 0x100 if value > 0x7F else value, offset  # Integer8


def _put_qos(out: bytearray, value: int | None) -> None:
    if value is None:
        out.append(0)
    elif -0x80 <= value <= 0x7F:
        out.append(1)
        out.append(value & 0xFF)
    else:
        raise EncodeError(f"quality-of-service is an Integer8 (-128..127), got {value}")


@dataclass(frozen=True, slots=True)
class InitiateRequest(Apdu):
    """xDLMS-Initiate.request; ``dedicated_key`` is a Secret (ciphered AARQs only)."""

    TAG: ClassVar[int] = INITIATE_REQUEST
    NAME: ClassVar[str] = "initiate-request"

    proposed_conformance: Conformance
    client_max_receive_pdu_size: int = 0xFFFF
    proposed_dlms_version_number: int = DLMS_VERSION
    dedicated_key: Secret | None = None
    response_allowed: bool = True
    proposed_quality_of_service: int | None = None

    def _encode_body(self, out: bytearray) -> None:
        if self.dedicated_key is None:
            out.append(0)
        else:
            out.append(1)
            put_octet_string(out, self.dedicated_key.reveal())
        # response-allowed BOOLEAN DEFAULT TRUE: 00 stands for the default.
        out += b"\x00" if self.response_allowed else b"\x01\x00"
        _put_qos(out, self.proposed_quality_of_service)
        put_u8(out, self.proposed_dlms_version_number, "proposed-dlms-version-number")
        out += Conformance(self.proposed_conformance).encode()
        put_u16(out, self.client_max_receive_pdu_size, "client-max-receive-pdu-size")

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        has_key, offset = read_presence(buf, offset, "dedicated-key")
        key = None
        if has_key:
            raw, offset = read_octet_string(buf, offset, "dedicated-key")
            key = Secret(raw, "dedicated key")
        not_default, offset = read_presence(buf, offset, "response-allowed")
        allowed = True
        if not_default:
            value, offset = read_u8(buf, offset, "response-allowed")
            allowed = value != 0
        qos, offset = _read_qos(buf, offset, "proposed-quality-of-service")
        version, offset = read_u8(buf, offset, "proposed-dlms-version-number")
        conformance, offset = _read_conformance(buf, offset)
        pdu_size, offset = read_u16(buf, offset, "client-max-receive-pdu-size")
        return cls(conformance, pdu_size, version, key, allowed, qos), offset


@dataclass(frozen=True, slots=True)
class InitiateResponse(Apdu):
    TAG: ClassVar[int] = INITIATE_RESPONSE
    NAME: ClassVar[str] = "initiate-response"

    negotiated_conformance: Conformance
    server_max_receive_pdu_size: int
    negotiated_dlms_version_number: int = DLMS_VERSION
    vaa_name: int = VAA_NAME_LN
    negotiated_quality_of_service: int | None = None

    def _encode_body(self, out: bytearray) -> None:
        _put_qos(out, self.negotiated_quality_of_service)
        put_u8(out, self.negotiated_dlms_version_number, "negotiated-dlms-version-number")
        out += Conformance(self.negotiated_conformance).encode()
        put_u16(out, self.server_max_receive_pdu_size, "server-max-receive-pdu-size")
        put_u16(out, self.vaa_name, "vaa-name")

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        qos, offset = _read_qos(buf, offset, "negotiated-quality-of-service")
        version, offset = read_u8(buf, offset, "negotiated-dlms-version-number")
        conformance, offset = _read_conformance(buf, offset)
        pdu_size, offset = read_u16(buf, offset, "server-max-receive-pdu-size")
        vaa_name, offset = read_u16(buf, offset, "vaa-name")
        return cls(conformance, pdu_size, version, vaa_name, qos), offset
