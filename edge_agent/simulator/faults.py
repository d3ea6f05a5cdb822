"""Fault injection: the simulated meter misbehaves on purpose, at its I/O boundary.

``dlms-edge simulate --fault KIND[:RATE]`` (repeatable) names rows of :data:`FAULTS`. Each
row is one way real meters and lines fail, applied at one of three stages of the
simulator's I/O (:mod:`edge_agent.simulator.server`), never inside the sans-IO server
session or HDLC connection, which stay correct:

* ``request``: before the association sees a request APDU (``refuse``);
* ``answer``: between the association's answer APDU and its framing (``stale``,
  ``trailing``, ``counter``);
* ``wire``: on the bytes of one answer -- all frames the meter sends in reply to one
  received chunk (HDLC) or one wrapper frame -- just before they are written (``drop``,
  ``delay``, ``fcs``, ``garbage``, ``close``).

APDUs of the answer stage still go through the station's HDLC link layer, so they stay
link-correct: with the window of 1 that meters offer, a ``stale`` answer takes the poll's
final frame and the right one waits for the client's next poll (RR); over the wrapper both
are sent at once.

Each time a fault could apply (an *opportunity*: any answer for the wire stage, an AARQ
for ``refuse``, a read of the frame counter for ``counter``, ...) it fires with probability
RATE (default 1: every time). Every kind draws from its own random generator seeded with
``--seed`` and its name, so a run is reproducible and adding one fault does not change when
another fires.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import AARE, AARQ, AcseServiceUser, AssociationResult
from edge_agent.dlms.encoding.axdr import DoubleLongUnsigned
from edge_agent.dlms.errors import ConfigError, DlmsError

log = logging.getLogger(__name__)

#: 0.0.43.1.0.255 attribute 2: the frame counter a client reads to know where to continue.
FRAME_COUNTER = (1, bytes((0, 0, 43, 1, 0, 255)), 2)
COUNTER_ERROR = 1000  # how far off the ``counter`` fault reports the frame counter
DEFAULT_DELAY = 4.0  # seconds: longer than the client's default HDLC time-out (3 s)


class Stage(Enum):
    REQUEST = "request"
    ANSWER = "answer"
    WIRE = "wire"


@dataclass(slots=True)
class Emission:
    """The bytes of one answer as they will be written: ``chunks`` in order, after
    ``delay`` seconds; ``close``: the meter drops the connection after the last chunk."""

    chunks: list[bytes]
    hdlc: bool
    delay: float = 0.0
    close: bool = False


@dataclass(slots=True)
class AnswerContext:
    """What the answer stage sees: the request, the association's previous answer."""

    request: bytes
    previous: bytes | None


@dataclass(frozen=True, slots=True)
class FaultKind:
    """One row of the table: ``apply`` returns None when the opportunity does not fit
    (e.g. ``fcs`` on a wrapper frame), which does not count as fired."""

    name: str
    stage: Stage
    help: str
    apply: Callable[..., object]


# --- request stage: (request APDU, rng) -> the answer that replaces the association's -----


def _refuse(request: bytes, rng: random.Random) -> bytes | None:
    if not request or request[0] != AARQ.TAG:
        return None
    return AARE(result=AssociationResult.REJECTED_PERMANENT,
                result_source_diagnostic=AcseServiceUser.NO_REASON_GIVEN).encode()


# --- answer stage: (answer APDUs so far, context, rng) -> the APDUs to send ---------------


def _stale(answers: list[bytes], context: AnswerContext, rng: random.Random) -> list[bytes] | None:
    if context.previous is None:
        return None  # nothing answered yet on this association
    return [context.previous, *answers]


def _trailing(answers: list[bytes], context: AnswerContext, rng: random.Random) -> list[bytes] | None:
    if not answers:
        return None
    extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return [*answers[:-1], answers[-1] + extra]


