"""Sans-IO HDLC connection (IEC 62056-46 clause 6.4.4, normal response mode), both roles.

In the style of h11 the connection owns no socket and no clock::

    conn = HdlcConnection(Role.CLIENT, local=HdlcAddress.client(16),
                          remote=HdlcAddress.server(1, 16))
    transport.write(conn.send_connect())
    while True:
        data = transport.read(timeout)
        if not data:
            for frame in conn.on_timeout():     # retransmit or poll; NoResponseError at last
                transport.write(frame)
            continue
        conn.receive_data(data)
        for frame in conn.data_to_send():       # RR acks, next segments, UA/DM/FRMR replies
            transport.write(frame)
        while (event := conn.next_event()) is not None:
            ...

Design: the caller's actions return the frames they produce (``send_connect``,
``send_data``, ``send_disconnect``, ``on_timeout``). Frames the *protocol* owes the peer in
reaction to what it received — the RR that polls the next segment of a segmented message,
the next window of our own segments once the peer acknowledged the last one,
go-back-N retransmissions the peer asked for, and in the server role the UA/DM/FRMR
answers — queue up inside and are drained with :meth:`data_to_send`. Events come from
:meth:`next_event`. Every frame is one complete ``bytes`` (flags included) so that a
caller can log, drop or delay frames individually.

Rules implemented (clause numbers of IEC 62056-46:2002):
* the client (primary) sets P on the last frame of each burst; the server (secondary)
  answers with F on its last frame and never speaks unpolled (6.4.4.3): an APDU that
  arrived with P=0 is answered at the next poll, a frame reject found in a P=0 frame is
  reported (FRMR) at the next poll, and every poll gets exactly one final answer -- the
  caller's data (``send_data``), or RR when it has none (:meth:`answer_poll`);
* a station is silent and unchanged for frames addressed to another station, damaged
  or undefined ones included: an RS-485 bus carries the traffic of every meter on it;
* N(S)/N(R) modulo 8, up to ``window`` unacknowledged I-frames (6.4.4.4.3.2); a frame
  whose N(S) is not V(R) is discarded and, when it carries P/F, answered with RR(V(R)) —
  so a duplicate after a lost acknowledgement is re-acknowledged, never delivered twice;
* a received N(R) that acknowledges frames never sent, an undefined control field, an
  information field where none is allowed or longer than negotiated make the server
  answer FRMR (6.4.4.10) and stay in frame-reject condition until SNRM or DISC;
* recovery is go-back-N: on time-out, or when a polled peer's N(R) shows frames missing,
  all unacknowledged I-frames are sent again with the current N(R);
* the client's SNRM carries only the parameters that differ from the defaults (an absent
  one means its default, 6.4.4.4.3.2) and each station then uses the smaller of its own
  and the peer's value, so it never sends more than the peer granted. A server that
  answers the proposal with DM or FRMR (it cannot serve those parameters) is asked once
  more with an SNRM without parameters: the defaults, which every station supports.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from edge_agent.dlms.errors import FrameError, NoResponseError, ProtocolError
from edge_agent.dlms.link.hdlc.frame import (
    LLC_COMMAND,
    LLC_RESPONSE,
    FrameKind,
    FrameSplitter,
    HdlcAddress,
    HdlcFrame,
    HdlcParameters,
    UnknownControlError,
    strip_llc,
)

__all__ = [
    "Connected",
    "DataReceived",
    "Disconnected",
    "Event",
    "HdlcConnection",
    "Rejected",
    "Role",
    "State",
]


class Role(enum.Enum):
    CLIENT = "client"  # primary station: polls
    SERVER = "server"  # secondary station: answers


class State(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"  # client: SNRM sent, waiting for UA
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"  # client: DISC sent, waiting for UA/DM
    FRAME_REJECT = "frame-reject"  # server: FRMR sent, waiting for SNRM or DISC


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """The link is up with these negotiated parameters (this station's view)."""

    parameters: HdlcParameters


@dataclass(frozen=True, slots=True)
class DataReceived:
    """A complete APDU: LLC header stripped, segments reassembled. ``unnumbered``: via UI."""

    apdu: bytes
    unnumbered: bool = False


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """FRMR exchanged: ``by_peer`` True if the peer rejected our frame, else we rejected its.

    ``control`` is the rejected control byte, ``reason`` the W/X/Y/Z bits in words.
    """

    control: int
    reason: str
    by_peer: bool


Event = Connected | DataReceived | Disconnected | Rejected

# FRMR information field (ISO/IEC 13239 5.5.3.4.2, used by IEC 62056-46 6.4.3.9):
# rejected control, then V(S) << 1 | C/R << 4 | V(R) << 5, then the W/X/Y/Z bits.
_FRMR_W = 0x01  # control field undefined
_FRMR_X = 0x02  # information field not allowed with this frame
_FRMR_Y = 0x04  # information field longer than the negotiated maximum
_FRMR_Z = 0x08  # N(R) acknowledges a frame that was not sent
_FRMR_REASONS = {
    _FRMR_W: "undefined control field",
    _FRMR_X: "information field not permitted",
    _FRMR_Y: "information field too long",
    _FRMR_Z: "invalid N(R)",
}
_INFO_PERMITTED = frozenset(
    {FrameKind.I, FrameKind.UI, FrameKind.SNRM, FrameKind.UA, FrameKind.FRMR}
)
# DM and FRMR may carry diagnostic information in practice; accept it from servers.
_INFO_TOLERATED_FROM_SERVER = frozenset({FrameKind.DM})


DEFAULT_PARAMETERS = HdlcParameters()  # 128-byte information fields, window 1


def _frmr_reason(bits: int) -> str:
    words = [text for bit, text in _FRMR_REASONS.items() if bits & bit]
    return ", ".join(words) or "no reason given"


class HdlcConnection:
    """One HDLC link between a client and a server; see the module docstring."""

    # Link state, (re)set by _reset_link on every SNRM/UA and disconnection.
    _vs: int  # V(S): N(S) of our next I-frame
    _vr: int  # V(R): N(S) we expect next
    _unacked: list[tuple[int, bytes, bool]]  # (N(S), information, segmented) sent, not acked
    _pending: deque[tuple[bytes, bool]]  # segments the window does not allow yet
    _reassembly: bytearray
    _reassembly_started: bool
    _awaiting_final: bool
    _peer_busy: bool
    _tries: int
    _frmr_condition: tuple[int, int]
    _offer: HdlcParameters  # client: what the SNRM in flight proposes

    def __init__(
        self,
        role: Role,
        local: HdlcAddress,
        remote: HdlcAddress | None = None,
        parameters: HdlcParameters = DEFAULT_PARAMETERS,
        max_retries: int = 3,
    ) -> None:
        if role is Role.CLIENT and remote is None:
            raise ProtocolError("a client HDLC connection needs the server address (remote)")
        self.role = role
        self.local = local
        self.remote = remote
        self.proposed = parameters  # own capabilities, offered in SNRM / capping the UA
        self._offer = parameters
        self.parameters = HdlcParameters()  # negotiated; defaults until connected
        self.max_retries = max_retries
        self.state = State.DISCONNECTED
        self._splitter = FrameSplitter()
        self._events: deque[Event] = deque()
        self._outgoing: list[bytes] = []
        self._llc = LLC_COMMAND if role is Role.CLIENT else LLC_RESPONSE
        self._reply_address = local  # server: the address form the client last used
        # Server: a frame with P=1 was received and not yet answered with F=1 (6.4.4.3).
        self._polled = False
        self._reset_link()

    # --- caller actions ----------------------------------------------------------------

    def send_connect(self) -> bytes:
        """Client: the SNRM that proposes our parameters (6.4.4.4.3.2)."""
        self._require_role(Role.CLIENT, "send_connect")
        self.state = State.CONNECTING
        self._tries = 0
        self._offer = self.proposed
        return self._snrm()

    def send_disconnect(self) -> bytes:
        """Client: the DISC that closes the link; expect Disconnected after UA or DM."""
        self._require_role(Role.CLIENT, "send_disconnect")
        self.state = State.DISCONNECTING
        self._tries = 0
        return self._frame(FrameKind.DISC, poll=True)

    def send_data(self, apdu: bytes) -> list[bytes]:
        """Queue ``apdu`` (LLC header added) and return the I-frames the window allows now.

        The rest follows from :meth:`data_to_send` as the peer acknowledges. A server
        returns frames only while a poll is open; otherwise they wait for the next poll.
        """
        if self.state is not State.CONNECTED:
            raise ProtocolError(f"cannot send data in HDLC state {self.state.value}: connect first")
        payload = self._llc + apdu
        size = self.parameters.max_info_transmit
        last = len(payload) - 1
        self._pending.extend(
            (payload[start : start + size], start + size <= last)
            for start in range(0, len(payload), size)
        )
        if self.role is Role.SERVER and not self._polled:
            return []  # never unpolled: the next RR or I-frame with P=1 fetches it
        return self._send_window()

    def send_ui(self, apdu: bytes) -> bytes:
        """One UI frame (unacknowledged, e.g. a pushed DataNotification), LLC included."""
        payload = self._llc + apdu
        if len(payload) > self.parameters.max_info_transmit:
            raise ProtocolError(
                f"UI payload of {len(payload)} bytes exceeds the maximum information field"
                f" of {self.parameters.max_info_transmit}; send it in I-frames"
            )
        return self._frame(FrameKind.UI, poll=self.role is Role.SERVER, info=payload)

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; frames for other stations on the bus are ignored."""
        for item in self._splitter.feed(data):
            if isinstance(item, UnknownControlError):
                self._undefined_control(item)
                continue
            if self._addressed_to_us(item):
                self._tries = 0
                self._handle(item)

    def answer_poll(self) -> list[bytes]:
        """Server: the final answer to a poll still open once the caller has handled the
        events (it had no data to send): queued I-frames, else RR. Empty when no poll is open.
        """
        if self.role is not Role.SERVER or not self._polled:
            return []
        if self.state is State.CONNECTED:
            self._respond_to_poll()
        elif self.state is State.FRAME_REJECT:
            self._reply(FrameKind.FRMR, info=self._frmr_info(*self._frmr_condition))
        else:
            self._reply(FrameKind.DM)
        return self.data_to_send()

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> list[bytes]:
        """Frames the protocol owes the peer after the last ``receive_data``."""
        frames, self._outgoing = self._outgoing, []
        return frames

    def poll(self) -> bytes:
        """Client: RR with P=1, asking the server for what it holds back (6.4.4.3: in normal
        response mode a server sends only when polled), e.g. the answer that follows a stale
        one it sent with F=1."""
        self._require_role(Role.CLIENT, "poll")
        if self.state is not State.CONNECTED:
            raise ProtocolError(f"cannot poll in HDLC state {self.state.value}: connect first")
        return self._frame(FrameKind.RR, poll=True, receive=self._vr)

    def on_timeout(self) -> list[bytes]:
        """Client: the peer stayed silent; retransmit or poll. NoResponseError at the end.

        A server never speaks unpolled, so it only drops a partial frame here.
        """
        self._splitter.clear()  # the rest of a half-received frame will not come
        if self.role is Role.SERVER or self.state is State.DISCONNECTED:
            return []
        if self.state is State.CONNECTED and not self._unacked and not self._awaiting_final:
            return []  # idle link: nothing outstanding, silence is fine
        self._tries += 1
        if self._tries > self.max_retries:
            state = self.state
            self._enter_disconnected()
            raise NoResponseError(
                f"no answer from HDLC server address {self.remote} to client {self.local}"
                f" after {self.max_retries} retries ({state.value}): check the server"
                " address (logical/physical), client SAP, baud rate and cable"
            )
        if self.state is State.CONNECTING:
            return [self._snrm()]
        if self.state is State.DISCONNECTING:
            return [self._frame(FrameKind.DISC, poll=True)]
        if self._unacked:
            return self._retransmit()
        return [self._frame(FrameKind.RR, poll=True, receive=self._vr)]

    # --- frame handling ------------------------------------------------------------------

    def _undefined_control(self, error: UnknownControlError) -> None:
        """An intact frame with an undefined control byte: FRMR (DM while disconnected),
        but only from the server it is addressed to, and only when polled (at once or at
        the next poll)."""
        destination, source = error.destination, error.source
        if self.role is not Role.SERVER or destination is None or source is None:
            return  # cannot tell whom it was for: on a shared bus, stay silent
        if (destination.upper, destination.lower) != (self.local.upper, self.local.lower):
            return
        remote = self.remote
        if self.state is State.DISCONNECTED or remote is None:
            self.remote, self._reply_address = source, destination
        elif (source.upper, source.lower) != (remote.upper, remote.lower):
            return  # another client while connected
        self._tries = 0
        self._polled = bool(error.control & 0x10)
        if self.state is State.CONNECTED:
            self._reject(error.control, _FRMR_W)
        elif self.state is State.FRAME_REJECT:
            self._reply(FrameKind.FRMR, info=self._frmr_info(*self._frmr_condition))
        else:
            self._reply(FrameKind.DM)

    def _handle(self, frame: HdlcFrame) -> None:
        if self.role is Role.SERVER:
            self._handle_as_server(frame)
        elif frame.kind is FrameKind.UI:
            self._deliver_ui(frame)
        else:
            self._handle_as_client(frame)

    def _deliver_ui(self, frame: HdlcFrame) -> None:
        if frame.info:
            # Pushes in UI frames normally carry the LLC header; tolerate meters that omit it.
            info = frame.info
            apdu = info[3:] if info[:3] in (LLC_COMMAND, LLC_RESPONSE) else info
            self._events.append(DataReceived(apdu, unnumbered=True))

    def _handle_as_server(self, frame: HdlcFrame) -> None:
        kind = frame.kind
        remote = self.remote
        if self.state is State.DISCONNECTED or kind is FrameKind.SNRM or remote is None:
            # Answer (UA or DM) whoever calls while we are free; the address form the
            # client used is mirrored in the reply.
            self.remote, self._reply_address = frame.source, frame.destination
        elif (frame.source.upper, frame.source.lower) != (remote.upper, remote.lower):
            return  # another client while connected: one link at a time, it gets no answer
        self._polled = frame.poll_final  # answered by our reply, our data, or answer_poll()
        if kind is FrameKind.UI:
            self._deliver_ui(frame)  # a poll in it is answered by answer_poll()
            return
        if kind is FrameKind.SNRM:
            try:
                offered = HdlcParameters.decode(frame.info)
            except FrameError:
                self._reply(FrameKind.FRMR, info=self._frmr_info(frame.control, _FRMR_X))
                return
            self._reset_link()
            self.parameters = self.proposed.negotiate(offered)
            self.state = State.CONNECTED
            self._reply(FrameKind.UA, info=self.parameters.encode())
            self._events.append(Connected(self.parameters))
            return
        if kind is FrameKind.DISC:
            was_connected = self.state in (State.CONNECTED, State.FRAME_REJECT)
            self._reply(FrameKind.UA if was_connected else FrameKind.DM)
            if was_connected:
                self._enter_disconnected()
                self._events.append(Disconnected("client sent DISC"))
            return
        if self.state is State.FRAME_REJECT:
            if frame.poll_final:
                self._reply(FrameKind.FRMR, info=self._frmr_info(*self._frmr_condition))
            return
        if self.state is not State.CONNECTED:
            if frame.poll_final:
                self._reply(FrameKind.DM)
            return
        if frame.info and kind not in _INFO_PERMITTED:
            self._reject(frame.control, _FRMR_W | _FRMR_X)
        elif len(frame.info) > self.parameters.max_info_receive:
            self._reject(frame.control, _FRMR_Y)
        elif kind in (FrameKind.I, FrameKind.RR, FrameKind.RNR):
            if not self._acknowledge(frame.receive_sequence):
                self._reject(frame.control, _FRMR_Z)
            else:
                self._handle_numbered(frame)
        elif frame.poll_final:  # UA, DM or FRMR sent to a server: not a command
            self._reject(frame.control, _FRMR_W)

    def _handle_as_client(self, frame: HdlcFrame) -> None:
        kind = frame.kind
        if frame.poll_final:
            self._awaiting_final = False
        if kind is FrameKind.UA and self.state is State.CONNECTING:
            try:
                offered = HdlcParameters.decode(frame.info)
            except FrameError as error:
                self._enter_disconnected()
                raise ProtocolError(f"server UA carries unusable parameters: {error}") from None
            self._reset_link()
            self.parameters = self._offer.negotiate(offered)
            self.state = State.CONNECTED
            self._events.append(Connected(self.parameters))
        elif (
            kind in (FrameKind.DM, FrameKind.FRMR)
            and self.state is State.CONNECTING
            and self._offer != DEFAULT_PARAMETERS
        ):
            # Refused parameters, maybe not the link: ask again with the defaults (6.4.4.4.3.2).
            self._offer = DEFAULT_PARAMETERS
            self._tries = 0
            self._outgoing.append(self._snrm())
        elif kind in (FrameKind.UA, FrameKind.DM) and self.state is State.DISCONNECTING:
            self._enter_disconnected()
            self._events.append(Disconnected(f"server answered DISC with {kind.value}"))
        elif kind is FrameKind.DM and self.state in (State.CONNECTING, State.CONNECTED):
            state = self.state
            self._enter_disconnected()
            self._events.append(
                Disconnected(
                    f"server answered DM while {state.value}: it refuses the connection or"
                    " dropped it (inactivity time-out, another client, wrong address)"
                )
            )
        elif kind is FrameKind.FRMR:
            control, bits = (frame.info[0], frame.info[2]) if len(frame.info) >= 3 else (0, 0)
            self._enter_disconnected()
            self._events.append(Rejected(control, _frmr_reason(bits), by_peer=True))
        elif kind in (FrameKind.I, FrameKind.RR, FrameKind.RNR) and self.state is State.CONNECTED:
            if not self._acknowledge(frame.receive_sequence):
                possible = self._possible_receive_sequences()
                sent = (f"{len(self._unacked)} frame(s) from N(S)={possible[0]} unacknowledged"
                        if self._unacked else "every frame we sent acknowledged")
                self._enter_disconnected()
                raise ProtocolError(
                    f"the server's {kind.value} frame carries N(R)={frame.receive_sequence}, which"
                    f" is impossible: our next N(S) is {possible[-1]} with {sent}, so N(R) can"
                    f" only be {' or '.join(map(str, possible))}; frame refused and the link"
                    " dropped (reconnect)"
                )
            self._handle_numbered(frame)

    def _handle_numbered(self, frame: HdlcFrame) -> None:
        """I, RR or RNR in the connected state, N(R) already applied (both roles)."""
        self._peer_busy = frame.kind is FrameKind.RNR
        if frame.kind is FrameKind.I:
            if frame.send_sequence != self._vr:
                # Duplicate (our acknowledgement was lost) or gap (a frame was lost):
                # discard; if polled, tell the peer where we are (6.4.4.4.3.3).
                if frame.poll_final:
                    self._respond_to_poll()
                return
            self._vr = (self._vr + 1) % 8
            delivered = self._reassemble(frame)
            if frame.poll_final and (
                frame.segmented or self._unacked or self._pending or not delivered
            ):
                self._respond_to_poll()
            return
        if frame.poll_final or self.role is Role.CLIENT:
            self._respond_to_poll(polled=frame.poll_final)

    def _respond_to_poll(self, polled: bool = True) -> None:
        if self._unacked and polled:
            self._outgoing += self._retransmit()  # peer's N(R) shows our frames were lost
        elif self._pending and not self._peer_busy:
            self._outgoing += self._send_window()
        elif polled:
            if self.role is Role.SERVER:
                self._polled = False
            self._outgoing.append(self._frame(FrameKind.RR, poll=True, receive=self._vr))

    def _reassemble(self, frame: HdlcFrame) -> bool:
        """Add an in-sequence I-frame; True when it completed an APDU (DataReceived).

        A server drops a message that does not start with the LLC header and delivers no
        empty APDU (an I-frame holding only the LLC header): the poll is answered with RR.
        """
        info = frame.info
        if not self._reassembly_started:
            if self.role is Role.SERVER and info[:3] not in (LLC_COMMAND, LLC_RESPONSE):
                self._reassembly.clear()
                return False
            info = strip_llc(info)
            self._reassembly_started = True
        self._reassembly += info
        if frame.segmented:
            return False
        apdu = bytes(self._reassembly)
        self._reassembly.clear()
        self._reassembly_started = False
        if not apdu and self.role is Role.SERVER:
            return False
        self._events.append(DataReceived(apdu))
        return True

    def _possible_receive_sequences(self) -> list[int]:
        """The N(R) values the peer may send now: V(S) minus each number of our frames
        still unacknowledged (IEC 62056-46 6.4.4.4.3.2, modulo 8)."""
        outstanding = len(self._unacked)
        return [(self._vs - outstanding + k) % 8 for k in range(outstanding + 1)]

    def _acknowledge(self, receive_sequence: int) -> bool:
        """Drop our frames the peer acknowledged; False if N(R) is out of range."""
        outstanding = len(self._unacked)
        acknowledged = (receive_sequence - (self._vs - outstanding)) % 8
        if acknowledged > outstanding:
            return False
        del self._unacked[:acknowledged]
        return True

    # --- sending -------------------------------------------------------------------------

    def _send_window(self) -> list[bytes]:
        frames: list[HdlcFrame] = []
        while self._pending and len(self._unacked) < self.parameters.window_transmit:
            info, segmented = self._pending.popleft()
            self._unacked.append((self._vs, info, segmented))
            frames.append(self._i_frame(self._vs, info, segmented, poll=False))
            self._vs = (self._vs + 1) % 8
        return self._with_poll_on_last(frames)

    def _retransmit(self) -> list[bytes]:
        frames = [
            self._i_frame(ns, info, segmented, poll=False) for ns, info, segmented in self._unacked
        ]
        return self._with_poll_on_last(frames)

    def _with_poll_on_last(self, frames: list[HdlcFrame]) -> list[bytes]:
        if frames:
            last = frames[-1]
            frames[-1] = self._i_frame(last.send_sequence, last.info, last.segmented, poll=True)
            if self.role is Role.CLIENT:
                self._awaiting_final = True
            else:
                self._polled = False  # F=1 ends our turn
        return [frame.encode() for frame in frames]

    def _snrm(self) -> bytes:
        return self._frame(FrameKind.SNRM, poll=True, info=self._offer.encode(defaults=False))

    def _i_frame(self, ns: int, info: bytes, segmented: bool, poll: bool) -> HdlcFrame:
        return HdlcFrame(
            *self._addresses(), FrameKind.I, poll, ns, self._vr, info=info, segmented=segmented
        )

    def _frame(self, kind: FrameKind, poll: bool, receive: int = 0, info: bytes = b"") -> bytes:
        if poll and self.role is Role.CLIENT:
            self._awaiting_final = True
        return HdlcFrame(
            *self._addresses(), kind, poll, receive_sequence=receive, info=info
        ).encode()

    def _reply(self, kind: FrameKind, info: bytes = b"") -> None:
        """Server: one final answer (F=1), only while polled; without a poll the state
        change stands and the peer learns of it when it polls."""
        if not self._polled:
            return
        self._polled = False
        self._outgoing.append(self._frame(kind, poll=True, info=info))

    def _addresses(self) -> tuple[HdlcAddress, HdlcAddress]:
        remote = self.remote
        if remote is None:  # a client has it from the start, a server from the first frame
            raise ProtocolError("no peer HDLC address yet: nothing can be sent")
        if self.role is Role.CLIENT:
            return remote, self.local
        return remote, self._reply_address

    def _reject(self, control: int, bits: int) -> None:
        self._frmr_condition = (control, bits)
        self.state = State.FRAME_REJECT
        self._reply(FrameKind.FRMR, info=self._frmr_info(control, bits))  # now, if polled
        self._events.append(Rejected(control, _frmr_reason(bits), by_peer=False))

    def _frmr_info(self, control: int, bits: int) -> bytes:
        # The C/R bit (0x10) flags a rejected response; a server only rejects commands.
        return bytes((control, (self._vs << 1) | (self._vr << 5), bits))

    # --- state ---------------------------------------------------------------------------

    def _reset_link(self) -> None:
        self._vs = 0  # V(S): N(S) of our next I-frame
        self._vr = 0  # V(R): N(S) we expect next
        self._unacked: list[tuple[int, bytes, bool]] = []
        self._pending: deque[tuple[bytes, bool]] = deque()
        self._reassembly = bytearray()
        self._reassembly_started = False
        self._awaiting_final = False
        self._peer_busy = False
        self._tries = 0
        self._frmr_condition = (0, 0)

    def _enter_disconnected(self) -> None:
        self.state = State.DISCONNECTED
        self.parameters = HdlcParameters()
        self._reset_link()

    def _require_role(self, role: Role, action: str) -> None:
        if self.role is not role:
            raise ProtocolError(
                f"{action} is a {role.value} action; this connection is a {self.role.value}"
            )

    def _addressed_to_us(self, frame: HdlcFrame) -> bool:
        # Compare address values, not wire forms: a server at 1/16 may be addressed with
        # 2 or 4 bytes. Frames for other stations on an RS-485 bus are not ours.
        dst = frame.destination
        if (dst.upper, dst.lower) != (self.local.upper, self.local.lower):
            return False
        if self.role is Role.CLIENT:
            src, remote = frame.source, self.remote
            return remote is not None and (src.upper, src.lower) == (remote.upper, remote.lower)
        return True
