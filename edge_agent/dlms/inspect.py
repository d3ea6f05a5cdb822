"""Turn any captured frame or APDU into a JSON-able tree (what `dlms-edge decode` prints).

Sans-IO: bytes and keys in, a tree of dicts/lists/str/int out. The framing is found by
the push reassembler (:mod:`edge_agent.dlms.push.reassembly`), the one every push decoder
uses, so ``decode`` and ``listen`` read a capture alike:

    7E ...            HDLC frames (IEC 62056-46), one or more, segments reassembled, the
                      LLC header stripped where present, general-block-transfer joined
    00 01 ...         TCP wrapper frames (IEC 62056-47)
    68 L L 68 ...     wired M-Bus long frames (EN 13757-2), a telegram over several frames
    E6 E7 00 ...      an LLC header without a frame (as readers log), then the APDU
    anything else     an xDLMS/ACSE APDU: plain, ciphered (glo-, ded-, general-*),
                      general-signing (0xDF), or the DSMR P1 text a T-210D-r ciphers

Garbage around frames is skipped and listed; damaged and cut-off frames are listed as
problems, with what their clear part shows.

Protection layers are removed when :class:`DecodeKeys` holds what they need (ciphering
keys, the sender's system title, a signer's certificate or public key); without keys a
ciphered APDU is shown as far as it can be read, with the keys it needs. A layer that
fails verification raises (AuthenticationError / SignatureError): nothing of it is shown.

Capture files (``--capture`` of read/listen/run) hold one frame per line in
:data:`CAPTURE_FORMAT`; :func:`parse_line` reads those lines and bare hex alike.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from edge_agent.dlms.apdu import decode_apdu
from edge_agent.dlms.apdu.base import (
    OMITTED,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    Omitted,
)
from edge_agent.dlms.apdu.results import StandardEnum
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.encoding.date_time import (
    CosemDate,
    CosemDateTime,
    CosemTime,
)
from edge_agent.dlms.errors import AuthenticationError, DecodeError, DlmsError, FrameError
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.notification_quirks import standard_data_notification
from edge_agent.dlms.push.reassembly import (
    ControlFrame,
    Damaged,
    Incomplete,
    Skipped,
    Telegram,
    reassemble,
)
from edge_agent.dlms.push.reassembly_events import WRAPPER
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.ciphering import CipheredApdu, decipher_plaintext
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.tags import CIPHERED, GENERAL_SIGNING
from edge_agent.dlms.system_title import SystemTitle

if TYPE_CHECKING:
    from edge_agent.dlms.cosem.obis import Obis
    from edge_agent.dlms.link.hdlc.frame import HdlcFrame
    from edge_agent.dlms.push.body import PushItem
    from edge_agent.dlms.push.reassembly_events import LinkFrame
    from edge_agent.dlms.security.signing import PublicKeyOrCertificate

# What a capture may or may not hold is decoded by modules imported where first needed
# (ACSE, general-signing, DSMR P1, push bodies, OBIS names, interface classes): `dlms-edge
# decode -` runs as a process per capture, and a log of GET answers should not pay for
# loading the rest.

__all__ = ["CAPTURE_FORMAT", "CaptureLine", "DecodeKeys", "format_capture_line", "inspect",
           "parse_hex", "parse_line"]

Tree = dict[str, Any]

# --- capture lines ----------------------------------------------------------------------------

#: One frame per line: ISO 8601 UTC time with milliseconds and "Z", direction seen from
#: dlms-edge ("tx" sent by us, "rx" received), the frame as lower-case hex. Blank lines and
#: lines starting with "#" are comments. Example:
#: ``2026-11-25T01:02:03.456Z tx 7ea0070321930f017e``
CAPTURE_FORMAT = "<iso-8601-utc> <tx|rx> <hex>"
DIRECTIONS = ("tx", "rx")
_HEX_NOISE = re.compile(r"[\s:]+")


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One line of input: a frame, and when it came from a capture file its time and direction."""

    frame: bytes
    timestamp: datetime | None = None
    direction: str | None = None

    def encode(self) -> str:
        if self.timestamp is None or self.direction is None:
            return self.frame.hex()
        return format_capture_line(self.timestamp, self.direction, self.frame)


