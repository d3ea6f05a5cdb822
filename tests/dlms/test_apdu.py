"""xDLMS APDU codec: known encodings, round-trips of every APDU, malformed input."""

from __future__ import annotations

import pytest
from apdu_strategies import APDUS, any_apdu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.dlms.apdu import (
    OMITTED,
    PROTECTED_TAGS,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResponseWithOptionalData,
    ActionResult,
    ConfirmedService,
    ConfirmedServiceError,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    CosemMethodDescriptor,
    DataAccessResult,
    DataNotification,
    EventNotificationRequest,
    ExceptionResponse,
    ExceptionServiceError,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithList,
    SelectiveAccess,
    ServiceErrorKind,
    SetRequestNormal,
    SetResponseNormal,
    StateError,
    access_error,
    apdu_class,
    decode_apdu,
    explain_result,
    invoke_id_and_priority,
    invoke_id_of,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import (
    DecodeError,
    DlmsError,
    EncodeError,
    ExceptionResponseError,
    ServiceError,
    TruncatedError,
)

REGISTER_1_8_0 = CosemAttributeDescriptor(3, bytes((1, 0, 1, 8, 0, 255)), 2)
PROFILE = bytes((1, 0, 99, 1, 0, 255))

# --- known encodings ---------------------------------------------------------------------

KNOWN: list[tuple[str, object]] = [
    # Green Book: GET-Request-Normal of Register 1.0.1.8.0.255 attribute 2.
    ("C001C1000301000108 00FF0200", GetRequestNormal(0xC1, REGISTER_1_8_0)),
    ("C002C100000002", GetRequestNext(0xC1, 2)),
    ("C401C100060000012C", GetResponseNormal(0xC1, axdr.DoubleLongUnsigned(300))),
    ("C401C10104", GetResponseNormal(0xC1, DataAccessResult.OBJECT_UNDEFINED)),
    (
        "C003C1020003010001080 0FF0200 0008 0000010000FF 02 00".replace(" ", ""),
        GetRequestWithList(
            0xC1,
            (
                CosemAttributeDescriptorWithSelection(REGISTER_1_8_0),
                CosemAttributeDescriptorWithSelection(
                    CosemAttributeDescriptor(8, bytes((0, 0, 1, 0, 0, 255)), 2)
                ),
            ),
        ),
    ),
    (
        "C403C1020006000000010104",
        GetResponseWithList(0xC1, (axdr.DoubleLongUnsigned(1), DataAccessResult.OBJECT_UNDEFINED)),
    ),
    # The pass-3 ACTION of the T-210D reference trace (shared/reference, inner content).
    (
        "C301C1000F0000280000FF0101091111000005927050C667AFCAE335FFE491EB",
        ActionRequestNormal(
            0xC1,
            CosemMethodDescriptor(15, bytes((0, 0, 40, 0, 0, 255)), 1),
            axdr.OctetString(bytes.fromhex("11000005927050C667AFCAE335FFE491EB")),
        ),
    ),
    (
        "C701C10000",
        ActionResponseNormal(0xC1, ActionResponseWithOptionalData(ActionResult.SUCCESS)),
    ),
    ("C501C100", SetResponseNormal(0xC1, DataAccessResult.SUCCESS)),
    (
        "D80101",
        ExceptionResponse(
            StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.OPERATION_NOT_POSSIBLE
        ),
    ),
    (
        "D801060000059F",
        ExceptionResponse(
            StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.INVOCATION_COUNTER_ERROR, 1439
        ),
    ),
    (
        "0E010601",
        ConfirmedServiceError(ConfirmedService.INITIATE_ERROR, ServiceErrorKind.INITIATE, 1),
    ),
    (
        "0F4000000000 1200FF".replace(" ", ""),
        DataNotification(0x40000000, b"", axdr.LongUnsigned(255)),
    ),
]
# Selective access by range on the load profile (Blue Book 4.3.6: restricting object = clock).
RANGE = axdr.Structure(
    (
        axdr.Structure(
            (
                axdr.LongUnsigned(8),
                axdr.OctetString(bytes((0, 0, 1, 0, 0, 255))),
                axdr.Integer(2),
                axdr.LongUnsigned(0),
            )
        ),
        axdr.OctetString(bytes(12)),
        axdr.OctetString(bytes(12)),
        axdr.Array([]),
    )
)
KNOWN.append(
    (
        "C001C1000701006301 00FF0201 01" + axdr.encode(RANGE).hex(),
        GetRequestNormal(0xC1, CosemAttributeDescriptor(7, PROFILE, 2), SelectiveAccess(1, RANGE)),
    )
)


@pytest.mark.parametrize(("hex_text", "apdu"), KNOWN, ids=[type(a).__name__ for _, a in KNOWN])
def test_known_encodings(hex_text: str, apdu: object) -> None:
    raw = bytes.fromhex(hex_text.replace(" ", ""))
    assert apdu.encode() == raw
    assert decode_apdu(raw) == apdu
    assert decode_apdu(memoryview(raw)) == apdu


def test_invoke_id_and_priority_helpers() -> None:
    assert invoke_id_and_priority(1) == 0xC1
    assert invoke_id_and_priority(15, confirmed=False, high_priority=False) == 0x0F
    assert invoke_id_of(0xC7) == 7
    assert GetRequestNext(0x45, 1).invoke_id == 5
    with pytest.raises(EncodeError, match="0..15"):
        invoke_id_and_priority(16)


def test_data_notification_timestamp() -> None:
    stamp = CosemDateTime(2024, 5, 17, None, 12, 0, 0, 0, None, None)
    apdu = DataNotification(1, stamp.encode(), axdr.Structure(()))
    decoded = decode_apdu(apdu.encode())
    assert decoded.timestamp == stamp
    assert DataNotification(1, b"", None).timestamp is None


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(APDUS), ids=lambda cls: cls.__name__)
def test_round_trip(cls: type) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(APDUS[cls])
    def check(apdu: object) -> None:
        raw = apdu.encode()
        decoded = decode_apdu(raw)
        assert type(decoded) is cls
        assert decoded == apdu
        assert decoded.encode() == raw  # same wire types, not only equal values
        assert cls.decode(raw) == apdu

    check()


