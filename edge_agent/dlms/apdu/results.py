"""Name tables of the xDLMS results and errors (Green Book 9.5, the xDLMS ASN.1).

Every enumeration keeps the standard's spelling in ``standard_name`` so that errors can
say ``object-undefined`` rather than ``4``. A value the standard does not define (meters
use vendor codes) still decodes, as a pseudo-member named ``value N``, so one odd result
in a with-list response does not make the other answers unreadable.
"""

from __future__ import annotations

from enum import IntEnum

from edge_agent.dlms.errors import DecodeError


class StandardEnum(IntEnum):
    """IntEnum whose member names are the standard's names in upper snake case."""

    @classmethod
    def _missing_(cls, value: object) -> StandardEnum | None:
        if isinstance(value, int) and 0 <= value <= 0xFF and cls._accepts_unknown():
            member = int.__new__(cls, value)
            member._name_ = f"VALUE_{value}"
            member._value_ = value
            return member
        return None

    @classmethod
    def _accepts_unknown(cls) -> bool:
        return True

    @property
    def standard_name(self) -> str:
        name = self.name or ""
        if name.startswith("VALUE_"):
            return f"value {int(self)} (not defined by the Green Book)"
        return name.lower().replace("_", "-")

    @classmethod
    def from_wire(cls, value: int, what: str) -> StandardEnum:
        """Member for ``value``; ``DecodeError`` naming ``what`` for strict enumerations."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(f"{int(m)} {m.standard_name}" for m in cls)
            raise DecodeError(f"{what}: {value} is not one of {allowed}") from None


class StrictEnum(StandardEnum):
    """A CHOICE tag or enumeration where an unknown value means the APDU is malformed."""

    @classmethod
    def _accepts_unknown(cls) -> bool:
        return False


class DataAccessResult(StandardEnum):
    """Data-Access-Result: the outcome of one GET/SET of one attribute."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