def format_capture_line(timestamp: datetime, direction: str, frame: bytes) -> str:
    """The capture line of ``frame`` (``timestamp`` aware; it is written in UTC)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"capture direction must be 'tx' or 'rx', got {direction!r}")
    if timestamp.tzinfo is None:
        raise ValueError("capture timestamps must be timezone-aware (UTC)")
    utc = timestamp.astimezone(UTC)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}.{utc.microsecond // 1000:03d}Z {direction} {bytes(frame).hex()}"


def parse_hex(text: str) -> bytes:
    """Hex with optional 0x, spaces or colons between bytes; DecodeError says what is wrong."""
    try:
        data = bytes.fromhex(text)  # what captures hold: plain hex, maybe spaced by bytes
    except ValueError:
        data = b""
    if data:
        return data
    cleaned = _HEX_NOISE.sub("", text)
    cleaned = cleaned[2:] if cleaned[:2] in ("0x", "0X") else cleaned
    if not cleaned:
        raise DecodeError("no hex digits given: expected a frame or APDU as hex (e.g. 7ea0...7e)")
    bad = re.search(r"[^0-9A-Fa-f]", cleaned)
    if bad is not None:
        raise DecodeError(
            f"not hexadecimal: character {bad.group()!r} at position {bad.start()} "
            f"(expected a hex string, or a capture line '{CAPTURE_FORMAT}')"
        )
    if len(cleaned) % 2:
        raise DecodeError(f"odd number of hex digits ({len(cleaned)}): a byte is cut in half")
    return bytes.fromhex(cleaned)


def parse_line(line: str) -> CaptureLine | None:
    """A capture line or a bare hex line; None for blank lines and ``#`` comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.split(None, 2)
    if len(parts) == 3 and parts[1] in DIRECTIONS:
        try:
            timestamp = datetime.fromisoformat(parts[0])
        except ValueError:
            raise DecodeError(
                f"capture line time {parts[0]!r} is not ISO 8601 (expected '{CAPTURE_FORMAT}', "
                "e.g. 2026-11-25T01:02:03.456Z tx 7ea0...)"
            ) from None
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        return CaptureLine(parse_hex(parts[2]), timestamp, parts[1])
    return CaptureLine(parse_hex(text))


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodeKeys:
    """What may be used to open protection layers; every part is optional.

    ``system_title`` is the sender's, for glo-/ded- APDUs that do not carry it.
    ``signer`` verifies general-signing of any originator; ``signers`` by system title.
    """

    cipher: CipherKeys = field(default_factory=CipherKeys)
    system_title: bytes | None = None
    signer: PublicKeyOrCertificate | None = None
    signers: Mapping[bytes, PublicKeyOrCertificate] = field(default_factory=dict)

    def __repr__(self) -> str:
        return "<DecodeKeys>"

    @property
    def can_decipher(self) -> bool:
        c = self.cipher
        return (c.ek is not None or c.ak is not None or c.broadcast_ek is not None
                or c.dedicated_ek is not None or c.kek is not None)

    def signer_of(self, system_title: bytes) -> PublicKeyOrCertificate | None:
        return self.signers.get(system_title, self.signer)


@dataclass(slots=True)
class _Walk:
    """State of one inspection: keys in, the plaintexts deciphered so far out (hex)."""

    keys: DecodeKeys
    plaintexts: list[str] = field(default_factory=list)
    depth: int = 0


_MAX_NESTING = 6  # frame → APDU → ciphering → signing → ciphering → APDU, with room to spare


# --- entry point ------------------------------------------------------------------------------