def _counter(answers: list[bytes], context: AnswerContext, rng: random.Random) -> list[bytes] | None:
    try:
        request = x.decode_apdu(context.request)
        answer = x.decode_apdu(answers[-1]) if answers else None
    except DlmsError:
        return None  # ciphered, or not xDLMS: the frame counter is read in clear
    if (isinstance(request, x.GetRequestNormal) and isinstance(answer, x.GetResponseNormal)
            and _is_frame_counter(request.descriptor) and isinstance(answer.result, int)):
        wrong = _wrong_counter(int(answer.result))
        return [*answers[:-1], x.GetResponseNormal(answer.invoke_id_and_priority, wrong).encode()]
    if isinstance(request, x.GetRequestWithList) and isinstance(answer, x.GetResponseWithList):
        results = list(answer.results)
        hits = [i for i, item in enumerate(request.attribute_descriptor_list)
                if _is_frame_counter(item.descriptor) and i < len(results)
                and isinstance(results[i], int)]
        if hits:
            for i in hits:
                results[i] = _wrong_counter(int(results[i]))
            rewritten = x.GetResponseWithList(answer.invoke_id_and_priority, tuple(results))
            return [*answers[:-1], rewritten.encode()]
    return None


def _is_frame_counter(descriptor: x.CosemAttributeDescriptor) -> bool:
    return (descriptor.class_id, bytes(descriptor.instance_id), descriptor.attribute_id) == FRAME_COUNTER


def _wrong_counter(real: int) -> DoubleLongUnsigned:
    return DoubleLongUnsigned(real + COUNTER_ERROR if real < COUNTER_ERROR else real - COUNTER_ERROR)


# --- wire stage: (emission, rng, settings) -> the emission to write ------------------------


def _drop(emission: Emission, rng: random.Random, settings: FaultSettings) -> Emission | None:
    if not emission.chunks:
        return None
    return replace(emission, chunks=[])


def _delay(emission: Emission, rng: random.Random, settings: FaultSettings) -> Emission | None:
    if not emission.chunks:
        return None
    return replace(emission, delay=emission.delay + settings.delay)


def _fcs(emission: Emission, rng: random.Random, settings: FaultSettings) -> Emission | None:
    if not emission.hdlc or not emission.chunks:
        return None  # the wrapper has no checksum
    last = bytearray(emission.chunks[-1])
    last[-3] ^= 0xFF  # FCS high byte (frame: ... FCS-low FCS-high 7E)
    return replace(emission, chunks=[*emission.chunks[:-1], bytes(last)])


def _garbage(emission: Emission, rng: random.Random, settings: FaultSettings) -> Emission | None:
    if not emission.chunks:
        return None
    # Line noise: no flag, so that it cannot be taken for the start of a frame.
    noise = bytes(rng.choice([b for b in range(256) if b != 0x7E]) for _ in range(rng.randint(1, 16)))
    return replace(emission, chunks=[noise, *emission.chunks])


