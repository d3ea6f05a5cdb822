"""xDLMS APDU tags: plain ↔ glo- ↔ ded- (Green Book 9.5, xDLMS-APDU CHOICE; IEC 62056-5-3 8.3).

Service-specific ciphered APDUs exist only for the services listed here; everything else
(DataNotification 0x0F, general-block-transfer, ...) is protected with general-glo- or
general-ded-ciphering. ExceptionResponse (0xD8) is never ciphered: it is sent when
deciphering failed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Form(enum.Enum):
    """How an APDU carries its ciphered content."""

    GLO = "glo"  # service-specific, global key; system title from the association
    DED = "ded"  # service-specific, dedicated key
    GENERAL_GLO = "general-glo"  # 0xDB: carries the sender's system title
    GENERAL_DED = "general-ded"  # 0xDC
    GENERAL = "general"  # 0xDD general-ciphering: full header and key-info


@dataclass(frozen=True, slots=True)
class ServiceTags:
    name: str
    plain: int
    glo: int
    ded: int


# (name, plain, glo, ded); Green Book 9.5 ASN.1 tags in decimal: [1]/[33]/[65], ...
SERVICES: tuple[ServiceTags, ...] = tuple(
    ServiceTags(*row)
    for row in (
        ("initiate-request", 0x01, 0x21, 0x41),
        ("read-request", 0x05, 0x25, 0x45),
        ("write-request", 0x06, 0x26, 0x46),
        ("initiate-response", 0x08, 0x28, 0x48),
        ("read-response", 0x0C, 0x2C, 0x4C),
        ("write-response", 0x0D, 0x2D, 0x4D),
        ("confirmed-service-error", 0x0E, 0x2E, 0x4E),
        ("unconfirmed-write-request", 0x16, 0x36, 0x56),
        ("information-report-request", 0x18, 0x38, 0x58),
        ("get-request", 0xC0, 0xC8, 0xD0),
        ("set-request", 0xC1, 0xC9, 0xD1),
        ("event-notification-request", 0xC2, 0xCA, 0xD2),
        ("action-request", 0xC3, 0xCB, 0xD3),
        ("get-response", 0xC4, 0xCC, 0xD4),
        ("set-response", 0xC5, 0xCD, 0xD5),
        ("action-response", 0xC7, 0xCF, 0xD7),
    )
)

GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC
GENERAL_CIPHERING = 0xDD
GENERAL_SIGNING = 0xDF
EXCEPTION_RESPONSE = 0xD8
DATA_NOTIFICATION = 0x0F

BY_PLAIN: dict[int, ServiceTags] = {s.plain: s for s in SERVICES}

# ciphered tag -> (form, name of the ciphered APDU)
CIPHERED: dict[int, tuple[Form, str]] = {
    **{s.glo: (Form.GLO, f"glo-{s.name}") for s in SERVICES},
    **{s.ded: (Form.DED, f"ded-{s.name}") for s in SERVICES},
    GENERAL_GLO_CIPHERING: (Form.GENERAL_GLO, "general-glo-ciphering"),
    GENERAL_DED_CIPHERING: (Form.GENERAL_DED, "general-ded-ciphering"),
    GENERAL_CIPHERING: (Form.GENERAL, "general-ciphering"),
}

FORM_TAG: dict[Form, int] = {
    Form.GENERAL_GLO: GENERAL_GLO_CIPHERING,
    Form.GENERAL_DED: GENERAL_DED_CIPHERING,
    Form.GENERAL: GENERAL_CIPHERING,
}


def ciphered_tag(plain_tag: int, form: Form) -> int:
    """Tag of the ciphered APDU that carries a plain APDU starting with ``plain_tag``."""
    if form in FORM_TAG:
        return FORM_TAG[form]
    service = BY_PLAIN.get(plain_tag)
    if service is None:
        from edge_agent.dlms.errors import EncodeError

        raise EncodeError(
            f"APDU tag 0x{plain_tag:02X} has no service-specific {form.value}- form "
            "(Green Book 9.5): use general-glo-ciphering or general-ded-ciphering"
        )
    return service.glo if form is Form.GLO else service.ded


def is_ciphered(tag: int) -> bool:
    return tag in CIPHERED