def inspect(data: bytes | bytearray | memoryview, keys: DecodeKeys | None = None) -> Tree:
    """The tree of ``data`` (one or more frames, or one APDU).

    The framing is found by :func:`~edge_agent.dlms.push.reassembly.reassemble`, which
    every push decoder shares. Bytes that are no frame are listed under ``"skipped"``
    (offset, length); damaged frames and what a capture lacks under ``"problems"`` (each
    with a message naming what was seen: the ciphered APDU's system title, security
    control and the keys it needs), and every complete telegram is decoded all the same.
    One APDU alone raises its error as before; among several, an APDU that does not
    decode becomes a problem so the others are still shown.

    ``"plaintext"`` (hex) is present when a ciphered APDU was deciphered: the content of the
    first (outermost) ciphered layer.
    """
    buf = bytes(data)
    if not buf:
        raise DecodeError("empty input: expected a frame or an APDU")
    walk = _Walk(keys or DecodeKeys())
    events = reassemble(buf)
    if len(events) == 1 and type(event := events[0]) is Telegram and event.framing == WRAPPER:
        return _wrapped(buf, event, walk)  # a capture line of a TCP meter's answer
    telegrams: list[Telegram] = []
    skipped: list[Skipped] = []
    problems: list[Tree] = []
    frames: list[LinkFrame] = []  # every link frame, in order
    for event in events:
        if isinstance(event, Telegram):
            telegrams.append(event)
            frames += event.frames
        elif isinstance(event, Skipped):
            skipped.append(event)
        elif isinstance(event, ControlFrame):
            frames.append(event.frame)
        elif isinstance(event, Damaged | Incomplete):
            problems.append(_problem(event))
    if not telegrams and not problems and not frames:
        raise FrameError(
            f"no frame in {len(buf)} bytes: " + "; ".join(e.message for e in skipped)
            + " (expected HDLC 7e..7e, M-Bus 68 L L 68..16, wrapper 00 01.., or an APDU)")
    tree: Tree = {"format": _format_of(telegrams, buf), "length": len(buf)}
    wrapped = len(telegrams) == 1 and telegrams[0].framing == "wrapper"
    if frames and not wrapped:  # one wrapper frame is shown with its APDU (below)
        tree["frames"] = [_frame_tree(frame) for frame in frames]
    alone = len(telegrams) == 1 and not problems and not skipped
    apdus: list[Tree] = []
    for telegram in telegrams:
        try:
            node = _apdu(telegram.apdu, walk)
        except DlmsError as error:
            if alone:
                raise
            problems.append({"offset": telegram.offset, "kind": type(error).__name__,
                             "message": f"{telegram.framing} telegram at offset "
                             f"{telegram.offset}: {error}"})
            continue
        if telegram.notes:
            node["notes"] = list(telegram.notes) + node.get("notes", [])
        if telegram.framing == "wrapper":
            wrapper = telegram.frames[0]
            assert isinstance(wrapper, WrapperFrame)
            tree.setdefault("frames", []).append({
                "source_wport": wrapper.source_wport,
                "destination_wport": wrapper.destination_wport,
                "apdu": node,
            })
            continue
        apdus.append(node)
    tree.update(_apdus(apdus))
    if skipped:
        tree["skipped"] = [{"offset": e.offset, "length": e.length} for e in skipped]
    if problems:
        tree["problems"] = problems
    if walk.plaintexts:
        tree["plaintext"] = walk.plaintexts[0]
    return tree


def _wrapped(buf: bytes, telegram: Telegram, walk: _Walk) -> Tree:
    """The tree :func:`inspect` makes of one whole wrapper frame, the one telegram of ``buf``
    (its APDU shown inside the frame), made without the general case's bookkeeping."""
    wrapper = telegram.frames[0]
    assert isinstance(wrapper, WrapperFrame)
    node = _apdu(telegram.apdu, walk)  # alone: its error is the capture's
    if telegram.notes:
        node["notes"] = list(telegram.notes) + node.get("notes", [])
    tree: Tree = {"format": WRAPPER, "length": len(buf), "frames": [{
        "source_wport": wrapper.source_wport,
        "destination_wport": wrapper.destination_wport,
        "apdu": node,
    }]}
    if walk.plaintexts:
        tree["plaintext"] = walk.plaintexts[0]
    return tree


_FIRST_BYTES: Final = {0x7E: "hdlc", 0x68: "mbus", 0x00: "wrapper"}


def _format_of(telegrams: list[Telegram], buf: bytes) -> str:
    if telegrams:
        return telegrams[0].framing
    return _FIRST_BYTES.get(buf[0], "apdu")


