"""Whole-request refusals: ExceptionResponse (0xD8) and ConfirmedServiceError (0x0E).

Green Book 9.5. Each has ``describe()`` for people and ``to_error()`` giving the
exception the client raises, so the CLI can say "service-not-allowed/operation-not-possible"
and what to try, instead of a hex dump.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from edge_agent.dlms.apdu.base import Apdu, Buffer, put_u32, read_enum, read_u8, read_u32
from edge_agent.dlms.apdu.results import (
    ConfirmedService,
    ExceptionServiceError,
    ServiceErrorKind,
    StateError,
    service_error_name,
)
from edge_agent.dlms.errors import EncodeError, ExceptionResponseError, ServiceError

EXCEPTION_RESPONSE = 0xD8
CONFIRMED_SERVICE_ERROR = 0x0E

# Hints for the refusals installers meet in the field (the T-210D refuses an unsigned pass 3).
_EXCEPTION_HINTS: dict[tuple[StateError, ExceptionServiceError], str] = {
    (StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.OPERATION_NOT_POSSIBLE): (
        "the meter does not allow this request in the current association; if this was HLS "
        "pass 3, the meter may want it signed (pass3_signing: always)"
    ),
    (StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.DECIPHERING_ERROR): (
        "the meter could not decipher the request: wrong keys (EK/AK) or client system title"
    ),
    (StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.INVOCATION_COUNTER_ERROR): (
        "the invocation counter is below what the meter expects; resynchronise the counter"
    ),
    (StateError.SERVICE_UNKNOWN, ExceptionServiceError.SERVICE_NOT_SUPPORTED): (
        "the meter does not implement this service"
    ),
}


@dataclass(frozen=True, slots=True)
class ExceptionResponse(Apdu):
    """``invocation_counter`` is present only with service-error invocation-counter-error."""

    TAG: ClassVar[int] = EXCEPTION_RESPONSE
    NAME: ClassVar[str] = "exception-response"

    state_error: StateError
    service_error: ExceptionServiceError
    invocation_counter: int | None = None

    def __post_init__(self) -> None:
        needs_counter = self.service_error is ExceptionServiceError.INVOCATION_COUNTER_ERROR
        if needs_counter != (self.invocation_counter is not None):
            raise EncodeError(
                "exception-response: an invocation counter goes with invocation-counter-error "
                f"and only with it (service-error {self.service_error.standard_name})"
            )

    def describe(self) -> str:
        text = f"{self.state_error.standard_name}/{self.service_error.standard_name}"
        if self.invocation_counter is not None:
            text += (
                f" (the meter expects an invocation counter of at least {self.invocation_counter})"
            )
        hint = _EXCEPTION_HINTS.get((self.state_error, self.service_error))
        return f"{text}: {hint}" if hint else text

    def to_error(self) -> ExceptionResponseError:
        return ExceptionResponseError(
            f"the meter answered with an ExceptionResponse: {self.describe()}",
            self.state_error.standard_name,
            self.service_error.standard_name,
        )

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.state_error)
        out.append(self.service_error)
        if self.invocation_counter is not None:
            put_u32(out, self.invocation_counter, "invocation-counter")

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        state, offset = read_enum(StateError, buf, offset, "state-error")
        service, offset = read_enum(ExceptionServiceError, buf, offset, "service-error")
        counter = None
        if service is ExceptionServiceError.INVOCATION_COUNTER_ERROR:
            counter, offset = read_u32(buf, offset, "invocation-counter")
        return cls(state, service, counter), offset


@dataclass(frozen=True, slots=True)
class ConfirmedServiceError(Apdu):
    """The service that failed and a ServiceError (its family and the value within it)."""

    TAG: ClassVar[int] = CONFIRMED_SERVICE_ERROR
    NAME: ClassVar[str] = "confirmed-service-error"

    service: ConfirmedService
    error_kind: ServiceErrorKind
    error_value: int

    @property
    def error_name(self) -> str:
        return service_error_name(self.error_kind, self.error_value)

    def describe(self) -> str:
        """``"initiate-error: initiate/dlms-version-too-low"``."""
        return f"{self.service.standard_name}: {self.error_kind.standard_name}/{self.error_name}"

    def to_error(self) -> ServiceError:
        return ServiceError(
            f"the meter answered with a ConfirmedServiceError: {self.describe()}",
            f"{self.error_kind.standard_name}/{self.error_name}",
        )

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.service)
        out.append(self.error_kind)
        if not 0 <= self.error_value <= 0xFF:
            raise EncodeError(
                f"confirmed-service-error value must be 0..255, got {self.error_value}"
            )
        out.append(self.error_value)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        service, offset = read_enum(
            ConfirmedService, buf, offset, "confirmed-service-error service"
        )
        kind, offset = read_enum(ServiceErrorKind, buf, offset, "service-error")
        value, offset = read_u8(buf, offset, "service-error value")
        return cls(service, kind, value), offset
