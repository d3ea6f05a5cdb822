"""xDLMS APDUs: the one entry point, :func:`decode_apdu`, and the public names.

Each APDU is a frozen dataclass in a module of its service (``get``, ``set``, ``action``,
``notification``, ``service_errors``, ``general_block_transfer``, ``initiate``) with
``encode() -> bytes`` and ``decode(buf) -> Self``. :func:`decode_apdu` dispatches on the tag
(and the service CHOICE octet) through a table of tag -> service module, which it imports at
the first APDU of that service; the names re-exported here load their module when first
asked for (PEP 562).

Ciphered and signed APDUs (glo-/ded-, general-*-ciphering, general-signing) are the
security module's: this module refuses them with a message saying so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge_agent.dlms.apdu.base import (
    OMITTED,
    Apdu,
    Buffer,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    CosemMethodDescriptor,
    Data,
    DataBlockSA,
    GetDataResult,
    Omitted,
    SelectiveAccess,
    access_error,
    invoke_id_and_priority,
    invoke_id_of,
    truncated,
)
from edge_agent.dlms.apdu.results import (
    ActionResult,
    ConfirmedService,
    DataAccessResult,
    ExceptionServiceError,
    ServiceErrorKind,
    StateError,
    explain_result,
)
from edge_agent.dlms.errors import DecodeError

if TYPE_CHECKING:
    from edge_agent.dlms.apdu.action import (
        ActionRequest,
        ActionRequestNextPblock,
        ActionRequestNormal,
        ActionRequestWithFirstPblock,
        ActionRequestWithList,
        ActionRequestWithListAndFirstPblock,
        ActionRequestWithPblock,
        ActionResponse,
        ActionResponseNextPblock,
        ActionResponseNormal,
        ActionResponseWithList,
        ActionResponseWithOptionalData,
        ActionResponseWithPblock,
        split_action_request,
    )
    from edge_agent.dlms.apdu.general_block_transfer import (
        GbtReassembler,
        GeneralBlockTransfer,
        split_into_gbt,
    )
    from edge_agent.dlms.apdu.get import (
        BlockAssembler,
        DataBlockG,
        GetBlockReassembler,
        GetRequest,
        GetRequestNext,
        GetRequestNormal,
        GetRequestWithList,
        GetResponse,
        GetResponseNormal,
        GetResponseWithDatablock,
        GetResponseWithList,
        split_get_response,
    )
    from edge_agent.dlms.apdu.initiate import InitiateRequest, InitiateResponse
    from edge_agent.dlms.apdu.notification import DataNotification, EventNotificationRequest
    from edge_agent.dlms.apdu.service_errors import ConfirmedServiceError, ExceptionResponse
    from edge_agent.dlms.apdu.set import (
        SetRequest,
        SetRequestNormal,
        SetRequestWithDatablock,
        SetRequestWithFirstDatablock,
        SetRequestWithList,
        SetRequestWithListAndFirstDatablock,
        SetResponse,
        SetResponseDatablock,
        SetResponseLastDatablock,
        SetResponseLastDatablockWithList,
        SetResponseNormal,
        SetResponseWithList,
        split_set_request,
    )

    Xdlms = (
        GetRequest
        | GetResponse
        | SetRequest
        | SetResponse
        | ActionRequest
        | ActionResponse
        | DataNotification
        | EventNotificationRequest
        | ExceptionResponse
        | ConfirmedServiceError
        | GeneralBlockTransfer
        | InitiateRequest
        | InitiateResponse
    )

# The services' modules are imported on first use, so that a process decoding GET answers
# (`dlms-edge decode -` over a capture log) creates no SET, ACTION or initiate classes.
# Each module's public names, which this package re-exports (imported when first asked for):
_EXPORTS: dict[str, tuple[str, ...]] = {
    "action": (
        "ACTION_REQUESTS", "ACTION_RESPONSES", "ActionRequest", "ActionRequestNextPblock",
        "ActionRequestNormal", "ActionRequestWithFirstPblock", "ActionRequestWithList",
        "ActionRequestWithListAndFirstPblock", "ActionRequestWithPblock", "ActionResponse",
        "ActionResponseNextPblock", "ActionResponseNormal", "ActionResponseWithList",
        "ActionResponseWithOptionalData", "ActionResponseWithPblock", "split_action_request",
    ),
    "general_block_transfer": ("GbtReassembler", "GeneralBlockTransfer", "split_into_gbt"),
    "get": (
        "GET_REQUESTS", "GET_RESPONSES", "BlockAssembler", "DataBlockG", "GetBlockReassembler",
        "GetRequest", "GetRequestNext", "GetRequestNormal", "GetRequestWithList", "GetResponse",
        "GetResponseNormal", "GetResponseWithDatablock", "GetResponseWithList",
        "split_get_response",
    ),
    "initiate": ("InitiateRequest", "InitiateResponse"),
    "notification": ("DataNotification", "EventNotificationRequest"),
    "service_errors": ("ConfirmedServiceError", "ExceptionResponse"),
    "set": (
        "SET_REQUESTS", "SET_RESPONSES", "SetRequest", "SetRequestNormal",
        "SetRequestWithDatablock", "SetRequestWithFirstDatablock", "SetRequestWithList",
        "SetRequestWithListAndFirstDatablock", "SetResponse", "SetResponseDatablock",
        "SetResponseLastDatablock", "SetResponseLastDatablockWithList", "SetResponseNormal",
        "SetResponseWithList", "split_set_request",
    ),
}
_MODULE_OF: dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}

#: The general-block-transfer tag (Green Book 9.3.10), for the link layers that join blocks
#: before any APDU is decoded (the push reassembler): naming it loads no APDU class.
GENERAL_BLOCK_TRANSFER = 0xE0

# The xDLMS-APDU CHOICE (Green Book 9.5) by tag: the module of the service and its name for
# what decodes the tag: a family told apart by the CHOICE octet after the tag (tuple of
# classes), or the one class of the tag.
_SERVICES: dict[int, tuple[str, str]] = {
    0xC0: ("get", "GET_REQUESTS"),
    0xC4: ("get", "GET_RESPONSES"),
    0xC1: ("set", "SET_REQUESTS"),
    0xC5: ("set", "SET_RESPONSES"),
    0xC3: ("action", "ACTION_REQUESTS"),
    0xC7: ("action", "ACTION_RESPONSES"),
    0x0F: ("notification", "DataNotification"),
    0xC2: ("notification", "EventNotificationRequest"),
    0xD8: ("service_errors", "ExceptionResponse"),
    0x0E: ("service_errors", "ConfirmedServiceError"),
    GENERAL_BLOCK_TRANSFER: ("general_block_transfer", "GeneralBlockTransfer"),
    0x01: ("initiate", "InitiateRequest"),
    0x08: ("initiate", "InitiateResponse"),
}
# What each tag of _SERVICES decodes with, filled at its first APDU: {choice: class} for a
# family, the class for a tag alone.
_DECODERS: dict[int, dict[int, type[Apdu]] | type[Apdu]] = {}


def __getattr__(name: str) -> Any:
    """A service's public name (PEP 562): its module is imported at the first ask."""
    if name == "Xdlms":
        value: Any = _xdlms_union()
    elif name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _xdlms_union() -> Any:
    families = [__getattr__(name) for name in (
        "GetRequest", "GetResponse", "SetRequest", "SetResponse", "ActionRequest",
        "ActionResponse", "DataNotification", "EventNotificationRequest", "ExceptionResponse",
        "ConfirmedServiceError", "GeneralBlockTransfer", "InitiateRequest", "InitiateResponse")]
    union = families[0]
    for family in families[1:]:
        union = union | family
    return union