def _problem(event: Damaged | Incomplete) -> Tree:
    node: Tree = {"offset": event.offset,
                  "kind": "damaged" if isinstance(event, Damaged) else "incomplete",
                  "message": event.message}
    if isinstance(event, Incomplete) and event.missing_bytes is not None:
        node["missing_bytes"] = event.missing_bytes
    if event.seen is not None:
        node["seen"] = event.seen.as_tree()
    return node


def _frame_tree(frame: LinkFrame) -> Tree:
    if isinstance(frame, WrapperFrame):
        return {"source_wport": frame.source_wport, "destination_wport": frame.destination_wport}
    # Any other frame came through the reassembler's scanner, which loaded these classes.
    from edge_agent.dlms.link.hdlc.frame import HdlcFrame

    if isinstance(frame, HdlcFrame):
        return _hdlc_frame(frame)
    return {  # an M-Bus long frame
        "control": f"0x{frame.control:02X}",
        "address": f"0x{frame.address:02X}",
        "control_information": f"0x{frame.control_information:02X}",
        "segment": frame.segment_number,
        "final_segment": frame.final_segment,
        "data_length": len(frame.data),
    }


def _hdlc_frame(frame: HdlcFrame) -> Tree:
    from edge_agent.dlms.link.hdlc.frame import FrameKind, HdlcParameters

    node: Tree = {
        "kind": frame.kind.value,
        "destination": str(frame.destination),
        "source": str(frame.source),
        "control": f"0x{frame.control:02X}",
        "poll_final": frame.poll_final,
    }
    if frame.kind is FrameKind.I:
        node["send_sequence"] = frame.send_sequence
    if frame.kind in (FrameKind.I, FrameKind.RR, FrameKind.RNR):
        node["receive_sequence"] = frame.receive_sequence
    if frame.segmented:
        node["segmented"] = True
    if frame.kind in (FrameKind.SNRM, FrameKind.UA) and frame.info:
        node["parameters"] = _tree(HdlcParameters.decode(frame.info))
    elif frame.info:
        node["info_length"] = len(frame.info)
    return node


def _apdus(apdus: list[Tree]) -> Tree:
    """One APDU as "apdu", several as "apdus", none: nothing."""
    return {"apdu": apdus[0]} if len(apdus) == 1 else {"apdus": apdus} if apdus else {}


# --- APDUs ------------------------------------------------------------------------------------


def _apdu(buf: bytes, walk: _Walk) -> Tree:
    if not buf:
        raise DecodeError("empty APDU")
    if walk.depth > _MAX_NESTING:
        raise DecodeError(f"more than {_MAX_NESTING} nested layers: not a valid APDU")
    walk.depth += 1
    try:
        tag = buf[0]
        if tag in CIPHERED:
            return _ciphered(buf, walk)
        if tag == GENERAL_SIGNING:
            return _signed(buf, walk)
        if tag in _ACSE_TAGS:
            return _acse(buf, walk)
        if tag == _DSMR_START:
            return _dsmr(buf)
        return _xdlms(buf)
    finally:
        walk.depth -= 1


def _xdlms(buf: bytes) -> Tree:
    buf, note = standard_data_notification(buf)
    apdu = decode_apdu(buf)
    node: Tree = {"type": apdu.NAME, "tag": _BYTE_TEXT[buf[0]]}
    if note is not None:
        node["notes"] = [note]
    invoke_id = getattr(apdu, "invoke_id", None)
    if invoke_id is not None:
        node["invoke_id"] = invoke_id
    node.update(_fields(apdu))
    names = _FIELD_NAMES[type(apdu)]  # looked up by _fields
    if "date_time" in names:  # a notification's (Green Book 9.5: DataNotification)
        date_time = apdu.date_time  # type: ignore[union-attr]  # the field is there
        if isinstance(date_time, bytes) and date_time:
            node["date_time"] = _octets(date_time)
    if "notification_body" in names:
        body = apdu.notification_body  # type: ignore[union-attr]  # the field is there
        if body is not None:
            node.update(push_values(body))
    return node


_ACSE_TAGS = frozenset({0x60, 0x61, 0x62, 0x63})
_DSMR_START = ord("/")  # a P1 telegram begins with its identification line, "/XXX5..."


