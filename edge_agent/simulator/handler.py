"""The simulated meter's xDLMS server: one plain request APDU in, one response APDU out.

The association layer calls :meth:`RequestHandler.handle` with the deciphered request and
the association's :class:`~.objects.AssociationContext`; it enciphers the answer if the
association is protected. Whole-request refusals (a service that is not negotiated or
not implemented) are ExceptionResponses (Green Book 9.5, EXCEPTION-Response); a refusal
of one attribute or method is its Data-Access-Result / Action-Result, in the order the
checks of a real meter make them:

1. object not in this association's object list        -> object-undefined
2. object there, but of another class than requested   -> object-class-inconsistent
3. attribute/method the object does not implement      -> object-unavailable
4. the association's access rights do not allow it     -> read-write-denied
5. selective access on an attribute that has none      -> other-reason
6. the value or parameters are refused                 -> what the object says
   (type-unmatched, scope-of-access-violated, other-reason)

Responses longer than the client's max-receive-pdu-size go as GET datablocks (Green Book,
block transfer with GET) when that service was negotiated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge_agent.dlms.apdu import (
    OMITTED,
    ActionRequestNormal,
    ActionRequestWithList,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithOptionalData,
    ActionResult,
    Apdu,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    DataAccessResult,
    DataBlockG,
    ExceptionResponse,
    ExceptionServiceError,
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
    split_get_response,
)
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.encoding.axdr import OctetString
from edge_agent.dlms.errors import EncodeError
from edge_agent.simulator.meter_models import CURRENT_ASSOCIATION, SimulatedMeter
from edge_agent.simulator.objects import (
    AssociationContext,
    MethodRegistry,
    Refused,
    Request,
    ServiceState,
)

__all__ = ["AssociationContext", "RequestHandler"]

# Class 15 method 1, the only service allowed between HLS pass 2 and pass 4.
_REPLY_TO_HLS = (15, CURRENT_ASSOCIATION, 1)


def _exception(state: StateError, service: ExceptionServiceError) -> ExceptionResponse:
    return ExceptionResponse(state, service)


NOT_NEGOTIATED = _exception(StateError.SERVICE_NOT_ALLOWED,
                            ExceptionServiceError.SERVICE_NOT_SUPPORTED)
UNKNOWN_SERVICE = _exception(StateError.SERVICE_UNKNOWN, ExceptionServiceError.SERVICE_NOT_SUPPORTED)
TOO_LONG = _exception(StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.PDU_TOO_LONG)


class RequestHandler:
    """xDLMS request -> response for one simulated meter (any number of associations)."""

    def __init__(self, meter: SimulatedMeter) -> None:
        self.meter = meter
        self.methods: MethodRegistry = meter.methods
        # Request type -> (conformance bits it needs, implementation). Tables over branches.
        self._services: dict[type, tuple[Conformance, Callable[..., Apdu]]] = {
            GetRequestNormal: (Conformance.GET, self._get_normal),
            GetRequestNext: (Conformance.GET | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ,
                             self._get_next),
            GetRequestWithList: (Conformance.GET | Conformance.MULTIPLE_REFERENCES,
                                 self._get_with_list),
            SetRequestNormal: (Conformance.SET, self._set_normal),
            SetRequestWithList: (Conformance.SET | Conformance.MULTIPLE_REFERENCES,
                                 self._set_with_list),
            ActionRequestNormal: (Conformance.ACTION, self._action_normal),
            ActionRequestWithList: (Conformance.ACTION | Conformance.MULTIPLE_REFERENCES,
                                    self._action_with_list),
        }

    def handle(self, request: Apdu, context: AssociationContext) -> Apdu:
        """The response to ``request`` (a decoded, plain xDLMS APDU)."""
        service = self._services.get(type(request))
        if service is None:
            # Block transfer of SET/ACTION, general-block-transfer, responses or
            # notifications sent to a server: not services this meter offers.
            return UNKNOWN_SERVICE
        needed, implementation = service
        if needed & ~context.conformance:
            return NOT_NEGOTIATED
        if type(request) is not GetRequestNext:
            context.state.pending_get = None  # a new request ends any long GET (Green Book, GET)
        meter = self.meter.meter
        # One instant per request: every attribute of a with-list GET is read at it.
        return implementation(request, context,
                              Request(meter.now(), meter.world_now(), context))

    # --- GET ------------------------------------------------------------------------------

    def _read(self, descriptor: CosemAttributeDescriptor, selection: SelectiveAccess | None,
              request: Request) -> Any:
        """The attribute's value, or the DataAccessResult that refuses it."""
        context = request.association
        if selection is not None and not Conformance.SELECTIVE_ACCESS & context.conformance:
            return DataAccessResult.OTHER_REASON
        found = self._find(descriptor.class_id, descriptor.instance_id, context)
        if isinstance(found, DataAccessResult):
            return found
        obj, granted = found
        index = descriptor.attribute_id
        if index == 1:
            attribute = None
        elif (attribute := obj.attributes.get(index)) is None:
            return DataAccessResult.OBJECT_UNAVAILABLE
        if not granted.attribute(index).readable or (attribute and attribute.get is None):
            return DataAccessResult.READ_WRITE_DENIED
        if attribute is None:
            if selection is not None:
                return DataAccessResult.OTHER_REASON
            return OctetString(obj.logical_name)
        try:
            if selection is None:
                return attribute.get(request)  # type: ignore[misc]
            if attribute.select is None or selection.access_selector not in attribute.selectors:
                return DataAccessResult.OTHER_REASON
            return attribute.select(request, selection.access_selector,
                                    selection.access_parameters)
        except Refused as refusal:
            return DataAccessResult(int(refusal.result))

    def _find(self, class_id: int, logical_name: bytes, context: AssociationContext):
        if not context.authenticated:  # HLS not finished: nothing but pass 3 (Green Book, HLS)
            return DataAccessResult.READ_WRITE_DENIED
        found = context.view.find(logical_name)
        if found is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if found[0].class_id != class_id:
            return DataAccessResult.OBJECT_CLASS_INCONSISTENT
        return found

    def _get_normal(self, apdu: GetRequestNormal, context: AssociationContext,
                    request: Request) -> Apdu:
        result = self._read(apdu.descriptor, apdu.access_selection, request)
        response = GetResponseNormal(apdu.invoke_id_and_priority, result)
        if isinstance(result, DataAccessResult):
            return response
        encoded = response.encode()
        if len(encoded) <= context.max_pdu_size:
            return response
        # Get-Data-Result CHOICE data [0]: the raw data of the blocks is the Data alone.
        return self._start_blocks(apdu.invoke_id_and_priority, encoded[4:], context)

    def _get_with_list(self, apdu: GetRequestWithList, context: AssociationContext,
                       request: Request) -> Apdu:
        results = tuple(self._read(item.descriptor, item.access_selection, request)
                        for item in apdu.attribute_descriptor_list)
        response = GetResponseWithList(apdu.invoke_id_and_priority, results)
        encoded = response.encode()
        if len(encoded) <= context.max_pdu_size:
            return response
        # The raw data is the SEQUENCE OF Get-Data-Result (Green Book, GET with block transfer).
        return self._start_blocks(apdu.invoke_id_and_priority, encoded[3:], context)

    def _start_blocks(self, invoke: int, raw: bytes, context: AssociationContext) -> Apdu:
        if not Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ & context.conformance:
            return TOO_LONG
        try:
            blocks = split_get_response(invoke, raw, context.max_pdu_size)
        except EncodeError:
            return TOO_LONG
        state = context.state
        state.pending_get = tuple(blocks)
        state.pending_invoke_id = invoke
        state.last_block = 1
        return blocks[0]

    def _get_next(self, apdu: GetRequestNext, context: AssociationContext,
                  request: Request) -> Apdu:
        state: ServiceState = context.state
        blocks = state.pending_get
        invoke = apdu.invoke_id_and_priority
        if blocks is None:
            return GetResponseWithDatablock(invoke, DataBlockG(
                True, apdu.block_number, DataAccessResult.NO_LONG_GET_IN_PROGRESS))
        if apdu.block_number != state.last_block or not apdu.answers(state.pending_invoke_id):
            # The client must acknowledge exactly the block last sent; anything else aborts
            # the long GET (Green Book, GET with block transfer).
            state.pending_get = None
            return GetResponseWithDatablock(invoke, DataBlockG(
                True, apdu.block_number, DataAccessResult.LONG_GET_ABORTED))
        block = blocks[state.last_block]
        state.last_block += 1
        if block.result.last_block:
            state.pending_get = None
        return block

    # --- SET ------------------------------------------------------------------------------

    def _write(self, descriptor: CosemAttributeDescriptor, selection: SelectiveAccess | None,
               value: Any, request: Request) -> DataAccessResult:
        found = self._find(descriptor.class_id, descriptor.instance_id, request.association)
        if isinstance(found, DataAccessResult):
            return found
        obj, granted = found
        index = descriptor.attribute_id
        attribute = obj.attributes.get(index)
        if index != 1 and attribute is None:
            return DataAccessResult.OBJECT_UNAVAILABLE
        if not granted.attribute(index).writable or attribute is None or attribute.set is None:
            return DataAccessResult.READ_WRITE_DENIED
        if selection is not None:
            return DataAccessResult.OTHER_REASON
        try:
            attribute.set(request, value)
        except Refused as refusal:
            return DataAccessResult(int(refusal.result))
        return DataAccessResult.SUCCESS

    def _set_normal(self, apdu: SetRequestNormal, context: AssociationContext,
                    request: Request) -> Apdu:
        return SetResponseNormal(apdu.invoke_id_and_priority, self._write(
            apdu.descriptor, apdu.access_selection, apdu.value, request))

    def _set_with_list(self, apdu: SetRequestWithList, context: AssociationContext,
                       request: Request) -> Apdu:
        if len(apdu.value_list) != len(apdu.attribute_descriptor_list):
            return _exception(StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.OTHER_REASON)
        return SetResponseWithList(apdu.invoke_id_and_priority, tuple(
            self._write(item.descriptor, item.access_selection, value, request)
            for item, value in zip(apdu.attribute_descriptor_list, apdu.value_list)))

    # --- ACTION ---------------------------------------------------------------------------

    def _invoke(self, descriptor: CosemMethodDescriptor, parameters: Any,
                request: Request) -> ActionResponseWithOptionalData:
        context = request.association
        key = (descriptor.class_id, bytes(descriptor.instance_id), descriptor.method_id)
        if not context.authenticated and key != _REPLY_TO_HLS:
            return ActionResponseWithOptionalData(ActionResult.READ_WRITE_DENIED)
        found = context.view.find(descriptor.instance_id)
        if found is None:
            return ActionResponseWithOptionalData(ActionResult.OBJECT_UNDEFINED)
        obj, granted = found
        if obj.class_id != descriptor.class_id:
            return ActionResponseWithOptionalData(ActionResult.OBJECT_CLASS_INCONSISTENT)
        method = self.methods.find(obj, descriptor.method_id)
        if method is None:
            return ActionResponseWithOptionalData(ActionResult.OBJECT_UNAVAILABLE)
        if not granted.method(descriptor.method_id):
            return ActionResponseWithOptionalData(ActionResult.READ_WRITE_DENIED)
        try:
            returned = method(request, None if parameters is OMITTED else parameters)
        except Refused as refusal:
            return ActionResponseWithOptionalData(ActionResult(int(refusal.result)))
        return ActionResponseWithOptionalData(
            ActionResult.SUCCESS, OMITTED if returned is None else returned)

    def _action_normal(self, apdu: ActionRequestNormal, context: AssociationContext,
                       request: Request) -> Apdu:
        response = ActionResponseNormal(apdu.invoke_id_and_priority, self._invoke(
            apdu.descriptor, apdu.method_invocation_parameters, request))
        return response if len(response.encode()) <= context.max_pdu_size else TOO_LONG

    def _action_with_list(self, apdu: ActionRequestWithList, context: AssociationContext,
                          request: Request) -> Apdu:
        descriptors = apdu.cosem_method_descriptor_list
        if len(descriptors) != len(apdu.method_invocation_parameters):
            return _exception(StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.OTHER_REASON)
        response = ActionResponseWithList(apdu.invoke_id_and_priority, tuple(
            self._invoke(d, p, request)
            for d, p in zip(descriptors, apdu.method_invocation_parameters)))
        return response if len(response.encode()) <= context.max_pdu_size else TOO_LONG