def _close(emission: Emission, rng: random.Random, settings: FaultSettings) -> Emission | None:
    if not emission.chunks:
        return None
    first = emission.chunks[0]
    return replace(emission, chunks=[first[: max(1, len(first) // 2)]], close=True)


#: The fault kinds, in the order they apply within a stage.
FAULTS: dict[str, FaultKind] = {kind.name: kind for kind in (
    FaultKind("drop", Stage.WIRE, "drop an answer: the meter stays silent", _drop),
    FaultKind("delay", Stage.WIRE, "send an answer late (--fault-delay seconds, default "
              f"{DEFAULT_DELAY:g})", _delay),
    FaultKind("fcs", Stage.WIRE, "corrupt the FCS of an answer's last HDLC frame", _fcs),
    FaultKind("stale", Stage.ANSWER, "send the previous answer (an earlier invoke-id) first, "
              "then the right one", _stale),
    FaultKind("garbage", Stage.WIRE, "put 1-16 bytes of line noise before an answer's frames",
              _garbage),
    FaultKind("close", Stage.WIRE, "send half of an answer's first frame, then close the "
              "connection (serial: forget the link, as after a power cut)", _close),
    FaultKind("refuse", Stage.REQUEST, "refuse an association: AARE rejected-permanent",
              _refuse),
    FaultKind("counter", Stage.ANSWER, f"report a wrong frame counter (0.0.43.1.0.255, "
              f"off by {COUNTER_ERROR})", _counter),
    FaultKind("trailing", Stage.ANSWER, "append 1-4 bytes after an answer APDU", _trailing),
)}


def describe_faults() -> str:
    """One line per kind, for ``--help``."""
    width = max(map(len, FAULTS))
    return "\n".join(f"  {name.ljust(width)}  {kind.help}" for name, kind in FAULTS.items())


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    rate: float = 1.0


def parse_fault(text: str) -> Fault:
    """``KIND`` or ``KIND:RATE`` (RATE 0..1, the chance per opportunity)."""
    name, _, rate_text = text.partition(":")
    kind = FAULTS.get(name.strip().lower())
    if kind is None:
        raise ConfigError(f"fault {name!r}: expected one of {', '.join(FAULTS)} (KIND[:RATE])")
    rate = 1.0
    if rate_text:
        try:
            rate = float(rate_text)
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault {text!r}: RATE must be a number from 0 to 1")
    return Fault(kind, rate)


@dataclass(frozen=True, slots=True)
class FaultSettings:
    delay: float = DEFAULT_DELAY


@dataclass(slots=True)
class FaultInjector:
    """The faults of one simulator run; shared by every connection (thread-safe enough:
    each draw is one call on the kind's own generator)."""

    faults: tuple[Fault, ...] = ()
    seed: int = 1
    settings: FaultSettings = field(default_factory=FaultSettings)
    fired: dict[str, int] = field(default_factory=dict)
    _rngs: dict[str, random.Random] = field(default_factory=dict)

    @classmethod
    def of(cls, specs: Iterable[str], seed: int = 1, delay: float = DEFAULT_DELAY) -> FaultInjector:
        if delay < 0:
            raise ConfigError("--fault-delay must not be negative")
        return cls(tuple(parse_fault(spec) for spec in specs), seed, FaultSettings(delay))

    def __bool__(self) -> bool:
        return bool(self.faults)

    def _stage(self, stage: Stage) -> list[tuple[Fault, random.Random]]:
        chosen = []
        for fault in self.faults:
            if fault.kind.stage is stage:
                rng = self._rngs.get(fault.kind.name)
                if rng is None:
                    rng = self._rngs[fault.kind.name] = random.Random(f"{self.seed}:{fault.kind.name}")
                chosen.append((fault, rng))
        return chosen

    def _fired(self, fault: Fault) -> None:
        self.fired[fault.kind.name] = self.fired.get(fault.kind.name, 0) + 1
        log.info("fault %s injected", fault.kind.name)

    def _draw(self, fault: Fault, rng: random.Random) -> bool:
        return fault.rate >= 1.0 or rng.random() < fault.rate

    def before_request(self, request: bytes) -> bytes | None:
        """An answer that replaces the association's (the request is not served), or None."""
        for fault, rng in self._stage(Stage.REQUEST):
            answer = fault.kind.apply(request, rng)
            if isinstance(answer, bytes) and self._draw(fault, rng):
                self._fired(fault)
                return answer
        return None

    def after_answer(self, request: bytes, answer: bytes, previous: bytes | None) -> list[bytes]:
        """The APDUs to send for ``answer`` (usually just it)."""
        answers = [answer]
        context = AnswerContext(request, previous)
        for fault, rng in self._stage(Stage.ANSWER):
            changed = fault.kind.apply(answers, context, rng)
            if isinstance(changed, list) and self._draw(fault, rng):
                self._fired(fault)
                answers = changed
        return answers

    def on_wire(self, chunks: list[bytes], hdlc: bool) -> Emission:
        emission = Emission(list(chunks), hdlc)
        for fault, rng in self._stage(Stage.WIRE):
            changed = fault.kind.apply(emission, rng, self.settings)
            if isinstance(changed, Emission) and self._draw(fault, rng):
                self._fired(fault)
                emission = changed
        return emission


NO_FAULTS = FaultInjector()

__all__ = ["DEFAULT_DELAY", "FAULTS", "NO_FAULTS", "Emission", "Fault", "FaultInjector",
           "FaultKind", "Stage", "describe_faults", "parse_fault"]