def _acse(buf: bytes, walk: _Walk) -> Tree:
    from edge_agent.dlms.apdu.acse import decode_acse

    pdu = decode_acse(buf)
    node: Tree = {"type": pdu.NAME, "tag": f"0x{buf[0]:02X}"}
    node.update(_fields(pdu))
    if pdu.user_information:
        # A ciphered InitiateRequest/-Response is ciphered by the AP title's owner.
        title = getattr(pdu, "calling_ap_title", None) or getattr(pdu, "responding_ap_title", None)
        keys = walk.keys
        if title and keys.system_title is None:
            keys = dataclasses.replace(keys, system_title=title)
        inner = _Walk(keys, walk.plaintexts, walk.depth)
        node["user_information"] = _apdu(pdu.user_information, inner)
    return node


def _system_title(title: bytes) -> Tree:
    node: Tree = {"hex": title.hex()}
    maker = SystemTitle(title).manufacturer if len(title) == 8 else None  # FLAG id (4.3.4)
    if maker is not None:
        node["manufacturer"] = maker
    return node


def _ciphered(buf: bytes, walk: _Walk) -> Tree:
    try:
        ciphered, end = CipheredApdu.decode(buf)
    except DecodeError as error:
        from edge_agent.dlms.push.security_header import peek_security_header

        seen = peek_security_header(buf)
        if seen is None or seen.security_control is None:
            raise
        # Cut short or malformed, but its clear header still says who sent it and how.
        raise type(error)(f"{error}; it is {seen.describe()}") from None
    sc = ciphered.sc
    security_control, description, keys_needed = _security_texts(ciphered)
    node: Tree = {
        "type": ciphered.name,
        "tag": _BYTE_TEXT[ciphered.tag],
        "security_control": dict(security_control),  # a copy: trees are the caller's
        "security": description,
        "invocation_counter": ciphered.invocation_counter,
    }
    if ciphered.system_title is not None:
        node["system_title"] = _system_title(ciphered.system_title)
    if ciphered.header is not None:
        node["header"] = _tree(ciphered.header)
    node["information_length"] = len(ciphered.information)
    if ciphered.auth_tag:
        node["authentication_tag"] = ciphered.auth_tag.hex()
    node["keys_needed"] = keys_needed
    if end != len(buf):
        # The ciphered content states its length, so what follows is not part of it
        # (a logger's FCS and flag after an LLC-only dump): shown, not used.
        note = (f"{len(buf) - end} byte(s) after the ciphered content are not part of it and "
                f"were ignored: {buf[end:].hex()}")
        node["notes"] = [note]
    keys = walk.keys
    if not keys.can_decipher:
        from edge_agent.dlms.push.security_header import peek_security_header

        seen = peek_security_header(buf)
        node["deciphered"] = False
        node["keys"] = list(seen.keys) if seen is not None else ["ek", "ak"]
        node["note"] = (seen.describe() if seen is not None else
                        f"{ciphered.keys_needed()}, and the sender's system title")
        return node
    try:
        plain, key_id = decipher_plaintext(ciphered, keys.cipher, keys.system_title)
    except AuthenticationError as error:
        raise AuthenticationError(f"{error}. {ciphered.keys_needed()}") from None
    plaintext = plain.hex()
    walk.plaintexts.append(plaintext)  # outermost first: recursion comes after
    try:
        content = _apdu(plain, walk)
    except DecodeError as error:
        if sc.authentication:
            raise
        # Encryption only: no tag, so a wrong EK or system title shows only as garbage.
        raise AuthenticationError(
            f"{ciphered.name} deciphered to bytes that are no valid APDU ({error}): wrong EK or "
            f"system title. {ciphered.keys_needed()}"
        ) from None
    node["deciphered"] = True
    node["key"] = key_id
    node["plaintext"] = plaintext
    node["content"] = content
    return node


# "0x30" for 0x30: tags and SC bytes as the tree shows them.
_BYTE_TEXT: Final = tuple(f"0x{octet:02X}" for octet in range(256))
# (tag, SC byte, no system title carried) -> what _security_texts gives for it.
_SECURITY_TEXTS: dict[tuple[int, int, bool], tuple[Tree, str, str]] = {}


