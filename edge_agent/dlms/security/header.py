"""The header of general-ciphering (0xDD) and general-signing (0xDF), and key-info.

Green Book 9.5 (ASN.1, A-XDR encoded):

    general-ciphering ::= SEQUENCE {
        transaction-id           OCTET STRING,
        originator-system-title  OCTET STRING,
        recipient-system-title   OCTET STRING,
        date-time                OCTET STRING,
        other-information        OCTET STRING,
        key-info                 Key-Info OPTIONAL,
        ciphered-content         OCTET STRING }

    Key-Info ::= CHOICE {
        identified-key  [0] Identified-Key,   -- key-id ENUMERATED: 0 global unicast EK,
                                              --                    1 global broadcast EK
        wrapped-key     [1] Wrapped-Key,      -- kek-id ENUMERATED (0 master key),
                                              -- key-ciphered-data OCTET STRING
        agreed-key      [2] Agreed-Key }      -- key-parameters OCTET STRING,
                                              -- key-ciphered-data OCTET STRING

general-signing shares the first five fields. Key-parameters of an agreed key (Green Book
9.2.7.4, Table 40): 0x01 One-Pass Diffie-Hellman C(1e, 1s, ECC CDH) -- key-ciphered-data is
the originator's ephemeral public key; 0x02 Static Unified Model C(0e, 2s, ECC CDH) --
key-ciphered-data is empty, the transaction-id serves as the nonce.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.dlms.errors import DecodeError, TruncatedError
from edge_agent.dlms.security._length import octet_string, take_octet_string

GLOBAL_UNICAST_KEY_ID = 0
GLOBAL_BROADCAST_KEY_ID = 1
MASTER_KEK_ID = 0
ONE_PASS_DIFFIE_HELLMAN = b"\x01"
STATIC_UNIFIED_MODEL = b"\x02"


@dataclass(frozen=True, slots=True)
class IdentifiedKey:
    key_id: int = GLOBAL_UNICAST_KEY_ID

    def encode(self) -> bytes:
        return bytes((0, self.key_id))


@dataclass(frozen=True, slots=True)
class WrappedKey:
    key_ciphered_data: bytes
    kek_id: int = MASTER_KEK_ID

    def encode(self) -> bytes:
        return bytes((1, self.kek_id)) + octet_string(self.key_ciphered_data)


@dataclass(frozen=True, slots=True)
class AgreedKey:
    key_parameters: bytes
    key_ciphered_data: bytes = b""

    def encode(self) -> bytes:
        return b"\x02" + octet_string(self.key_parameters) + octet_string(self.key_ciphered_data)


KeyInfo = IdentifiedKey | WrappedKey | AgreedKey


def _decode_identified(buf: bytes | memoryview, offset: int) -> tuple[KeyInfo, int]:
    if offset >= len(buf):
        raise TruncatedError("identified-key: key-id expected, input ended")
    return IdentifiedKey(buf[offset]), offset + 1


def _decode_wrapped(buf: bytes | memoryview, offset: int) -> tuple[KeyInfo, int]:
    if offset >= len(buf):
        raise TruncatedError("wrapped-key: kek-id expected, input ended")
    data, offset2 = take_octet_string(buf, offset + 1, "wrapped-key key-ciphered-data")
    return WrappedKey(data, buf[offset]), offset2


def _decode_agreed(buf: bytes | memoryview, offset: int) -> tuple[KeyInfo, int]:
    params, offset = take_octet_string(buf, offset, "agreed-key key-parameters")
    data, offset = take_octet_string(buf, offset, "agreed-key key-ciphered-data")
    return AgreedKey(params, data), offset


_KEY_INFO_DECODERS = {0: _decode_identified, 1: _decode_wrapped, 2: _decode_agreed}


def decode_key_info(buf: bytes | memoryview, offset: int) -> tuple[KeyInfo | None, int]:
    """Decode ``key-info OPTIONAL`` (presence octet, then the CHOICE tag)."""
    if offset >= len(buf):
        raise TruncatedError("general-ciphering: key-info presence octet expected, input ended")
    present = buf[offset]
    if present == 0:
        return None, offset + 1
    if present != 1:
        raise DecodeError(
            f"general-ciphering key-info: presence octet 0x00 or 0x01 expected, got 0x{present:02X}"
        )
    if offset + 1 >= len(buf):
        raise TruncatedError("general-ciphering: key-info CHOICE tag expected, input ended")
    choice = buf[offset + 1]
    decoder = _KEY_INFO_DECODERS.get(choice)
    if decoder is None:
        raise DecodeError(
            f"general-ciphering key-info: CHOICE 0 (identified), 1 (wrapped) or 2 (agreed) expected, got {choice}"
        )
    return decoder(buf, offset + 2)


def encode_key_info(key_info: KeyInfo | None) -> bytes:
    return b"\x00" if key_info is None else b"\x01" + key_info.encode()


@dataclass(frozen=True, slots=True)
class TransactionHeader:
    """transaction-id .. other-information: the fields general-ciphering and -signing share."""

    transaction_id: bytes = b""
    originator_system_title: bytes = b""
    recipient_system_title: bytes = b""
    date_time: bytes = b""
    other_information: bytes = b""

    def encode(self) -> bytes:
        """The five fields with their length octets: what signatures and AAD cover."""
        return b"".join(
            octet_string(field)
            for field in (
                self.transaction_id,
                self.originator_system_title,
                self.recipient_system_title,
                self.date_time,
                self.other_information,
            )
        )

    @classmethod
    def decode(
        cls, buf: bytes | memoryview, offset: int, apdu: str
    ) -> tuple[TransactionHeader, int]:
        fields = []
        for name in _FIELD_NAMES:
            value, offset = take_octet_string(buf, offset, f"{apdu} {name}")
            fields.append(value)
        return cls(*fields), offset


_FIELD_NAMES = (
    "transaction-id",
    "originator-system-title",
    "recipient-system-title",
    "date-time",
    "other-information",
)


@dataclass(frozen=True, slots=True)
class GeneralCipheringHeader:
    """Everything of a general-ciphering APDU before ciphered-content."""

    fields: TransactionHeader
    key_info: KeyInfo | None = None

    def encode(self) -> bytes:
        return self.fields.encode() + encode_key_info(self.key_info)

    @classmethod
    def decode(cls, buf: bytes | memoryview, offset: int) -> tuple[GeneralCipheringHeader, int]:
        fields, offset = TransactionHeader.decode(buf, offset, "general-ciphering")
        key_info, offset = decode_key_info(buf, offset)
        return cls(fields, key_info), offset