def _decoders(tag: int) -> dict[int, type[Apdu]] | type[Apdu] | None:
    """What decodes APDUs of ``tag`` (its service's module imported at the first), or None."""
    found = _DECODERS.get(tag)
    if found is None and tag in _SERVICES:
        module, name = _SERVICES[tag]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        found = _DECODERS[tag] = ({cls.CHOICE: cls for cls in value} if isinstance(value, tuple)
                                  else value)
    return found


# Protected APDUs by name, for the refusal message (Green Book 9.5, xDLMS-APDU CHOICE):
# service-specific glo- (global key) and ded- (dedicated key) forms, then the general ones.
# Kept here rather than imported from the security package, which sits above this module.
_CIPHERED_SERVICES = (
    ("initiate-request", 0x21, 0x41),
    ("read-request", 0x25, 0x45),
    ("write-request", 0x26, 0x46),
    ("initiate-response", 0x28, 0x48),
    ("read-response", 0x2C, 0x4C),
    ("write-response", 0x2D, 0x4D),
    ("confirmed-service-error", 0x2E, 0x4E),
    ("unconfirmed-write-request", 0x36, 0x56),
    ("information-report-request", 0x38, 0x58),
    ("get-request", 0xC8, 0xD0),
    ("set-request", 0xC9, 0xD1),
    ("event-notification-request", 0xCA, 0xD2),
    ("action-request", 0xCB, 0xD3),
    ("get-response", 0xCC, 0xD4),
    ("set-response", 0xCD, 0xD5),
    ("action-response", 0xCF, 0xD7),
)
PROTECTED_TAGS: dict[int, str] = {
    **{glo: f"glo-{name}" for name, glo, _ in _CIPHERED_SERVICES},
    **{ded: f"ded-{name}" for name, _, ded in _CIPHERED_SERVICES},
    0xDB: "general-glo-ciphering",
    0xDC: "general-ded-ciphering",
    0xDD: "general-ciphering",
    0xDF: "general-signing",
}