def _security_texts(ciphered: CipheredApdu) -> tuple[Tree, str, str]:
    """The SC byte's bits by name (Green Book 9.2.7.2.2), its description and the keys the
    APDU needs. Without a general-ciphering header (whose key-info also counts) the tag, the
    SC byte and whether a system title is carried decide them: made once for each, as a
    capture repeats a few."""
    sc = ciphered.sc
    if ciphered.header is not None:
        return _security_control(sc), sc.describe(), ciphered.keys_needed()
    key = (ciphered.tag, sc.byte, ciphered.system_title is None)
    texts = _SECURITY_TEXTS.get(key)
    if texts is None:
        texts = _SECURITY_TEXTS[key] = (_security_control(sc), sc.describe(),
                                        ciphered.keys_needed())
    return texts


def _security_control(sc: SecurityControl) -> Tree:
    return {
        "byte": _BYTE_TEXT[sc.byte],
        "suite": sc.suite,
        "authentication": sc.authentication,
        "encryption": sc.encryption,
        "broadcast_key": sc.broadcast,
        "compression": sc.compression,
    }


def _signed(buf: bytes, walk: _Walk) -> Tree:
    from edge_agent.dlms.security.signing import GeneralSigning, verify

    signed = GeneralSigning.from_bytes(buf)
    header = signed.header
    node: Tree = {
        "type": "general-signing",
        "tag": f"0x{GENERAL_SIGNING:02X}",
        "transaction_id": header.transaction_id.hex(),
        "originator_system_title": _system_title(header.originator_system_title),
        "recipient_system_title": _system_title(header.recipient_system_title),
        "date_time": _octets(header.date_time) if header.date_time else "",
        "other_information": header.other_information.hex(),
        "signature": signed.signature.hex(),
    }
    signer = walk.keys.signer_of(header.originator_system_title)
    if signer is None:
        node["signature_status"] = "not verified: give the signer's --cert PEM or --public-key HEX"
    else:
        verify(signed, signer)  # raises SignatureError
        node["signature_status"] = "valid"
    node["content"] = _apdu(signed.content, walk)
    return node


# --- DSMR P1 text and push payloads: the push decoders' reading, as a tree ---------------------


def _dsmr(buf: bytes) -> Tree:
    """A P1 telegram (a T-210D-r ciphers it in general-glo-ciphering); the CRC is checked."""
    from edge_agent.dlms.push.dsmr import DsmrTelegram

    telegram = DsmrTelegram.decode(buf)
    node: Tree = {"type": "dsmr-p1-telegram", "identification": telegram.identification}
    if telegram.timestamp is not None:
        node["timestamp"] = telegram.timestamp.isoformat()
    node["values"] = _items(telegram.items)
    return node


def push_values(body: Any) -> Tree:
    """Values per OBIS of a pushed notification body, read by :func:`push_body.decode_body`
    (OBIS, value, scaler_unit triples: T-210D and IDIS-style push objects); ``{}`` when the
    body names no OBIS code (a push object list body says nothing without the list)."""
    from edge_agent.dlms.push.body import decode_body

    try:
        content = decode_body(body)
    except DecodeError:
        return {}
    node: Tree = {}
    if content.meter_number is not None:
        node["meter_number"] = content.meter_number
    if content.timestamp is not None:
        node["timestamp"] = content.timestamp.isoformat()
    node["values"] = _items(content.items)
    return node


@functools.lru_cache(maxsize=1024)
def _obis_name(code: Obis) -> str:
    """An object's name (Blue Book 7.3 and the tables of :mod:`~edge_agent.dlms.cosem.obis`):
    a capture names the same objects push after push, answer after answer."""
    from edge_agent.dlms.cosem.obis import name

    return name(code)


def _items(items: tuple[PushItem, ...]) -> Tree:
    return {item.obis.dotted: {"name": _obis_name(item.obis), "value": _plain(item.value),
                               "unit": item.unit} for item in items}


_PRINTABLE: Final = bytes(range(0x20, 0x7F))


def _printable(value: bytes | str) -> bool:
    raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    return len(raw) >= 2 and not raw.translate(None, _PRINTABLE)  # nothing left: all printable


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else bytes(value).decode("ascii")


