"""Server-side COSEM objects: attribute and method tables, access rights, association facts.

An object is data: its class, version, logical name, and per attribute a getter (and a
setter, and the selective-access selectors it understands); per method an implementation.
Which client may do what is a separate table (:class:`Rights`) per client role, because
the same object is read-only for one association and writable for another (Blue Book,
Association LN ``object_list`` / ``access_rights``).

Methods that other layers implement (HLS ``reply_to_HLS_authentication``, Security setup,
Push setup ``push``) are registered in a :class:`MethodRegistry` keyed by class and
method; the handler looks there before the object's own methods, and the object list
advertises a method as accessible only when an implementation exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.results import ActionResult, DataAccessResult
from edge_agent.dlms.errors import ServiceError


class AttributeAccess(IntEnum):
    """attribute_access_mode (Blue Book, Association LN class 15 version 1)."""

    NO_ACCESS = 0
    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_AND_WRITE = 3

    @property
    def readable(self) -> bool:
        return self in (AttributeAccess.READ_ONLY, AttributeAccess.READ_AND_WRITE)

    @property
    def writable(self) -> bool:
        return self in (AttributeAccess.WRITE_ONLY, AttributeAccess.READ_AND_WRITE)


class MethodAccess(IntEnum):
    """method_access_mode (Blue Book, Association LN class 15 version 1)."""

    NO_ACCESS = 0
    ACCESS = 1


class Refused(ServiceError):
    """The simulated meter refuses one attribute or method access with ``result``.

    Raised by getters, setters and methods; the handler turns it into the
    Data-Access-Result / Action-Result of the response, never into an exception response.
    """

    def __init__(self, result: DataAccessResult | ActionResult, why: str) -> None:
        super().__init__(f"{result.standard_name}: {why}", result.standard_name)
        self.result = result


@dataclass(frozen=True, slots=True)
class Request:
    """What a getter, setter or method sees: the instant and the association."""

    meter_now: datetime  # the meter's clock (UTC) when the request arrived
    world_now: datetime  # the world's time: physical quantities follow it
    association: AssociationContext


Getter = Callable[[Request], Any]
Setter = Callable[[Request, Any], None]
Selector = Callable[[Request, int, Any], Any]
Method = Callable[[Request, Any], Any]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute: how to read it, write it and read it selectively (all optional)."""

    get: Getter | None = None
    set: Setter | None = None
    select: Selector | None = None
    selectors: tuple[int, ...] = ()  # access selectors ``select`` understands


@dataclass(frozen=True, slots=True)
class CosemObject:
    """A COSEM object instance. Attribute 1 (logical_name) is served by the handler."""

    class_id: int
    version: int
    logical_name: bytes
    attributes: Mapping[int, Attribute]
    methods: Mapping[int, Method] = field(default_factory=dict)

    @property
    def obis(self) -> str:
        return ".".join(str(b) for b in self.logical_name)


def rights(read: tuple[int, ...] = (), write: tuple[int, ...] = (),
           methods: tuple[int, ...] = ()) -> Rights:
    """Rights from lists of attribute indexes (1 is always readable) and method indexes."""
    modes: dict[int, AttributeAccess] = {1: AttributeAccess.READ_ONLY}
    for index in read:
        modes[index] = AttributeAccess.READ_ONLY
    for index in write:
        modes[index] = (AttributeAccess.READ_AND_WRITE if index in read
                        else AttributeAccess.WRITE_ONLY)
    return Rights(modes, {m: MethodAccess.ACCESS for m in methods})


@dataclass(frozen=True, slots=True)
class Rights:
    """One client role's access to one object."""

    attributes: Mapping[int, AttributeAccess]
    methods: Mapping[int, MethodAccess] = field(default_factory=dict)

    def attribute(self, index: int) -> AttributeAccess:
        return self.attributes.get(index, AttributeAccess.NO_ACCESS)

    def method(self, index: int) -> MethodAccess:
        return self.methods.get(index, MethodAccess.NO_ACCESS)


@dataclass(frozen=True, slots=True)
class ObjectView:
    """The objects one association sees, in object-list order, with their rights."""

    entries: tuple[tuple[CosemObject, Rights], ...]
    _index: dict[bytes, tuple[CosemObject, Rights]] = field(init=False, repr=False,
                                                            compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {obj.logical_name: (obj, r)
                                            for obj, r in self.entries})

    def find(self, logical_name: bytes) -> tuple[CosemObject, Rights] | None:
        return self._index.get(bytes(logical_name))

    def __iter__(self) -> Iterator[tuple[CosemObject, Rights]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


class MethodRegistry:
    """Method implementations supplied by other layers, keyed by (class, method).

    A key with a logical name wins over the class-wide one, which wins over the object's
    own method. Example (the association layer)::

        registry.register(15, 1, reply_to_hls)             # every Association LN object
        registry.register(64, 6, import_certificate, b"\\0\\0\\x2b\\0\\0\\xff")
    """

    def __init__(self) -> None:
        self._methods: dict[tuple[int, bytes | None, int], Method] = {}

    def register(self, class_id: int, method_id: int, method: Method,
                 logical_name: bytes | None = None) -> None:
        self._methods[class_id, None if logical_name is None else bytes(logical_name),
                      method_id] = method

    def unregister(self, class_id: int, method_id: int,
                   logical_name: bytes | None = None) -> None:
        self._methods.pop((class_id, logical_name, method_id), None)

    def find(self, obj: CosemObject, method_id: int) -> Method | None:
        return (self._methods.get((obj.class_id, obj.logical_name, method_id))
                or self._methods.get((obj.class_id, None, method_id))
                or obj.methods.get(method_id))


@dataclass(slots=True)
class ServiceState:
    """The association's service state that outlives one request: a long GET in progress
    (Green Book, GET with block transfer: the server keeps the blocks and the number of the last one sent)."""

    pending_get: tuple[Any, ...] | None = None  # the GET-Response-With-Datablock APDUs
    pending_invoke_id: int = 0
    last_block: int = 0  # number of the block sent last


@dataclass(frozen=True, slots=True)
class AssociationContext:
    """The facts of one established association that the request handler needs.

    Built by the association layer from the AARQ/AARE it negotiated. ``max_pdu_size`` is
    the client's max-receive-pdu-size: no response APDU may be longer (Green Book,
    GET service), longer data goes in blocks. ``authenticated`` is False between HLS pass 2
    and pass 4, when only ``reply_to_HLS_authentication`` is allowed (Green Book, HLS authentication).
    ``session`` is free for the association layer's own state (HLS challenge...).
    """

    client_sap: int
    view: ObjectView
    conformance: Conformance
    max_pdu_size: int
    server_sap: int = 1
    server_max_receive_pdu_size: int = 1024
    mechanism_id: int = 0  # authentication mechanism (0 none, 1 low, 5 hls-gmac, 7 ecdsa)
    context_id: int = 1  # application context (1 LN, 3 LN with ciphering)
    dlms_version: int = 6
    authenticated: bool = True
    session: object | None = None
    state: ServiceState = field(default_factory=ServiceState, compare=False)