@settings(max_examples=150, deadline=None)
@given(any_apdu, st.data())
def test_every_truncation_is_a_decode_error(apdu: object, draw: st.DataObject) -> None:
    raw = apdu.encode()
    cut = draw.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode_apdu(raw[:cut])


@pytest.mark.parametrize(
    ("hex_text", "apdu"), KNOWN[:8], ids=[type(a).__name__ for _, a in KNOWN[:8]]
)
def test_truncation_at_every_offset(hex_text: str, apdu: object) -> None:
    raw = apdu.encode()
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_apdu(raw[:cut])


@settings(max_examples=100, deadline=None)
@given(any_apdu)
def test_trailing_bytes_are_refused(apdu: object) -> None:
    with pytest.raises(DecodeError, match="unexpected byte"):
        decode_apdu(apdu.encode() + b"\x00")


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7, 0x0F, 0xC2, 0xD8, 0x0E, 0xE0, 0x01, 0x08]),
    st.binary(max_size=40),
)
def test_garbage_after_a_known_tag_raises_only_dlms_errors(tag: int, body: bytes) -> None:
    try:
        decode_apdu(bytes((tag,)) + body)
    except DlmsError:
        pass


@settings(max_examples=200, deadline=None)
@given(any_apdu, st.data())
def test_corrupted_byte_raises_only_dlms_errors(apdu: object, draw: st.DataObject) -> None:
    raw = bytearray(apdu.encode())
    index = draw.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= draw.draw(st.integers(1, 255))
    try:
        decode_apdu(bytes(raw))
    except DlmsError:
        pass


# --- dispatch errors ----------------------------------------------------------------------


@pytest.mark.parametrize("tag", sorted(PROTECTED_TAGS))
def test_protected_tags_point_to_the_security_module(tag: int) -> None:
    with pytest.raises(DecodeError, match="security module") as caught:
        decode_apdu(bytes((tag, 0, 0)))
    assert f"0x{tag:02x}" in str(caught.value)


def test_ciphered_tags_are_all_refused() -> None:
    # Green Book 9.5: glo-/ded- forms of the services, and the general protection APDUs.
    glo_ded = {
        0x21,
        0x25,
        0x26,
        0x28,
        0x2C,
        0x2D,
        0x2E,
        0x36,
        0x38,
        0x41,
        0x45,
        0x46,
        0x48,
        0x4C,
        0x4D,
        0x4E,
        0x56,
        0x58,
    }
    service_specific = set(range(0xC8, 0xCE)) | {0xCF} | set(range(0xD0, 0xD6)) | {0xD7}
    assert glo_ded | service_specific | {0xDB, 0xDC, 0xDD, 0xDF} == set(PROTECTED_TAGS)


def test_unknown_tag_and_choice_are_named() -> None:
    with pytest.raises(DecodeError, match="0xff"):
        decode_apdu(b"\xff\x00")
    with pytest.raises(DecodeError, match="unknown choice 9"):
        decode_apdu(b"\xc0\x09\xc1")
    with pytest.raises(DecodeError, match="ACSE AARQ"):
        apdu_class(b"\x60\x00")
    with pytest.raises(TruncatedError):
        decode_apdu(b"")


def test_wrong_class_decode_names_both_tags() -> None:
    with pytest.raises(DecodeError, match="expected tag c401, got c001"):
        GetResponseNormal.decode(KNOWN[0][1].encode())


def test_bad_presence_marker_and_choice() -> None:
    with pytest.raises(DecodeError, match="00 \\(absent\\) or 01"):
        decode_apdu(bytes.fromhex("C001C1000301000108 00FF0207".replace(" ", "")))
    with pytest.raises(DecodeError, match="data-access-result"):
        decode_apdu(bytes.fromhex("C401C10500"))
    with pytest.raises(DecodeError, match="state-error"):
        decode_apdu(bytes.fromhex("D80901"))