def _plain(value: Any) -> Any:
    """A Data value as a bare JSON value (for push values): text, number, hex."""
    if isinstance(value, axdr.OctetString):
        return _text(value) if _printable(value) else bytes(value).hex()
    rendered = _data(value)
    return rendered.get("value") if isinstance(rendered, dict) else rendered


# --- generic tree of dataclasses and Data values ------------------------------------------------


def _is_data(value: Any) -> bool:
    """A typed A-XDR value (APDU classes have a TAG too, but not a DataType one)."""
    return isinstance(getattr(value, "TAG", None), axdr.DataType)


_NAMES: Final = {tag: tag.name.lower().replace("_", "-") for tag in axdr.DataType}


def _type_name(value: Any) -> str:
    return _NAMES[axdr.DataType(value.TAG)]


def _octets(raw: bytes) -> Tree | str:
    """Octet strings: hex, plus what they evidently are (OBIS code, date-time, text)."""
    node: Tree = {"type": "octet-string", "value": raw.hex()}
    size = len(raw)
    if size == 6 and _printable(raw):
        node["text"] = _text(raw)  # six printable bytes are text (a serial), not an OBIS code
    elif size == 6:
        from edge_agent.dlms.cosem.obis import Obis

        code = Obis.from_bytes(raw)
        node["obis"] = code.dotted
        node["name"] = _obis_name(code)
    elif size == CosemDateTime.SIZE and (date_time := _date_time(raw)) is not None:
        node["date_time"] = str(date_time)
    elif _printable(raw):
        node["text"] = _text(raw)
    return node


def _date_time(raw: bytes) -> CosemDateTime | None:
    """The date-time 12 octets hold, or None (as :func:`looks_like_date_time` decides)."""
    if len(raw) != CosemDateTime.SIZE:
        return None
    try:
        return CosemDateTime.decode(raw)
    except DecodeError:
        return None


def _float32(value: float) -> float:
    from edge_agent.dlms.cosem.units import float32_shortest

    return float32_shortest(value)


def _scalar(name: str, convert: Callable[[Any], Any]) -> Callable[[Any], Tree]:
    return lambda value: {"type": name, "value": convert(value)}


def _sequence(name: str) -> Callable[[Any], Tree]:
    return lambda value: {"type": name, "value": [_data(v) for v in value]}


def _date_time_value(name: str) -> Callable[[Any], Tree]:
    return lambda value: {"type": name, "value": str(value)}


_NUMBER_TYPES: Final = (axdr.Integer, axdr.Long, axdr.Unsigned, axdr.LongUnsigned,
                        axdr.DoubleLong, axdr.DoubleLongUnsigned, axdr.Long64,
                        axdr.Long64Unsigned, axdr.Enum, axdr.Bcd)

_NUMBER_NAMES: Final = {cls: _NAMES[cls.TAG] for cls in _NUMBER_TYPES}

# How each A-XDR value type renders, by exact type: one lookup per value on the hot path
# of `dlms-edge decode -` (a capture log of thousands of answers).
_DATA_RENDERERS: Final[dict[type, Callable[[Any], Tree | str]]] = {
    **{cls: _scalar(name, int) for cls, name in _NUMBER_NAMES.items()},
    type(None): lambda value: {"type": "null-data", "value": None},
    bool: _scalar("boolean", bool),
    axdr.OctetString: lambda value: _octets(value),
    axdr.VisibleString: _scalar(_NAMES[axdr.VisibleString.TAG], str),
    axdr.Utf8String: _scalar(_NAMES[axdr.Utf8String.TAG], str),
    axdr.Float64: _scalar(_NAMES[axdr.Float64.TAG], float),
    axdr.Float32: lambda value: {"type": "float32", "value": _float32(value)},
    axdr.Structure: _sequence("structure"),
    axdr.Array: _sequence("array"),
    axdr.CompactArray: lambda value: {"type": "compact-array",
                                      "value": [_data(v) for v in value.values]},
    axdr.BitString: lambda value: {"type": "bit-string", "value": value.bits},
    axdr.DontCare: lambda value: {"type": "dont-care", "value": None},
    CosemDateTime: _date_time_value("datetime"),
    CosemDate: _date_time_value("date"),
    CosemTime: _date_time_value("time"),
}