class ActionResult(StandardEnum):
    """Action-Result: the outcome of one method invocation."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_ACTION_ABORTED = 15
    NO_LONG_ACTION_IN_PROGRESS = 16
    OTHER_REASON = 250


# What each result means for the person reading the error; {target} is filled in with
# "object 1.0.99.1.0.255 of class 7" (or "attribute 2 of ..." where it matters).
RESULT_EXPLANATIONS: dict[str, str] = {
    "hardware-fault": "the meter reports a hardware fault while accessing {target}",
    "temporary-failure": "the meter cannot serve {target} right now; retry later",
    "read-write-denied": "the association's access rights do not allow this on {target} "
    "(use a client/security level with more rights)",
    "object-undefined": "the meter has no {target}",
    "object-class-inconsistent": "the meter's object is not of the class asked for ({target})",
    "object-unavailable": "{target} exists but is not available now",
    "type-unmatched": "the value sent does not have the type the meter expects for {target}",
    "scope-of-access-violated": "the selective access asked for is outside what {target} holds",
    "data-block-unavailable": "the meter cannot provide the data block asked for ({target})",
    "long-get-aborted": "the meter aborted the block transfer of {target}",
    "no-long-get-in-progress": "the meter has no block transfer in progress for {target}",
    "long-set-aborted": "the meter aborted the block transfer writing {target}",
    "no-long-set-in-progress": "the meter has no block transfer in progress for {target}",
    "data-block-number-invalid": "the meter rejected the block number sent for {target}",
    "long-action-aborted": "the meter aborted the block transfer of {target}",
    "no-long-action-in-progress": "the meter has no block transfer in progress for {target}",
    "other-reason": "the meter refused {target} without saying why",
}


def explain_result(result: DataAccessResult | ActionResult, target: str) -> str:
    """``"object-undefined: the meter has no object 1.0.99.1.0.255 of class 7"``."""
    template = RESULT_EXPLANATIONS.get(result.standard_name, "the meter answered so for {target}")
    return f"{result.standard_name}: {template.format(target=target)}"


# --- ExceptionResponse (Green Book 9.5: SEQUENCE {state-error, service-error})


class StateError(StrictEnum):
    SERVICE_NOT_ALLOWED = 1
    SERVICE_UNKNOWN = 2


class ExceptionServiceError(StrictEnum):
    OPERATION_NOT_POSSIBLE = 1
    SERVICE_NOT_SUPPORTED = 2
    OTHER_REASON = 3
    PDU_TOO_LONG = 4
    DECIPHERING_ERROR = 5
    # Followed by the Unsigned32 invocation counter the server expects as a minimum.
    INVOCATION_COUNTER_ERROR = 6


# --- ConfirmedServiceError (Green Book 9.5: the service that failed and ServiceError)


class ConfirmedService(StrictEnum):
    """The CHOICE naming which service a ConfirmedServiceError answers."""

    INITIATE_ERROR = 1
    GET_STATUS = 2
    GET_NAME_LIST = 3
    GET_VARIABLE_ATTRIBUTE = 4
    READ = 5
    WRITE = 6
    GET_DATA_SET_ATTRIBUTE = 7
    GET_TI_ATTRIBUTE = 8
    CHANGE_SCOPE = 9
    START = 10
    STOP = 11
    RESUME = 12
    MAKE_USABLE = 13
    INITIATE_LOAD = 14
    LOAD_SEGMENT = 15
    TERMINATE_LOAD = 16
    INITIATE_UP_LOAD = 17
    UP_LOAD_SEGMENT = 18
    TERMINATE_UP_LOAD = 19


class ServiceErrorKind(StrictEnum):
    """The ServiceError CHOICE: which family the error value below belongs to."""

    APPLICATION_REFERENCE = 0
    HARDWARE_RESOURCE = 1
    VDE_STATE_ERROR = 2
    SERVICE = 3
    DEFINITION = 4
    ACCESS = 5
    INITIATE = 6
    LOAD_DATA_SET = 7
    CHANGE_SCOPE = 8
    TASK = 9
    OTHER = 10


# The ENUMERATED values of each ServiceError alternative, in the standard's order.
SERVICE_ERROR_VALUES: dict[ServiceErrorKind, tuple[str, ...]] = {
    ServiceErrorKind.APPLICATION_REFERENCE: (
        "other",
        "time-elapsed",
        "application-unreachable",
        "application-reference-invalid",
        "application-context-unsupported",
        "provider-communication-error",
        "deciphering-error",
    ),
    ServiceErrorKind.HARDWARE_RESOURCE: (
        "other",
        "memory-unavailable",
        "processor-resource-unavailable",
        "mass-storage-unavailable",
        "other-resource-unavailable",
    ),
    ServiceErrorKind.VDE_STATE_ERROR: (
        "other",
        "no-dlms-context",
        "loading-data-set",
        "status-nochange",
        "status-inoperable",
    ),
    ServiceErrorKind.SERVICE: ("other", "pdu-size", "service-unsupported"),
    ServiceErrorKind.DEFINITION: (
        "other",
        "object-undefined",
        "object-class-inconsistent",
        "object-attribute-inconsistent",
    ),
    ServiceErrorKind.ACCESS: (
        "other",
        "scope-of-access-violated",
        "object-access-violated",
        "hardware-fault",
        "object-unavailable",
    ),
    ServiceErrorKind.INITIATE: (
        "other",
        "dlms-version-too-low",
        "incompatible-conformance",
        "pdu-size-too-short",
        "refused-by-the-VDE-Handler",
    ),
    ServiceErrorKind.LOAD_DATA_SET: (
        "other",
        "primitive-out-of-sequence",
        "not-loadable",
        "dataset-size-too-large",
        "not-awaited-segment",
        "interpretation-failure",
        "storage-failure",
        "data-set-not-ready",
    ),
    ServiceErrorKind.CHANGE_SCOPE: ("other",),
    ServiceErrorKind.TASK: (
        "other",
        "no-remote-control",
        "ti-stopped",
        "ti-running",
        "ti-unusable",
    ),
    ServiceErrorKind.OTHER: ("other",),
}


def service_error_name(kind: ServiceErrorKind, value: int) -> str:
    names = SERVICE_ERROR_VALUES[kind]
    return names[value] if value < len(names) else f"value {value} (not defined by the Green Book)"
