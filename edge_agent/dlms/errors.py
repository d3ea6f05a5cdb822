"""One exception hierarchy for everything the DLMS core and the layers above raise.

Messages say what was expected, what came, and what to do. They never carry key
material: pass keys to nothing but the security module.
"""

from __future__ import annotations

from enum import StrEnum


class DlmsError(Exception):
    """Base of every error dlms-edge raises on purpose.

    ``fix`` is the setting and the value that cure the error, when one does
    (``("pass3_signing", "always")``): the message names it in the configuration's spelling,
    and the command line adds its own (``--pass3-signing always``).
    """

    fix: tuple[str, str] | None = None


# --- malformed input -----------------------------------------------------------------


class DecodeError(DlmsError, ValueError):
    """Bytes that do not follow the encoding they claim."""


class TruncatedError(DecodeError):
    """Input ended before the encoding said it would (truncated frame or APDU)."""


class EncodeError(DlmsError, ValueError):
    """A value that cannot be encoded as asked (out of range, wrong type)."""


class FrameError(DecodeError):
    """A link-layer frame (HDLC, wrapper, M-Bus) is damaged: bad CRC, flag, length."""


class ChecksumError(FrameError):
    """A frame's check sequence (HDLC HCS or FCS) does not match its bytes: the frame is
    where its length says but was damaged on the line (noise, wrong baud rate or parity)."""


class MalformedAnswerError(DecodeError):
    """The meter's answer to the request in flight does not decode. ``raw`` holds its bytes
    (deciphered when it came ciphered) for the report; the association stays usable."""

    def __init__(self, message: str, raw: bytes) -> None:
        super().__init__(message)
        self.raw = raw


# --- protocol behaviour ----------------------------------------------------------------


class ProtocolError(DlmsError):
    """The peer sent something valid but unexpected here (wrong state, invoke-id...)."""


class StaleAnswerError(ProtocolError):
    """An answer whose invoke-id is not the one of the request in flight: late (its request
    timed out), stale or foreign. The request still waits for its own answer."""


class TimeoutError_(DlmsError):  # trailing "_": the builtin TimeoutError stays usable
    """No answer in time."""


class NoResponseError(TimeoutError_):
    """The meter did not answer at all (wrong address, baud rate, cable...)."""


class TransportError(DlmsError):
    """The byte transport failed (connection refused/reset, serial port missing)."""


class AssociationRefusal(StrEnum):
    """Why an association was refused, for code that decides what to try next (a retry,
    a counter resynchronisation); the message says it for people."""

    #: AARE rejected by the meter's ACSE (the diagnostic is in the message).
    REJECTED = "rejected"
    #: The meter could not decipher the glo-initiate-request of the AARQ (Green Book 9.3.2,
    #: initiate-error deciphering-error): wrong keys, client system title or a too-low
    #: invocation counter.
    DECIPHERING_ERROR = "deciphering-error"
    #: The AARE was accepted but its InitiateResponse is a ConfirmedServiceError.
    XDLMS_CONTEXT_REFUSED = "xdlms-context-refused"
    #: HLS pass 3 (reply_to_HLS_authentication) answered with an action-result other than
    #: success (Green Book 9.2.7.4): wrong AK/EK, client system title or invocation counter.
    PASS3_NOT_ACCEPTED = "pass3-not-accepted"


class AssociationError(DlmsError):
    """The meter refused the association (AARE result != accepted, or HLS pass 3 failed).

    ``reason`` is an :class:`AssociationRefusal` (``None`` when not known): code branches
    on it, never on the message.
    """

    def __init__(self, message: str, reason: AssociationRefusal | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class ServiceError(DlmsError):
    """The meter answered a request with an error instead of data.

    ``reason`` is the standard's name (e.g. ``object-undefined``,
    ``service-not-allowed/operation-not-possible``).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class ExceptionResponseError(ServiceError):
    """The meter sent an ExceptionResponse (state-error, service-error)."""

    def __init__(self, message: str, state_error: str, service_error: str) -> None:
        super().__init__(message, f"{state_error}/{service_error}")
        self.state_error = state_error
        self.service_error = service_error


# --- security --------------------------------------------------------------------------


class SecurityError(DlmsError):
    """Base of ciphering, authentication and signature failures."""


class AuthenticationError(SecurityError):
    """A GCM tag, GMAC (HLS-5) or password check failed: wrong AK/EK, system title or IC."""


class SignatureError(SecurityError):
    """An ECDSA signature did not verify, or the signer's certificate is unknown."""


class ReplayError(SecurityError):
    """An invocation counter was not greater than the last one accepted from that peer."""


class MissingKeyError(SecurityError):
    """The frame needs a key (EK, AK, signing key) that was not supplied."""


class CounterError(SecurityError):
    """The invocation-counter store cannot guarantee a fresh counter (exhausted, unreadable)."""


# --- configuration ---------------------------------------------------------------------


class ConfigError(DlmsError):
    """A configuration file or command-line option is invalid; the message names the fix."""
