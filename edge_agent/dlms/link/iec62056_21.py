"""IEC 62056-21 sign-on into protocol mode E (HDLC) for optical heads, sans-IO.

Clause 6.3 / 6.4.5 (mode E): the client talks at 300 baud 7E1::

    client  /?[device address]!CR LF          request message
    meter   /MMMZ\\W<identification>CR LF       MMM manufacturer, Z baud character,
                                               \\2 "protocol mode E (HDLC) supported"
    client  ACK 2 Z 2 CR LF                    option select: V=2 (HDLC protocol control),
                                               Z baud, Y=2 (binary mode, i.e. HDLC)

then both sides switch to the baud of Z, 8N1, and HDLC begins (SNRM). :class:`SignOn`
holds the state: it says what to send and, at the end, which baud to switch to; the
transport does the writing, the timing and the switching.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from edge_agent.dlms.errors import EncodeError, FrameError, ProtocolError

__all__ = [
    "BAUD_RATES",
    "SIGN_ON_BAUD",
    "Identification",
    "ProtocolControl",
    "SignOn",
    "SignOnResult",
    "option_select_message",
    "request_message",
]

SIGN_ON_BAUD: Final = 300
# Baud rate characters of protocol mode C and E (clause 6.3.14).
BAUD_RATES: Final = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
_BAUD_CHARACTER: Final = {baud: char for char, baud in BAUD_RATES.items()}
_ACK: Final = b"\x06"
_CR_LF: Final = b"\r\n"
_MAX_IDENTIFICATION_LINE: Final = 64  # "/" + 3 + 1 + "\\W" + 16 ... + CR LF, with margin
# "/" manufacturer(3) baud(1) then optional "\W" enhanced capability, identification.
_IDENTIFICATION: Final = re.compile(
    rb"/([A-Za-z]{3})([\x21-\x7e])((?:\\[\x21-\x7e])*)([\x20-\x7e]{0,32})\r\n")
_ADDRESS: Final = re.compile(r"[0-9A-Za-z ]{0,32}")


class ProtocolControl(enum.Enum):
    """V of the option select message; mode E uses HDLC (2)."""

    NORMAL = "0"
    SECONDARY = "1"
    HDLC = "2"


@dataclass(frozen=True, slots=True)
class Identification:
    """The meter's identification message."""

    manufacturer: str  # three letters, e.g. "SAG", "LGZ", "KFM"
    baud_character: str
    identification: str
    enhanced_capabilities: str  # the characters after "\", e.g. "2" for mode E

    @property
    def max_baud(self) -> int | None:
        return BAUD_RATES.get(self.baud_character)

    @property
    def supports_mode_e(self) -> bool:
        return "2" in self.enhanced_capabilities

    def encode(self) -> bytes:
        capabilities = "".join("\\" + c for c in self.enhanced_capabilities)
        text = f"/{self.manufacturer}{self.baud_character}{capabilities}{self.identification}"
        return text.encode("ascii") + _CR_LF

    @classmethod
    def decode(cls, data: bytes | memoryview, offset: int = 0) -> Identification:
        line = bytes(data[offset:])
        match = _IDENTIFICATION.fullmatch(line)
        if match is None:
            raise FrameError(
                f"not an IEC 62056-21 identification message: {line[:40]!r}; expected"
                " '/MMMZ\\2ident CR LF' (check the optical head position and that the meter"
                " answers at 300 baud 7E1)"
            )
        manufacturer, baud, capabilities, identification = match.groups()
        return cls(
            manufacturer.decode("ascii"),
            baud.decode("ascii"),
            identification.decode("ascii"),
            capabilities.decode("ascii").replace("\\", ""),
        )


def request_message(device_address: str = "") -> bytes:
    """``/?[address]!CR LF``; the address selects one meter on a shared optical bus."""
    if _ADDRESS.fullmatch(device_address) is None:
        raise EncodeError(
            f"IEC 62056-21 device address {device_address!r} must be up to 32 letters/digits"
        )
    return b"/?" + device_address.encode("ascii") + b"!" + _CR_LF


def option_select_message(baud: int, protocol: ProtocolControl = ProtocolControl.HDLC) -> bytes:
    """``ACK V Z Y CR LF`` with Y=2 (binary mode, HDLC) for protocol mode E."""
    character = _BAUD_CHARACTER.get(baud)
    if character is None:
        raise EncodeError(
            f"baud {baud} has no mode E character; choose one of {sorted(_BAUD_CHARACTER)}"
        )
    return _ACK + protocol.value.encode() + character.encode() + b"2" + _CR_LF


@dataclass(frozen=True, slots=True)
class SignOnResult:
    identification: Identification
    acknowledgement: bytes  # send this at 300 baud ...
    baud: int  # ... then switch to this baud (8N1) and start HDLC


class SignOn:
    """Sign-on state machine: ``request()`` then ``receive_data()`` until a result.

    Half-duplex optical heads often echo what we send; an echoed request line is skipped.
    """

    __slots__ = ("_buffer", "_result", "device_address", "max_baud")

    def __init__(self, device_address: str = "", max_baud: int = 19200) -> None:
        if max_baud not in _BAUD_CHARACTER:
            raise EncodeError(
                f"max_baud {max_baud} is not a mode E baud rate ({sorted(_BAUD_CHARACTER)})"
            )
        self.device_address = device_address
        self.max_baud = max_baud
        self._buffer = b""
        self._result: SignOnResult | None = None

    def request(self) -> bytes:
        """The request message, sent at :data:`SIGN_ON_BAUD` 7E1."""
        self._buffer = b""
        self._result = None
        return request_message(self.device_address)

    def receive_data(self, data: bytes) -> SignOnResult | None:
        """Feed bytes read at 300 baud; returns the result once the identification is in."""
        if self._result is not None:
            return self._result
        # Optical heads at 7 data bits may hand us the parity bit: strip bit 7.
        self._buffer += bytes(data).translate(_STRIP_PARITY)
        while (end := self._buffer.find(_CR_LF)) >= 0:
            line, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
            start = line.rfind(b"/")
            if start < 0 or line[start:].startswith(b"/?"):
                continue  # echo of our own request, or noise before the identification
            identification = Identification.decode(line, start)
            if not identification.supports_mode_e:
                raise ProtocolError(
                    f"meter {identification.manufacturer} '{identification.identification}' does"
                    " not announce protocol mode E (\\2): it cannot switch to HDLC on the optical port"
                )
            meter_baud = identification.max_baud
            if meter_baud is None:
                raise ProtocolError(
                    f"meter proposes baud character {identification.baud_character!r}, which is"
                    " not a mode C/E baud rate (0-6)"
                )
            baud = min(meter_baud, self.max_baud)
            self._result = SignOnResult(identification, option_select_message(baud), baud)
            return self._result
        if len(self._buffer) > _MAX_IDENTIFICATION_LINE:
            raise FrameError(
                f"no identification line after {len(self._buffer)} bytes ({self._buffer[:24]!r}...):"
                " wrong baud/parity, or not an IEC 62056-21 optical port"
            )
        return None


_STRIP_PARITY: Final = bytes(i & 0x7F for i in range(256))