# The typed values among them: inside an APDU a bare None or bool is not a Data value.
_TYPED_RENDERERS: Final = {cls: render for cls, render in _DATA_RENDERERS.items()
                           if cls not in (type(None), bool)}


def _data(value: Any) -> Any:
    """A decoded A-XDR Data value as {"type", "value"} (structures and arrays nest)."""
    render = _DATA_RENDERERS.get(type(value))
    if render is not None:
        return render(value)
    if _is_data(value):  # a subclass of a Data type
        plain = float(value) if isinstance(value, float) else int(value) if isinstance(value, int) else str(value)
        return {"type": _type_name(value), "value": plain}
    return _tree(value)


def _descriptor(value: CosemAttributeDescriptor | CosemMethodDescriptor) -> Tree:
    from edge_agent.dlms.cosem import interface_classes as cosem
    from edge_agent.dlms.cosem.obis import Obis

    interface = cosem.interface_class(value.class_id)
    code = Obis.from_bytes(value.instance_id)
    node: Tree = {
        "class_id": value.class_id,
        "class": interface.name,
        "instance_id": code.dotted,
        "name": _obis_name(code),
    }
    if isinstance(value, CosemAttributeDescriptor):
        node["attribute_id"] = value.attribute_id
        node["attribute"] = interface.attribute(value.attribute_id).name
    else:
        node["method_id"] = value.method_id
        node["method"] = interface.method(value.method_id).name
    return node


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # of each dataclass, looked up once


def _fields(obj: Any) -> Tree:
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in dataclasses.fields(obj))
    node: Tree = {}
    for name in names:
        value = getattr(obj, name)
        if value is not OMITTED and value is not None:
            node[name] = _tree(value)
    return node


def _tree(value: Any) -> Any:
    """Any value an APDU holds as JSON-able data; key material never leaves as bytes."""
    render = _TREE_RENDERERS.get(type(value))
    if render is None:
        render = _TREE_RENDERERS[type(value)] = _tree_renderer(type(value))
    return render(value)


def _tree_renderer(cls: type) -> Callable[[Any], Any]:
    """How :func:`_tree` renders a value of ``cls`` (looked up once per type)."""
    if cls is Omitted:
        return lambda value: None
    if issubclass(cls, Secret):
        return lambda value: f"<hidden: {len(value)} bytes>"
    if issubclass(cls, enum.Flag):  # the conformance block among flag types, loaded when met
        from edge_agent.dlms.apdu.conformance import Conformance

        if issubclass(cls, Conformance):
            return lambda value: [(m.name or "").lower().replace("_", "-")
                                  for m in Conformance if m and m in value]
    if issubclass(cls, StandardEnum):
        return lambda value: value.standard_name
    if issubclass(cls, CosemAttributeDescriptor | CosemMethodDescriptor):
        return _descriptor
    if isinstance(getattr(cls, "TAG", None), axdr.DataType) or issubclass(
            cls, CosemDateTime | CosemDate | CosemTime):
        return _data
    if issubclass(cls, enum.Enum):
        return lambda value: value.name.lower().replace("_", "-")
    if issubclass(cls, bytes | bytearray | memoryview):
        return lambda value: bytes(value).hex()
    if issubclass(cls, bool | int | float | str) or cls is type(None):
        return lambda value: value
    if issubclass(cls, tuple | list):
        return _sequence_tree
    if dataclasses.is_dataclass(cls):
        return _fields
    return repr


def _sequence_tree(values: tuple[Any, ...] | list[Any]) -> list[Any]:
    """A tuple or list as a list of :func:`_tree` of each item, looked up in the table here,
    numbers rendered in place (the results of a GET-with-list, mostly register values, are
    `decode -`'s hot path)."""
    numbers, renderers = _NUMBER_NAMES, _TREE_RENDERERS
    return [{"type": name, "value": int(v)} if (name := numbers.get(type(v))) is not None
            else (renderers.get(type(v)) or _tree)(v) for v in values]


# A-XDR values by their exact type; every other type gets its renderer at first sight.
_TREE_RENDERERS: dict[type, Callable[[Any], Any]] = dict(_TYPED_RENDERERS)
