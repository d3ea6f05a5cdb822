"""What the clear header of a ciphered APDU says, read leniently (Green Book 9.2.7.2.4).

A ciphered push that cannot be opened (no key, a damaged frame, a capture cut short)
still names its sender and its protection in clear, before the ciphered content::

    DB | 08 | system title (8) | length | SC | invocation counter (4) | ...   general-glo-
    C8..CF (glo- service tags)  | length | SC | invocation counter (4) | ...

:func:`peek_security_header` reads only those fields, from as many bytes as are there,
so a user always learns which meter sent the frame (system title and the manufacturer's
FLAG id, Green Book 4.3.4), its security control byte and which keys it needs: the
encryption key (EK) alone for encryption only (SC 0x20: no tag), EK and the
authentication key (AK) when it is authenticated. :attr:`SecurityHeaderSeen.keys` names
them as settings (``ek``, ``ak``); the command line turns them into its options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from edge_agent.dlms.errors import DecodeError
from edge_agent.dlms.security.control import SecurityControl
from edge_agent.dlms.security.tags import CIPHERED, Form
from edge_agent.dlms.system_title import LENGTH as SYSTEM_TITLE_LENGTH
from edge_agent.dlms.system_title import SystemTitle

__all__ = ["SecurityHeaderSeen", "peek_security_header"]

_IC_LENGTH: Final = 4


@dataclass(frozen=True, slots=True)
class SecurityHeaderSeen:
    """The clear fields of a ciphered APDU; ``None`` where the bytes ended before them.

    ``declared_length`` is the ciphered content's length as the APDU states it and
    ``available`` how many of those bytes were there.
    """

    tag: int
    name: str
    system_title: SystemTitle | None
    security_control: int | None
    invocation_counter: int | None
    declared_length: int | None
    available: int

    @property
    def manufacturer(self) -> str | None:
        return self.system_title.manufacturer if self.system_title is not None else None

    @property
    def sc(self) -> SecurityControl | None:
        if self.security_control is None:
            return None
        try:
            return SecurityControl.decode(self.security_control)
        except DecodeError:  # an undefined suite
            return None

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys this APDU needs, as settings: ``("ek",)``, ``("ek", "ak")``."""
        sc = self.sc
        if sc is None:
            return ("ek", "ak")  # the security control byte was not received
        return (("ek",) if sc.encryption else ()) + (("ak",) if sc.authentication else ())

    def keys_needed(self) -> str:
        sc = self.sc
        if sc is None:
            return "the encryption key (EK) and, if it is authenticated, the AK"
        return sc.keys_needed()

    def sender(self) -> str:
        """'system title 4B464D1020029802 (manufacturer KFM)'."""
        if self.system_title is None:
            return ("no system title (a glo- APDU: the sender's comes from the association or "
                    "the system_title setting)")
        maker = self.manufacturer
        text = f"system title {self.system_title.text}"
        return text + (f" (manufacturer {maker})" if maker else "")

    def describe(self) -> str:
        """One line for messages: sender, SC, invocation counter and the keys it needs."""
        parts = [f"{self.name} from {self.sender()}"]
        if self.security_control is not None:
            sc = self.sc
            parts.append(sc.describe() if sc is not None
                         else f"SC 0x{self.security_control:02X} (undefined suite)")
        if self.invocation_counter is not None:
            parts.append(f"invocation counter {self.invocation_counter}")
        return ", ".join(parts) + f"; needs {self.keys_needed()}"

    def as_tree(self) -> dict[str, str | int | list[str] | None]:
        return {
            "type": self.name,
            "tag": f"0x{self.tag:02X}",
            "system_title": self.system_title.hex() if self.system_title is not None else None,
            "manufacturer": self.manufacturer,
            "security_control": (f"0x{self.security_control:02X}"
                                 if self.security_control is not None else None),
            "invocation_counter": self.invocation_counter,
            "keys_needed": self.keys_needed(),
            "keys": list(self.keys),
        }


def _length(apdu: bytes, offset: int) -> tuple[int | None, int]:
    """A BER length (Green Book 9.5: A-XDR octet-string lengths) or None if cut off."""
    if offset >= len(apdu):
        return None, offset
    first = apdu[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if count > 2 or offset + 1 + count > len(apdu):
        return None, offset + 1 + count
    return int.from_bytes(apdu[offset + 1 : offset + 1 + count], "big"), offset + 1 + count


def peek_security_header(apdu: bytes) -> SecurityHeaderSeen | None:
    """The clear header of a glo- or general-glo-/general-ded-ciphering APDU, else None.

    General-ciphering (0xDD) carries a longer header with key information: only its tag
    is named here (the full decoder reads it when the APDU is whole).
    """
    if not apdu or apdu[0] not in CIPHERED:
        return None
    tag = apdu[0]
    form, name = CIPHERED[tag]
    offset = 1
    system_title: SystemTitle | None = None
    if form in (Form.GENERAL_GLO, Form.GENERAL_DED):
        if len(apdu) < 2 or apdu[1] != SYSTEM_TITLE_LENGTH:
            return None  # not a plausible general-glo-ciphering APDU
        offset = 2 + SYSTEM_TITLE_LENGTH
        if len(apdu) < offset:
            return SecurityHeaderSeen(tag, name, None, None, None, None, 0)
        system_title = SystemTitle(apdu[2:offset])
    elif form is Form.GENERAL:
        return SecurityHeaderSeen(tag, name, None, None, None, None, max(len(apdu) - 1, 0))
    declared, offset = _length(apdu, offset)
    content = apdu[offset:]
    sc = content[0] if content else None
    counter = (int.from_bytes(content[1 : 1 + _IC_LENGTH], "big")
               if len(content) >= 1 + _IC_LENGTH else None)
    return SecurityHeaderSeen(tag, name, system_title, sc, counter, declared, len(content))