def test_encode_validates_ranges() -> None:
    with pytest.raises(EncodeError, match="6 bytes"):
        CosemAttributeDescriptor(3, b"\x01\x00", 2)
    with pytest.raises(EncodeError, match="Integer8"):
        CosemMethodDescriptor(15, bytes(6), 200)
    with pytest.raises(EncodeError, match="invocation counter"):
        ExceptionResponse(
            StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.INVOCATION_COUNTER_ERROR
        )
    with pytest.raises(EncodeError):
        GetRequestNext(0xC1, 2**32).encode()


# --- readable errors ---------------------------------------------------------------------


def test_explain_result_names_object_and_class() -> None:
    target = CosemAttributeDescriptor(7, PROFILE, 2).target
    assert explain_result(DataAccessResult.OBJECT_UNDEFINED, target) == (
        "object-undefined: the meter has no object 1.0.99.1.0.255 of class 7"
    )
    assert "value 77" in explain_result(DataAccessResult(77), target)


def test_access_error_is_a_readable_service_error() -> None:
    error = access_error(
        DataAccessResult.READ_WRITE_DENIED, CosemAttributeDescriptor(7, PROFILE, 2)
    )
    assert isinstance(error, ServiceError) and error.reason == "read-write-denied"
    assert str(error).startswith("read-write-denied: the association's access rights")
    assert "object 1.0.99.1.0.255 of class 7" in str(error)


def test_unknown_result_codes_still_decode() -> None:
    decoded = decode_apdu(bytes.fromhex("C403C10201 4D 01 FA".replace(" ", "")))
    assert decoded.results == (DataAccessResult(77), DataAccessResult.OTHER_REASON)
    assert decoded.results[0].standard_name.startswith("value 77")


def test_exception_response_to_error_suggests_signing() -> None:
    error = decode_apdu(bytes.fromhex("D80101")).to_error()
    assert isinstance(error, ExceptionResponseError)
    assert error.state_error == "service-not-allowed"
    assert error.service_error == "operation-not-possible"
    assert "pass3_signing: always" in str(error)


def test_confirmed_service_error_names() -> None:
    apdu = decode_apdu(bytes.fromhex("0E010601"))
    assert apdu.describe() == "initiate-error: initiate/dlms-version-too-low"
    error = apdu.to_error()
    assert isinstance(error, ServiceError) and error.reason == "initiate/dlms-version-too-low"
    assert (
        ConfirmedServiceError(ConfirmedService.READ, ServiceErrorKind.ACCESS, 2).error_name
        == "object-access-violated"
    )


def test_optional_data_distinguishes_absent_from_null() -> None:
    method = CosemMethodDescriptor(70, bytes((0, 0, 96, 3, 10, 255)), 1)
    absent = ActionRequestNormal(0xC1, method)
    null = ActionRequestNormal(0xC1, method, None)
    assert absent.encode() == bytes.fromhex("C301C100460000600 30AFF0100".replace(" ", ""))
    assert null.encode() == bytes.fromhex("C301C100460000600 30AFF010100".replace(" ", ""))
    assert decode_apdu(absent.encode()).method_invocation_parameters is OMITTED
    assert decode_apdu(null.encode()).method_invocation_parameters is None


def test_set_request_carries_value_after_access_selection() -> None:
    apdu = SetRequestNormal(
        0xC1,
        CosemAttributeDescriptor(8, bytes((0, 0, 1, 0, 0, 255)), 2),
        axdr.OctetString(bytes(12)),
    )
    assert apdu.encode() == bytes.fromhex("C101C100080000010000FF0200090C") + bytes(12)


def test_event_notification_optional_time() -> None:
    event = EventNotificationRequest(REGISTER_1_8_0, axdr.Unsigned(5))
    assert event.encode() == bytes.fromhex("C200000301000108 00FF021105".replace(" ", ""))
    assert event.timestamp is None


def test_protected_tags_agree_with_the_security_module() -> None:
    from edge_agent.dlms.security.tags import CIPHERED, GENERAL_SIGNING

    expected = {tag: name for tag, (_form, name) in CIPHERED.items()}
    assert PROTECTED_TAGS == {**expected, GENERAL_SIGNING: "general-signing"}


def test_the_tag_table_names_each_service_module_and_its_classes() -> None:
    """decode_apdu imports a service's module at its first APDU: the table's tag of each
    service is the TAG of every class it names, and every re-exported name resolves."""
    import edge_agent.dlms.apdu as package

    for tag, (module, name) in package._SERVICES.items():
        decoders = package._decoders(tag)
        classes = decoders.values() if isinstance(decoders, dict) else [decoders]
        assert classes and all(cls.TAG == tag for cls in classes), (module, name)
        assert all(cls.__module__ == f"edge_agent.dlms.apdu.{module}" for cls in classes)
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert package.Xdlms.__args__  # the union of every service's APDUs
