"""Hypothesis strategies for the xDLMS APDUs (shared by tests/dlms/test_apdu*.py)."""

from __future__ import annotations

from hypothesis import strategies as st

from edge_agent.dlms.apdu import (
    OMITTED,
    ActionRequestNextPblock,
    ActionRequestNormal,
    ActionRequestWithFirstPblock,
    ActionRequestWithList,
    ActionRequestWithListAndFirstPblock,
    ActionRequestWithPblock,
    ActionResponseNextPblock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithOptionalData,
    ActionResponseWithPblock,
    ActionResult,
    ConfirmedService,
    ConfirmedServiceError,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    CosemMethodDescriptor,
    DataAccessResult,
    DataBlockG,
    DataBlockSA,
    DataNotification,
    EventNotificationRequest,
    ExceptionResponse,
    ExceptionServiceError,
    GeneralBlockTransfer,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateRequest,
    InitiateResponse,
    SelectiveAccess,
    ServiceErrorKind,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetRequestWithList,
    SetRequestWithListAndFirstDatablock,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseLastDatablockWithList,
    SetResponseNormal,
    SetResponseWithList,
    StateError,
)
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.secret import Secret

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFF_FFFF)
invoke = u8


def _typed(cls, low, high):
    return st.integers(low, high).map(cls)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _typed(axdr.Unsigned, 0, 0xFF),
    _typed(axdr.Integer, -0x80, 0x7F),
    _typed(axdr.LongUnsigned, 0, 0xFFFF),
    _typed(axdr.Long, -0x8000, 0x7FFF),
    _typed(axdr.DoubleLong, -(2**31), 2**31 - 1),
    _typed(axdr.DoubleLongUnsigned, 0, 2**32 - 1),
    _typed(axdr.Long64, -(2**63), 2**63 - 1),
    _typed(axdr.Enum, 0, 0xFF),
    st.binary(max_size=300).map(axdr.OctetString),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(
        axdr.VisibleString
    ),
)
data = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: axdr.Structure(items))
        | st.lists(children, max_size=4).map(axdr.Array)
    ),
    max_leaves=12,
)

obis = st.binary(min_size=6, max_size=6)
attribute_descriptors = st.builds(
    CosemAttributeDescriptor, st.integers(0, 0xFFFF), obis, st.integers(-128, 127)
)
method_descriptors = st.builds(
    CosemMethodDescriptor, st.integers(0, 0xFFFF), obis, st.integers(-128, 127)
)
selective_access = st.none() | st.builds(SelectiveAccess, u8, data)
with_selection = st.builds(
    CosemAttributeDescriptorWithSelection, attribute_descriptors, selective_access
)
descriptor_lists = st.lists(with_selection, max_size=5).map(tuple)

data_access_results = st.sampled_from(list(DataAccessResult)) | u8.map(DataAccessResult)
get_data_results = data | data_access_results
datablocks_sa = st.builds(DataBlockSA, st.booleans(), u32, st.binary(max_size=300))
datablocks_g = st.builds(
    DataBlockG, st.booleans(), u32, st.binary(max_size=300) | data_access_results
)
action_results = st.sampled_from(list(ActionResult)) | u8.map(ActionResult)
optional_data = st.just(OMITTED) | data
action_responses = st.builds(
    ActionResponseWithOptionalData, action_results, st.just(OMITTED) | get_data_results
)
date_time_octets = st.just(b"") | st.binary(min_size=12, max_size=12)


@st.composite
def exception_responses(draw: st.DrawFn) -> ExceptionResponse:
    service = draw(st.sampled_from(list(ExceptionServiceError)))
    counter = draw(u32) if service is ExceptionServiceError.INVOCATION_COUNTER_ERROR else None
    return ExceptionResponse(draw(st.sampled_from(list(StateError))), service, counter)


conformances = st.integers(0, 0xFFFFFF).map(Conformance)
qos = st.none() | st.integers(-128, 127)

