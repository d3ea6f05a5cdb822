"""Take secrets out of frames before they are logged or captured.

Ciphered APDUs are safe to show; the one secret that crosses the wire in clear is the LLS
password, in the AARQ's calling-authentication-value (Green Book 9.2.7.2: low level
security sends the password itself). :func:`redact_frame` returns the frame with every
octet of that password replaced by ``*`` and, for HDLC, with HCS/FCS recomputed so that
``dlms-edge decode`` still reads the capture. Anything else passes unchanged.
"""

from __future__ import annotations

from dataclasses import replace

from edge_agent.dlms.apdu.acse import AARQ, AuthenticationValue, MechanismName
from edge_agent.dlms.errors import DlmsError
from edge_agent.dlms.link.hdlc.frame import LLC_COMMAND, HdlcFrame
from edge_agent.dlms.link.wrapper import HEADER_LENGTH, WrapperFrame
from edge_agent.dlms.secret import Secret

_HDLC_FLAG = 0x7E
_MASK = 0x2A  # '*'


def redact_apdu(apdu: bytes) -> bytes:
    """The APDU with an LLS password masked (only AARQs with mechanism ``low`` change)."""
    if not apdu or apdu[0] != AARQ.TAG:
        return apdu
    try:
        aarq = AARQ.decode(apdu)
    except DlmsError:
        return apdu
    value = aarq.calling_authentication_value
    if aarq.mechanism_name is not MechanismName.LOW or value is None:
        return apdu
    masked = AuthenticationValue(Secret(bytes([_MASK]) * len(value.value), "masked"), value.form)
    return replace(aarq, calling_authentication_value=masked).encode()


def redact_frame(frame: bytes) -> bytes:
    """``frame`` (HDLC, wrapper or bare APDU) without an LLS password in it."""
    if not frame:
        return frame
    try:
        if frame[0] == _HDLC_FLAG:
            decoded, _ = HdlcFrame.decode(frame)
            info = decoded.info
            if info[:3] != LLC_COMMAND or len(info) < 4 or info[3] != AARQ.TAG:
                return frame
            redacted = redact_apdu(info[3:])
            return frame if redacted == info[3:] else replace(decoded, info=LLC_COMMAND + redacted).encode()
        if len(frame) > HEADER_LENGTH and frame[:2] == b"\x00\x01":
            decoded_wrapper, _ = WrapperFrame.decode(frame)
            redacted = redact_apdu(decoded_wrapper.apdu)
            return frame if redacted == decoded_wrapper.apdu else replace(decoded_wrapper, apdu=redacted).encode()
    except DlmsError:
        return frame
    return redact_apdu(frame)