# ACSE PDUs share the first octet space; say so rather than "unknown".
_ACSE_TAGS = {0x60: "AARQ", 0x61: "AARE", 0x62: "RLRQ", 0x63: "RLRE"}



def apdu_class(buf: Buffer) -> type[Apdu]:
    """The class that decodes ``buf``, chosen by its tag (and service CHOICE octet)."""
    if not len(buf):
        raise truncated("xDLMS APDU", 1, buf, 0)
    tag = buf[0]
    decoders = _DECODERS.get(tag) or _decoders(tag)
    if isinstance(decoders, dict):
        if len(buf) < 2:
            raise truncated(f"xDLMS APDU tag 0x{tag:02x}", 2, buf, 0)
        cls = decoders.get(buf[1])
        if cls is None:
            names = ", ".join(f"{choice} {c.NAME}" for choice, c in decoders.items())
            raise DecodeError(
                f"xDLMS APDU tag 0x{tag:02x}: unknown choice {buf[1]} (expected {names})"
            )
        return cls
    if decoders is not None:
        return decoders
    if tag in PROTECTED_TAGS:
        raise DecodeError(
            f"xDLMS APDU tag 0x{tag:02x} is {PROTECTED_TAGS[tag]}: it is protected and must be "
            "deciphered/verified by the security module first (give the keys)"
        )
    if tag in _ACSE_TAGS:
        raise DecodeError(
            f"tag 0x{tag:02x} is an ACSE {_ACSE_TAGS[tag]}: decode it with edge_agent.dlms.apdu.acse"
        )
    raise DecodeError(
        f"unknown xDLMS APDU tag 0x{tag:02x} (not a service this LN client/server handles)"
    )


def decode_apdu(buf: Buffer) -> Xdlms:
    """Decode one whole plain xDLMS APDU; ``DecodeError``/``TruncatedError`` on bad input."""
    # apdu_class picks from tables of Xdlms classes only; it returns their common base.
    return apdu_class(buf).decode(buf)  # type: ignore[return-value]


def decode_apdu_prefix(buf: Buffer) -> tuple[Xdlms, int]:
    """The plain xDLMS APDU at the start of ``buf`` and the offset where it ends; bytes
    after it are the caller's to judge (a lenient reader warns and drops them)."""
    cls = apdu_class(buf)
    head = 1 if cls.CHOICE is None else 2
    try:
        # As in decode_apdu: the tag tables hold Xdlms classes only.
        return cls._read_body(buf, head)  # type: ignore[return-value]
    except DecodeError as error:
        raise type(error)(f"{cls.NAME}: {error}") from None


__all__ = [
    "GENERAL_BLOCK_TRANSFER",
    "OMITTED",
    "PROTECTED_TAGS",
    "ActionRequest",
    "ActionRequestNextPblock",
    "ActionRequestNormal",
    "ActionRequestWithFirstPblock",
    "ActionRequestWithList",
    "ActionRequestWithListAndFirstPblock",
    "ActionRequestWithPblock",
    "ActionResponse",
    "ActionResponseNextPblock",
    "ActionResponseNormal",
    "ActionResponseWithList",
    "ActionResponseWithOptionalData",
    "ActionResponseWithPblock",
    "ActionResult",
    "Apdu",
    "BlockAssembler",
    "ConfirmedService",
    "ConfirmedServiceError",
    "CosemAttributeDescriptor",
    "CosemAttributeDescriptorWithSelection",
    "CosemMethodDescriptor",
    "Data",
    "DataAccessResult",
    "DataBlockG",
    "DataBlockSA",
    "DataNotification",
    "EventNotificationRequest",
    "ExceptionResponse",
    "ExceptionServiceError",
    "GbtReassembler",
    "GeneralBlockTransfer",
    "GetBlockReassembler",
    "GetDataResult",
    "GetRequest",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponse",
    "GetResponseNormal",
    "GetResponseWithDatablock",
    "GetResponseWithList",
    "InitiateRequest",
    "InitiateResponse",
    "Omitted",
    "SelectiveAccess",
    "ServiceErrorKind",
    "SetRequest",
    "SetRequestNormal",
    "SetRequestWithDatablock",
    "SetRequestWithFirstDatablock",
    "SetRequestWithList",
    "SetRequestWithListAndFirstDatablock",
    "SetResponse",
    "SetResponseDatablock",
    "SetResponseLastDatablock",
    "SetResponseLastDatablockWithList",
    "SetResponseNormal",
    "SetResponseWithList",
    "StateError",
    "Xdlms",
    "access_error",
    "apdu_class",
    "decode_apdu",
    "decode_apdu_prefix",
    "explain_result",
    "invoke_id_and_priority",
    "invoke_id_of",
    "split_action_request",
    "split_get_response",
    "split_into_gbt",
    "split_set_request",
]