APDUS = {
    GetRequestNormal: st.builds(GetRequestNormal, invoke, attribute_descriptors, selective_access),
    GetRequestNext: st.builds(GetRequestNext, invoke, u32),
    GetRequestWithList: st.builds(GetRequestWithList, invoke, descriptor_lists),
    GetResponseNormal: st.builds(GetResponseNormal, invoke, get_data_results),
    GetResponseWithDatablock: st.builds(GetResponseWithDatablock, invoke, datablocks_g),
    GetResponseWithList: st.builds(
        GetResponseWithList, invoke, st.lists(get_data_results, max_size=6).map(tuple)
    ),
    SetRequestNormal: st.builds(
        SetRequestNormal, invoke, attribute_descriptors, data, selective_access
    ),
    SetRequestWithFirstDatablock: st.builds(
        SetRequestWithFirstDatablock, invoke, attribute_descriptors, datablocks_sa, selective_access
    ),
    SetRequestWithDatablock: st.builds(SetRequestWithDatablock, invoke, datablocks_sa),
    SetRequestWithList: st.builds(
        SetRequestWithList, invoke, descriptor_lists, st.lists(data, max_size=5).map(tuple)
    ),
    SetRequestWithListAndFirstDatablock: st.builds(
        SetRequestWithListAndFirstDatablock, invoke, descriptor_lists, datablocks_sa
    ),
    SetResponseNormal: st.builds(SetResponseNormal, invoke, data_access_results),
    SetResponseDatablock: st.builds(SetResponseDatablock, invoke, u32),
    SetResponseLastDatablock: st.builds(SetResponseLastDatablock, invoke, data_access_results, u32),
    SetResponseLastDatablockWithList: st.builds(
        SetResponseLastDatablockWithList,
        invoke,
        st.lists(data_access_results, max_size=6).map(tuple),
        u32,
    ),
    SetResponseWithList: st.builds(
        SetResponseWithList, invoke, st.lists(data_access_results, max_size=6).map(tuple)
    ),
    ActionRequestNormal: st.builds(ActionRequestNormal, invoke, method_descriptors, optional_data),
    ActionRequestNextPblock: st.builds(ActionRequestNextPblock, invoke, u32),
    ActionRequestWithList: st.builds(
        ActionRequestWithList,
        invoke,
        st.lists(method_descriptors, max_size=4).map(tuple),
        st.lists(data, max_size=4).map(tuple),
    ),
    ActionRequestWithFirstPblock: st.builds(
        ActionRequestWithFirstPblock, invoke, method_descriptors, datablocks_sa
    ),
    ActionRequestWithListAndFirstPblock: st.builds(
        ActionRequestWithListAndFirstPblock,
        invoke,
        st.lists(method_descriptors, max_size=4).map(tuple),
        datablocks_sa,
    ),
    ActionRequestWithPblock: st.builds(ActionRequestWithPblock, invoke, datablocks_sa),
    ActionResponseNormal: st.builds(ActionResponseNormal, invoke, action_responses),
    ActionResponseWithPblock: st.builds(ActionResponseWithPblock, invoke, datablocks_sa),
    ActionResponseWithList: st.builds(
        ActionResponseWithList, invoke, st.lists(action_responses, max_size=4).map(tuple)
    ),
    ActionResponseNextPblock: st.builds(ActionResponseNextPblock, invoke, u32),
    DataNotification: st.builds(DataNotification, u32, date_time_octets, data),
    EventNotificationRequest: st.builds(
        EventNotificationRequest, attribute_descriptors, data, st.none() | date_time_octets
    ),
    ExceptionResponse: exception_responses(),
    ConfirmedServiceError: st.builds(
        ConfirmedServiceError,
        st.sampled_from(list(ConfirmedService)),
        st.sampled_from(list(ServiceErrorKind)),
        u8,
    ),
    GeneralBlockTransfer: st.builds(
        GeneralBlockTransfer,
        st.booleans(),
        st.booleans(),
        st.integers(0, 63),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.binary(max_size=300),
    ),
    InitiateRequest: st.builds(
        InitiateRequest,
        conformances,
        st.integers(0, 0xFFFF),
        u8,
        st.none()
        | st.binary(min_size=16, max_size=32).map(lambda raw: Secret(raw, "dedicated key")),
        st.booleans(),
        qos,
    ),
    InitiateResponse: st.builds(
        InitiateResponse, conformances, st.integers(0, 0xFFFF), u8, st.integers(0, 0xFFFF), qos
    ),
}

any_apdu = st.one_of(*APDUS.values())
