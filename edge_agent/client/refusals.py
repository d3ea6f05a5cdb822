"""What a meter's refusal means for this client, whatever words the meter chose.

Meters word one cause in several ways (Green Book 9.3.2, 9.5). A wrong EK, AK or client
system title comes back as:

- an AARE rejected with a ConfirmedServiceError initiate-error deciphering-error in its
  user-information (``AssociationRefusal.DECIPHERING_ERROR``), or that ConfirmedServiceError
  alone in answer to the AARQ;
- an ExceptionResponse service-not-allowed/deciphering-error, to the AARQ, to HLS pass 3 or
  to any later request;
- HLS pass 3 not accepted once the invocation counter is ruled out
  (``AssociationRefusal.PASS3_NOT_ACCEPTED``);
- an AARE diagnostic authentication-failure or calling-AP-title-not-recognized to an AARQ
  that carried HLS;
- a tag that fails on the meter's answer (already an ``AuthenticationError``).

With keys in use each becomes an :class:`AuthenticationError` (a security failure, exit 5).
An association without keys cannot have wrong keys: the same words then become an
:class:`AssociationError` that says what the meter wants instead, and an ExceptionResponse
to an AARQ is a refusal of the association, never a refusal of HLS pass 3.
"""

from __future__ import annotations

from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import AARE, AcseServiceUser
from edge_agent.dlms.apdu.results import ExceptionServiceError
from edge_agent.dlms.association.settings import Authentication, ClientSettings
from edge_agent.dlms.errors import (
    AssociationError,
    AssociationRefusal,
    AuthenticationError,
    DecodeError,
    DlmsError,
    ExceptionResponseError,
    ServiceError,
)

DECIPHERING_ERROR = ExceptionServiceError.DECIPHERING_ERROR.standard_name
_KEY_REFUSALS = frozenset({AssociationRefusal.DECIPHERING_ERROR, AssociationRefusal.PASS3_NOT_ACCEPTED})
# AARE diagnostics that ask for credentials, and those that judge the ones sent.
_NEEDS_CREDENTIALS = frozenset({
    AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_REQUIRED,
    AcseServiceUser.AUTHENTICATION_REQUIRED,
    AcseServiceUser.AUTHENTICATION_FAILURE,
})
_JUDGES_KEYS = frozenset({
    AcseServiceUser.AUTHENTICATION_FAILURE,
    AcseServiceUser.CALLING_AP_TITLE_NOT_RECOGNIZED,
})
_KEYS_HINT = "wrong keys: check the EK, the AK and the client system title"


def uses_keys(settings: ClientSettings) -> bool:
    """Whether the association sends anything keys or the system title could spoil."""
    return settings.ciphered_context or settings.authentication.hls


def refusal_of_aarq(error: DlmsError, answer: bytes, settings: ClientSettings) -> DlmsError:
    """The error to raise for ``error``, which the session raised for ``answer``, the
    meter's answer to our AARQ."""
    if isinstance(error, AssociationError):
        return _rejected_aare(error, answer, settings)
    if not isinstance(error, ServiceError):
        return error
    try:
        refusal = x.decode_apdu(answer)
    except DecodeError:
        return error
    if isinstance(refusal, x.ExceptionResponse):
        words = f"ExceptionResponse {refusal.state_error.standard_name}/{refusal.service_error.standard_name}"
        deciphering = refusal.service_error is ExceptionServiceError.DECIPHERING_ERROR
        counter = refusal.service_error is ExceptionServiceError.INVOCATION_COUNTER_ERROR
    elif isinstance(refusal, x.ConfirmedServiceError):
        words = f"ConfirmedServiceError {refusal.describe()}"
        deciphering, counter = refusal.error_name == DECIPHERING_ERROR, False
    else:
        return error
    if (deciphering or counter) and uses_keys(settings):
        return AssociationError(
            f"the meter could not decipher the association request (AARQ): it answered {words}",
            AssociationRefusal.DECIPHERING_ERROR)
    if deciphering:
        return AssociationError(
            f"the meter answered the association request (AARQ) with {words} although nothing in"
            " it was ciphered: it wants a ciphered association (security policy, suite and keys)",
            AssociationRefusal.REJECTED)
    return AssociationError(
        f"the meter refused the association request (AARQ) with {words}: this client address,"
        " security policy or authentication is not accepted here", AssociationRefusal.REJECTED)


def _rejected_aare(error: AssociationError, answer: bytes, settings: ClientSettings) -> DlmsError:
    try:
        aare = AARE.decode(answer)
    except DecodeError:
        return error
    diagnostic = aare.result_source_diagnostic
    if not isinstance(diagnostic, AcseServiceUser):
        return error
    said = (f"the meter refused the association: {aare.result.standard_name}"
            f" (acse-service-user: {diagnostic.standard_name})")
    if settings.authentication is Authentication.NONE and diagnostic in _NEEDS_CREDENTIALS:
        return AssociationError(
            f"{said}; no password or key was sent: this client address needs authentication"
            " (LLS with a password, or HLS with keys and a system title)", error.reason)
    if settings.authentication is Authentication.LOW and diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE:
        return AssociationError(f"{said}: wrong password", error.reason)
    if settings.authentication.hls and diagnostic in _JUDGES_KEYS:
        return AuthenticationError(f"{said}: {_KEYS_HINT}")
    return error


def key_refusal(error: DlmsError, settings: ClientSettings) -> DlmsError:
    """``error`` as a security failure when, with this association's keys, it can only
    mean wrong keys (see the module docstring); else ``error`` itself."""
    if not uses_keys(settings) or isinstance(error, AuthenticationError):
        return error
    if isinstance(error, AssociationError) and error.reason in _KEY_REFUSALS:
        return AuthenticationError(f"{error}; {_KEYS_HINT}")
    deciphering = (
        error.service_error == DECIPHERING_ERROR if isinstance(error, ExceptionResponseError)
        else isinstance(error, ServiceError) and (error.reason or "").rpartition("/")[2] == DECIPHERING_ERROR
    )
    if deciphering:
        return AuthenticationError(f"{error}; {_KEYS_HINT}")
    return error


__all__ = ["key_refusal", "refusal_of_aarq", "uses_keys"]
