"""The simulator's xDLMS request handling, exercised through encoded APDUs (apdu.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sim_support import NEGOTIATED, START, context, make, request

from edge_agent.dlms.apdu import (
    OMITTED,
    ActionRequestNormal,
    ActionRequestWithList,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResult,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    CosemMethodDescriptor,
    DataAccessResult,
    ExceptionResponse,
    ExceptionServiceError,
    GetBlockReassembler,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    SelectiveAccess,
    SetRequestNormal,
    SetRequestWithList,
    SetResponseNormal,
    SetResponseWithList,
    StateError,
    decode_apdu,
)
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.get import raw_chunk_size
from edge_agent.dlms.apdu.notification import DataNotification
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.encoding.axdr import DoubleLongUnsigned, Integer, LongUnsigned, OctetString
from edge_agent.dlms.encoding.date_time import date_time_from_octets
from edge_agent.simulator.handler import RequestHandler
from edge_agent.simulator.loadprofile import CLOCK_CAPTURE
from edge_agent.simulator.meter_models import LOAD_PROFILE, ln

INVOKE = 0xC5  # invoke-id 5, confirmed, high priority
ENERGY = CosemAttributeDescriptor(3, ln("1.0.1.8.0.255"), 2)
CLOCK_TIME = CosemAttributeDescriptor(8, ln("0.0.1.0.0.255"), 2)
DISCONNECT = ln("0.0.96.3.10.255")


def exchange(handler: RequestHandler, ctx, request):
    """Encode, decode on the meter side, handle, encode the answer, decode it again."""
    response = handler.handle(decode_apdu(request.encode()), ctx)
    decoded = decode_apdu(response.encode())
    assert decoded == response
    return decoded


def setup(sap: int = 1, **kwargs):
    sim, clock = make()
    return sim, clock, RequestHandler(sim), context(sim, sap, **kwargs)


def get(handler, ctx, descriptor, selection=None):
    response = exchange(handler, ctx, GetRequestNormal(INVOKE, descriptor, selection))
    assert isinstance(response, GetResponseNormal)
    assert response.invoke_id_and_priority == INVOKE
    return response.result


# --- GET ------------------------------------------------------------------------------


def test_get_normal_reads_a_register_and_echoes_the_invoke_id() -> None:
    sim, _, handler, ctx = setup()
    value = get(handler, ctx, ENERGY)
    assert value == int(sim.meter.energy(0, START)) and isinstance(value, DoubleLongUnsigned)
    scaler_unit = get(handler, ctx, CosemAttributeDescriptor(3, ln("1.0.32.7.0.255"), 3))
    assert scaler_unit == (-1, 35)
    assert get(handler, ctx, CosemAttributeDescriptor(3, ln("1.0.1.8.0.255"), 1)) == \
        ln("1.0.1.8.0.255")


def test_get_of_the_clock() -> None:
    _, _, handler, ctx = setup(16)
    shown = date_time_from_octets(get(handler, ctx, CLOCK_TIME))
    assert shown.to_datetime().astimezone(UTC) == START.replace(microsecond=0)


@pytest.mark.parametrize("sap, descriptor, result", [
    (1, CosemAttributeDescriptor(3, ln("1.0.9.9.9.255"), 2), DataAccessResult.OBJECT_UNDEFINED),
    (1, CosemAttributeDescriptor(1, ln("1.0.1.8.0.255"), 2),
     DataAccessResult.OBJECT_CLASS_INCONSISTENT),
    (1, CosemAttributeDescriptor(3, ln("1.0.1.8.0.255"), 4), DataAccessResult.OBJECT_UNAVAILABLE),
    (1, CosemAttributeDescriptor(3, ln("1.0.1.8.0.255"), 0), DataAccessResult.OBJECT_UNAVAILABLE),
    (16, ENERGY, DataAccessResult.OBJECT_UNDEFINED),  # not in the public object list
    (16, CosemAttributeDescriptor(15, ln("0.0.40.0.2.255"), 2),
     DataAccessResult.OBJECT_UNDEFINED),
    (1, CosemAttributeDescriptor(15, ln("0.0.40.0.0.255"), 7),
     DataAccessResult.OBJECT_UNAVAILABLE),  # the secret is not served at all
])
def test_get_refusals(sap: int, descriptor, result: DataAccessResult) -> None:
    _, _, handler, ctx = setup(sap)
    assert get(handler, ctx, descriptor) is result


def test_write_only_and_unreadable_attributes_are_denied() -> None:
    _, _, handler, ctx = setup(16)
    # Public sees the security setup but holds no right on an attribute it does not list.
    assert get(handler, ctx, CosemAttributeDescriptor(70, DISCONNECT, 2)) is \
        DataAccessResult.OBJECT_UNDEFINED
    granted = ctx.view.find(ln("0.0.1.0.0.255"))[1]
    assert not granted.attribute(2).writable


def test_selective_access_on_a_non_profile_is_other_reason() -> None:
    _, _, handler, ctx = setup()
    entry = SelectiveAccess(2, (DoubleLongUnsigned(1), DoubleLongUnsigned(1), LongUnsigned(1),
                                LongUnsigned(0)))
    assert get(handler, ctx, ENERGY, entry) is DataAccessResult.OTHER_REASON
    lp_capture = CosemAttributeDescriptor(7, LOAD_PROFILE, 3)
    assert get(handler, ctx, lp_capture, entry) is DataAccessResult.OTHER_REASON


def test_selective_access_needs_its_conformance_bit() -> None:
    _, _, handler, ctx = setup(conformance=NEGOTIATED & ~Conformance.SELECTIVE_ACCESS)
    entry = SelectiveAccess(2, (DoubleLongUnsigned(1), DoubleLongUnsigned(1), LongUnsigned(1),
                                LongUnsigned(0)))
    assert get(handler, ctx, CosemAttributeDescriptor(7, LOAD_PROFILE, 2), entry) is \
        DataAccessResult.OTHER_REASON


def test_profile_entry_selection_through_the_handler() -> None:
    _, _, handler, ctx = setup()
    entry = SelectiveAccess(2, (DoubleLongUnsigned(1), DoubleLongUnsigned(2), LongUnsigned(1),
                                LongUnsigned(0)))
    rows = get(handler, ctx, CosemAttributeDescriptor(7, LOAD_PROFILE, 2), entry)
    assert len(rows) == 2 and len(rows[0]) == 6
    bad = SelectiveAccess(2, (DoubleLongUnsigned(0), DoubleLongUnsigned(2), LongUnsigned(1),
                              LongUnsigned(0)))
    assert get(handler, ctx, CosemAttributeDescriptor(7, LOAD_PROFILE, 2), bad) is \
        DataAccessResult.SCOPE_OF_ACCESS_VIOLATED


def test_get_with_list_answers_each_attribute_in_order() -> None:
    _, _, handler, ctx = setup()
    items = tuple(CosemAttributeDescriptorWithSelection(d) for d in (
        ENERGY, CosemAttributeDescriptor(3, ln("1.0.9.9.9.255"), 2), CLOCK_TIME))
    response = exchange(handler, ctx, GetRequestWithList(INVOKE, items))
    assert isinstance(response, GetResponseWithList)
    assert response.invoke_id_and_priority == INVOKE
    energy, missing, clock = response.results
    assert energy == get(handler, ctx, ENERGY)
    assert missing is DataAccessResult.OBJECT_UNDEFINED
    assert len(clock) == 12


def test_with_list_is_refused_without_multiple_references() -> None:
    _, _, handler, ctx = setup(conformance=NEGOTIATED & ~Conformance.MULTIPLE_REFERENCES)
    items = (CosemAttributeDescriptorWithSelection(ENERGY),) * 2
    response = exchange(handler, ctx, GetRequestWithList(INVOKE, items))
    assert response == ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                         ExceptionServiceError.SERVICE_NOT_SUPPORTED)


# --- block transfer ---------------------------------------------------------------------


def read_in_blocks(handler, ctx, request) -> GetBlockReassembler:
    response = exchange(handler, ctx, request)
    assert isinstance(response, GetResponseWithDatablock)
    reassembler = GetBlockReassembler(INVOKE)
    next_request = reassembler.feed(response)
    while next_request is not None:
        response = exchange(handler, ctx, next_request)
        assert len(response.encode()) <= ctx.max_pdu_size
        next_request = reassembler.feed(response)
    return reassembler


@pytest.mark.parametrize("max_pdu_size", [256, 1024, 0xFFFF])
def test_a_long_profile_read_reassembles_to_the_same_buffer(max_pdu_size: int) -> None:
    sim, _, handler, ctx = setup(max_pdu_size=max_pdu_size)
    descriptor = CosemAttributeDescriptor(7, LOAD_PROFILE, 2)
    reassembler = read_in_blocks(handler, ctx, GetRequestNormal(INVOKE, descriptor))
    expected = sim.objects[LOAD_PROFILE].attributes[2].get(request(sim))
    assert reassembler.data() == expected
    raw = len(axdr.encode(expected))
    assert reassembler.blocks == -(-raw // raw_chunk_size(max_pdu_size, 9)) > 1


def test_a_long_with_list_answer_comes_in_blocks_of_results() -> None:
    _, _, handler, ctx = setup(max_pdu_size=128)
    items = tuple(CosemAttributeDescriptorWithSelection(d) for d in (
        CosemAttributeDescriptor(15, ln("0.0.40.0.0.255"), 2), ENERGY))
    results = read_in_blocks(handler, ctx, GetRequestWithList(INVOKE, items)).results()
    assert len(results) == 2 and len(results[0]) > 10
    assert results[1] == get(handler, ctx, ENERGY)


def test_get_next_with_a_wrong_block_number_aborts_the_long_get() -> None:
    _, _, handler, ctx = setup(max_pdu_size=256)
    first = exchange(handler, ctx, GetRequestNormal(INVOKE, CosemAttributeDescriptor(
        7, LOAD_PROFILE, 2)))
    assert first.result.block_number == 1 and not first.result.last_block
    wrong = exchange(handler, ctx, GetRequestNext(INVOKE, 7))
    assert wrong.result.last_block and wrong.result.result is DataAccessResult.LONG_GET_ABORTED
    after = exchange(handler, ctx, GetRequestNext(INVOKE, 1))
    assert after.result.result is DataAccessResult.NO_LONG_GET_IN_PROGRESS


def test_get_next_without_a_long_get() -> None:
    _, _, handler, ctx = setup()
    response = exchange(handler, ctx, GetRequestNext(INVOKE, 1))
    assert response.result.result is DataAccessResult.NO_LONG_GET_IN_PROGRESS


def test_a_new_request_ends_the_long_get() -> None:
    _, _, handler, ctx = setup(max_pdu_size=256)
    exchange(handler, ctx, GetRequestNormal(INVOKE, CosemAttributeDescriptor(7, LOAD_PROFILE, 2)))
    get(handler, ctx, ENERGY)
    response = exchange(handler, ctx, GetRequestNext(INVOKE, 1))
    assert response.result.result is DataAccessResult.NO_LONG_GET_IN_PROGRESS


def test_too_long_without_block_transfer_is_an_exception() -> None:
    _, _, handler, ctx = setup(
        max_pdu_size=256, conformance=NEGOTIATED & ~Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ)
    response = exchange(handler, ctx, GetRequestNormal(INVOKE, CosemAttributeDescriptor(
        7, LOAD_PROFILE, 2)))
    assert response == ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                         ExceptionServiceError.PDU_TOO_LONG)


# --- SET and ACTION -------------------------------------------------------------------------


def set_(handler, ctx, descriptor, value) -> DataAccessResult:
    response = exchange(handler, ctx, SetRequestNormal(INVOKE, descriptor, value))
    assert isinstance(response, SetResponseNormal) and response.invoke_id_and_priority == INVOKE
    return response.result


def test_management_sets_the_clock() -> None:
    sim, _, handler, ctx = setup()
    target = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    value = OctetString(sim.meter.cosem_time(target).encode())
    assert set_(handler, ctx, CLOCK_TIME, value) is DataAccessResult.SUCCESS
    assert sim.meter.now() == target
    shown = date_time_from_octets(get(handler, ctx, CLOCK_TIME)).to_datetime()
    assert shown.astimezone(UTC) == target


@pytest.mark.parametrize("sap, descriptor, value, result", [
    (16, CLOCK_TIME, OctetString(bytes(12)), DataAccessResult.READ_WRITE_DENIED),
    (1, ENERGY, DoubleLongUnsigned(0), DataAccessResult.READ_WRITE_DENIED),
    (1, CosemAttributeDescriptor(3, ln("1.0.1.8.0.255"), 1), OctetString(bytes(6)),
     DataAccessResult.READ_WRITE_DENIED),
    (1, CLOCK_TIME, Integer(5), DataAccessResult.TYPE_UNMATCHED),
    (1, CLOCK_TIME, OctetString(b"\xff" * 12), DataAccessResult.TYPE_UNMATCHED),
    (1, CosemAttributeDescriptor(70, DISCONNECT, 4), axdr.Enum(9),
     DataAccessResult.OTHER_REASON),
    (1, CosemAttributeDescriptor(3, ln("1.0.9.9.9.255"), 2), Integer(1),
     DataAccessResult.OBJECT_UNDEFINED),
    (1, CosemAttributeDescriptor(8, ln("1.0.1.8.0.255"), 2), Integer(1),
     DataAccessResult.OBJECT_CLASS_INCONSISTENT),
    (1, CosemAttributeDescriptor(8, ln("0.0.1.0.0.255"), 12), Integer(1),
     DataAccessResult.OBJECT_UNAVAILABLE),
])
def test_set_refusals(sap, descriptor, value, result) -> None:
    sim, _, handler, ctx = setup(sap)
    before = sim.meter.now()
    assert set_(handler, ctx, descriptor, value) is result
    assert sim.meter.now() == before and not sim.meter.recorded_events


def test_set_with_list() -> None:
    sim, _, handler, ctx = setup()
    items = tuple(CosemAttributeDescriptorWithSelection(d) for d in (
        CosemAttributeDescriptor(70, DISCONNECT, 4), ENERGY))
    response = exchange(handler, ctx, SetRequestWithList(INVOKE, items, (axdr.Enum(1),
                                                                         DoubleLongUnsigned(1))))
    assert isinstance(response, SetResponseWithList)
    assert response.results == (DataAccessResult.SUCCESS, DataAccessResult.READ_WRITE_DENIED)
    assert sim.meter.control_mode == 1


ZERO = Integer(0)


def action(handler, ctx, class_id, logical_name, method, parameters=ZERO):
    response = exchange(handler, ctx, ActionRequestNormal(
        INVOKE, CosemMethodDescriptor(class_id, logical_name, method), parameters))
    assert isinstance(response, ActionResponseNormal)
    assert response.invoke_id_and_priority == INVOKE
    return response.single_response


def test_management_disconnects_and_reconnects() -> None:
    _, clock, handler, ctx = setup()
    assert action(handler, ctx, 70, DISCONNECT, 1).result is ActionResult.SUCCESS
    assert get(handler, ctx, CosemAttributeDescriptor(70, DISCONNECT, 2)) is False
    frozen = get(handler, ctx, ENERGY)
    clock.advance(hours=2)
    assert get(handler, ctx, ENERGY) == frozen
    assert action(handler, ctx, 70, DISCONNECT, 2).result is ActionResult.SUCCESS
    assert get(handler, ctx, CosemAttributeDescriptor(70, DISCONNECT, 3)) == 1


@pytest.mark.parametrize("sap, class_id, name, method, parameters, result", [
    (16, 70, DISCONNECT, 1, Integer(0), ActionResult.OBJECT_UNDEFINED),
    (1, 3, DISCONNECT, 1, Integer(0), ActionResult.OBJECT_CLASS_INCONSISTENT),
    (1, 70, DISCONNECT, 3, Integer(0), ActionResult.OBJECT_UNAVAILABLE),
    (1, 70, DISCONNECT, 1, OMITTED, ActionResult.TYPE_UNMATCHED),
    (16, 8, ln("0.0.1.0.0.255"), 6, axdr.Long(5), ActionResult.READ_WRITE_DENIED),
    (1, 8, ln("0.0.1.0.0.255"), 6, axdr.Long(5000), ActionResult.OTHER_REASON),
    (1, 64, ln("0.0.43.0.0.255"), 9, OctetString(b""), ActionResult.OBJECT_UNAVAILABLE),  # class 64 has 8 methods
    (1, 15, ln("0.0.40.0.0.255"), 1, OctetString(b""), ActionResult.OBJECT_UNAVAILABLE),
])
def test_action_refusals(sap, class_id, name, method, parameters, result) -> None:
    _, _, handler, ctx = setup(sap)
    assert action(handler, ctx, class_id, name, method, parameters).result is result


def test_control_mode_zero_refuses_the_disconnect() -> None:
    sim, _, handler, ctx = setup()
    sim.meter.control_mode = 0
    assert action(handler, ctx, 70, DISCONNECT, 1).result is ActionResult.OTHER_REASON
    assert sim.meter.output_state


def test_shift_time_moves_the_clock() -> None:
    sim, _, handler, ctx = setup()
    assert action(handler, ctx, 8, ln("0.0.1.0.0.255"), 6, axdr.Long(-30)).result is \
        ActionResult.SUCCESS
    assert sim.meter.now() == START - timedelta(seconds=30)


def test_registered_methods_are_called_and_advertised() -> None:
    sim, _, handler, _ = setup()
    calls = []

    def reply_to_hls(request, parameters):
        calls.append((request.association.client_sap, parameters))
        return OctetString(b"\x10" + bytes(16))

    sim.methods.register(15, 1, reply_to_hls)
    ctx = context(sim, 1, authenticated=False)  # between HLS pass 2 and pass 4
    answer = action(handler, ctx, 15, ln("0.0.40.0.0.255"), 1, OctetString(b"f(CtoS)"))
    assert answer.result is ActionResult.SUCCESS and answer.return_parameters[0] == 0x10
    assert calls == [(1, b"f(CtoS)")]
    # Until pass 4 nothing else is allowed.
    assert get(handler, ctx, ENERGY) is DataAccessResult.READ_WRITE_DENIED
    assert action(handler, ctx, 70, DISCONNECT, 1).result is ActionResult.READ_WRITE_DENIED
    # The method now shows as accessible in the management object list, not in public's.
    ctx = context(sim, 1, max_pdu_size=0xFFFF)
    current = get(handler, ctx, CosemAttributeDescriptor(15, ln("0.0.40.0.0.255"), 2))
    element = next(e for e in current if e[2] == ln("0.0.40.0.0.255"))
    assert (1, 1) in [tuple(m) for m in element[3][1]]


def test_action_with_list() -> None:
    sim, _, handler, ctx = setup()
    descriptors = (CosemMethodDescriptor(70, DISCONNECT, 1),
                   CosemMethodDescriptor(70, DISCONNECT, 9))
    response = exchange(handler, ctx, ActionRequestWithList(INVOKE, descriptors,
                                                           (Integer(0), Integer(0))))
    assert isinstance(response, ActionResponseWithList)
    assert [r.result for r in response.list_of_responses] == [ActionResult.SUCCESS,
                                                              ActionResult.OBJECT_UNAVAILABLE]
    assert not sim.meter.output_state


# --- whole-request refusals and object lists -----------------------------------------------


def test_services_the_meter_does_not_serve_are_exceptions() -> None:
    _, _, handler, ctx = setup()
    notification = DataNotification(1, b"", DoubleLongUnsigned(1))
    assert exchange(handler, ctx, notification) == ExceptionResponse(
        StateError.SERVICE_UNKNOWN, ExceptionServiceError.SERVICE_NOT_SUPPORTED)
    response = exchange(handler, ctx, GetResponseNormal(INVOKE, DoubleLongUnsigned(1)))
    assert response.state_error is StateError.SERVICE_UNKNOWN


def test_set_without_the_set_conformance_is_refused() -> None:
    _, _, handler, ctx = setup(conformance=NEGOTIATED & ~Conformance.SET)
    response = exchange(handler, ctx, SetRequestNormal(INVOKE, CLOCK_TIME, OctetString(bytes(12))))
    assert response == ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                         ExceptionServiceError.SERVICE_NOT_SUPPORTED)


def test_object_lists_per_client() -> None:
    sim, _, handler, _ = setup()
    lists = {}
    for sap in (16, 1):
        ctx = context(sim, sap, max_pdu_size=0xFFFF)
        lists[sap] = get(handler, ctx, CosemAttributeDescriptor(15, ln("0.0.40.0.0.255"), 2))
    public = {bytes(e[2]) for e in lists[16]}
    management = {bytes(e[2]) for e in lists[1]}
    assert public < management
    assert {ln("0.0.43.1.0.255"), ln("0.0.1.0.0.255"), ln("0.0.96.1.0.255")} <= public
    assert ln("1.0.1.8.0.255") not in public and ln("1.0.99.1.0.255") in management
    clock = next(e for e in lists[16] if e[2] == ln("0.0.1.0.0.255"))
    assert all(a[1] in (0, 1) for a in clock[3][0])  # public: read-only at most
    profile = next(e for e in lists[1] if e[2] == LOAD_PROFILE)
    assert [list(a[2]) for a in profile[3][0] if a[0] == 2] == [[1, 2]]  # selectors
    partners = get(handler, context(sim, 16), CosemAttributeDescriptor(15, ln("0.0.40.0.0.255"),
                                                                       3))
    assert partners == (16, 1)


def test_frame_counter_is_readable_by_the_public_client() -> None:
    sim, _, handler, ctx = setup(16)
    sim.meter.invocation_counter = 1426
    assert get(handler, ctx, CosemAttributeDescriptor(1, ln("0.0.43.1.0.255"), 2)) == 1426


def test_range_selection_through_the_handler() -> None:
    sim, _, handler, ctx = setup()
    start = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
    params = (CLOCK_CAPTURE.to_data(), OctetString(sim.meter.cosem_time(start).encode()),
              OctetString(sim.meter.cosem_time(start + timedelta(hours=2)).encode()), [])
    rows = get(handler, ctx, CosemAttributeDescriptor(7, LOAD_PROFILE, 2),
               SelectiveAccess(1, params))
    assert len(rows) == 9
