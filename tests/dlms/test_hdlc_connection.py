"""Client and server HdlcConnection talking to each other in memory, over a lossy line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.dlms.errors import NoResponseError, ProtocolError
from edge_agent.dlms.link.hdlc.connection import (
    Connected,
    DataReceived,
    Disconnected,
    HdlcConnection,
    Rejected,
    Role,
    State,
)
from edge_agent.dlms.link.hdlc.frame import FrameKind, HdlcAddress, HdlcFrame, HdlcParameters

CLIENT = HdlcAddress.client(16)
SERVER = HdlcAddress.server(1, 16)


DEFAULTS = HdlcParameters()


def make_pair(client_params=DEFAULTS, server_params=DEFAULTS, retries=3):
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER, client_params, max_retries=retries)
    server = HdlcConnection(Role.SERVER, SERVER, parameters=server_params)
    return client, server


def events(connection: HdlcConnection) -> list:
    out = []
    while (event := connection.next_event()) is not None:
        out.append(event)
    return out


class Line:
    """Carries frames both ways; drops or corrupts the n-th frame put on the wire."""

    def __init__(
        self, client, server, drop=(), corrupt=(), answer: Callable[[bytes], bytes] | None = None
    ):
        self.client, self.server = client, server
        self.drop, self.corrupt = set(drop), set(corrupt)
        self.count = 0
        self.answer = answer
        self.server_got: list[bytes] = []
        self.client_got: list[bytes] = []
        self.client_events: list = []
        self.server_events: list = []

    def _carry(self, frames: list[bytes], receiver: HdlcConnection) -> None:
        for frame in frames:
            index, self.count = self.count, self.count + 1
            if index in self.drop:
                continue
            if index in self.corrupt:
                frame = frame[:-4] + bytes((frame[-4] ^ 0x5A,)) + frame[-3:]
            receiver.receive_data(frame)

    def run(self, first: list[bytes], rounds: int = 200) -> None:
        to_server, to_client = list(first), []
        for _ in range(rounds):
            if to_server:
                self._carry(to_server, self.server)
                to_server = []
                to_client += self.server.data_to_send()
                for event in events(self.server):
                    self.server_events.append(event)
                    if isinstance(event, DataReceived):
                        self.server_got.append(event.apdu)
                        if self.answer:
                            to_client += self.server.send_data(self.answer(event.apdu))
            elif to_client:
                self._carry(to_client, self.client)
                to_client = []
                to_server += self.client.data_to_send()
                for event in events(self.client):
                    self.client_events.append(event)
                    if isinstance(event, DataReceived):
                        self.client_got.append(event.apdu)
            else:  # silence on the line: both read loops time out
                self.server.on_timeout()
                to_server = self.client.on_timeout()
                if not to_server:
                    return
        raise AssertionError("exchange did not settle")


def connect(client, server, **line_options) -> Line:
    line = Line(client, server, **line_options)
    line.run([client.send_connect()])
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    return line


def test_connect_negotiates_parameters_and_uses_4_byte_server_address() -> None:
    client, server = make_pair(
        HdlcParameters(
            max_info_transmit=256, max_info_receive=512, window_transmit=3, window_receive=2
        ),
        HdlcParameters(
            max_info_transmit=1024, max_info_receive=128, window_transmit=1, window_receive=7
        ),
    )
    snrm = client.send_connect()
    assert HdlcFrame.decode(snrm)[0].destination.encode() == bytes.fromhex("00020021")
    server.receive_data(snrm)
    assert events(server) == [Connected(HdlcParameters(512, 128, 1, 3))]
    client.receive_data(b"".join(server.data_to_send()))
    assert events(client) == [Connected(HdlcParameters(128, 512, 3, 1))]


def test_single_frame_request_response_and_disconnect() -> None:
    client, server = make_pair()
    line = connect(client, server, answer=lambda apdu: b"\xc4" + apdu)
    frames = client.send_data(b"\xc0\x01\xc1")
    (frame,) = (HdlcFrame.decode(f)[0] for f in frames)
    assert (frame.control, frame.info) == (0x10, b"\xe6\xe6\x00\xc0\x01\xc1")  # I(0,0) P
    line.run(frames)
    assert line.server_got == [b"\xc0\x01\xc1"]
    assert line.client_got == [b"\xc4\xc0\x01\xc1"]
    line.run([client.send_disconnect()])
    assert client.state is State.DISCONNECTED and server.state is State.DISCONNECTED
    assert isinstance(line.client_events[-1], Disconnected)


@pytest.mark.parametrize("window", [1, 2, 7])
def test_segmentation_both_ways_with_windows(window: int) -> None:
    params = HdlcParameters(
        max_info_transmit=32, max_info_receive=32, window_transmit=window, window_receive=window
    )
    client, server = make_pair(params, params)
    request, response = bytes(range(200)), bytes(range(256)) * 3
    line = connect(client, server, answer=lambda apdu: response)
    line.run(client.send_data(request))
    assert line.server_got == [request]
    assert line.client_got == [response]


def test_segments_carry_s_bit_and_llc_on_first_only() -> None:
    params = HdlcParameters(
        max_info_transmit=16, max_info_receive=16, window_transmit=2, window_receive=2
    )
    client, server = make_pair(params, params)
    connect(client, server)
    frames = [HdlcFrame.decode(f)[0] for f in client.send_data(bytes(40))]
    assert len(frames) == 2  # window 2 of 3 segments
    assert [f.segmented for f in frames] == [True, True]
    assert [f.poll_final for f in frames] == [False, True]
    assert frames[0].info[:3] == b"\xe6\xe6\x00" and frames[1].info == bytes(16)


@settings(max_examples=60, deadline=None)
@given(
    window=st.sampled_from([1, 2, 3]),
    drop=st.sets(st.integers(0, 40), max_size=3),
    corrupt=st.sets(st.integers(0, 40), max_size=2),
)
def test_lost_and_corrupted_frames_are_recovered_without_duplicates(window, drop, corrupt) -> None:
    params = HdlcParameters(
        max_info_transmit=24, max_info_receive=24, window_transmit=window, window_receive=window
    )
    client, server = make_pair(params, params, retries=6)
    request, response = bytes(range(90)), bytes(range(100, 230))
    line = Line(
        client,
        server,
        drop={d + 2 for d in drop},
        corrupt={c + 2 for c in corrupt},
        answer=lambda apdu: response,
    )
    line.run([client.send_connect()])
    line.run(client.send_data(request))
    assert line.server_got == [request]
    assert line.client_got == [response]
    line.run(client.send_data(b"second"))
    assert line.server_got == [request, b"second"]
    assert line.client_got == [response, response]


def test_dropped_request_is_retransmitted() -> None:
    client, server = make_pair()
    line = connect(client, server, answer=lambda apdu: b"ok")
    start = line.count
    line.drop = {start}
    line.run(client.send_data(b"request"))
    assert line.server_got == [b"request"] and line.client_got == [b"ok"]


def test_lost_response_is_resent_and_request_not_delivered_twice() -> None:
    client, server = make_pair()
    line = connect(client, server, answer=lambda apdu: b"answer")
    line.drop = {line.count + 1}  # the server's I-frame
    line.run(client.send_data(b"request"))
    assert line.server_got == [b"request"]
    assert line.client_got == [b"answer"]


def test_no_answer_raises_no_response_error_after_retries() -> None:
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER, max_retries=2)
    client.send_connect()
    assert len(client.on_timeout()) == 1 and len(client.on_timeout()) == 1
    with pytest.raises(NoResponseError, match="server address 1/16"):
        client.on_timeout()
    assert client.state is State.DISCONNECTED


def test_idle_link_timeout_sends_nothing() -> None:
    client, server = make_pair()
    connect(client, server)
    assert client.on_timeout() == [] and server.on_timeout() == []


def test_server_answers_dm_when_disconnected() -> None:
    _client, server = make_pair()
    server.receive_data(HdlcFrame(SERVER, CLIENT, FrameKind.DISC, True).encode())
    (reply,) = server.data_to_send()
    assert HdlcFrame.decode(reply)[0].kind is FrameKind.DM
    server.receive_data(
        HdlcFrame(SERVER, CLIENT, FrameKind.I, True, info=b"\xe6\xe6\x00\x01").encode()
    )
    assert HdlcFrame.decode(server.data_to_send()[0])[0].kind is FrameKind.DM
    assert events(server) == []


def test_client_sees_dm_as_disconnected() -> None:
    client, _server = make_pair()
    client.send_connect()
    client.receive_data(HdlcFrame(CLIENT, SERVER, FrameKind.DM, True).encode())
    (event,) = events(client)
    assert isinstance(event, Disconnected) and "DM" in event.reason


def test_client_proposes_the_largest_and_never_sends_more_than_granted() -> None:
    granted = HdlcParameters(max_info_transmit=512, max_info_receive=100, window_transmit=1,
                             window_receive=2)
    client, server = make_pair(HdlcParameters.largest(), granted)
    snrm = HdlcFrame.decode(client.send_connect())[0]
    assert HdlcParameters.decode(snrm.info) == HdlcParameters.largest()
    line = connect(client, server, answer=lambda apdu: bytes(1000))
    assert client.parameters == HdlcParameters(100, 512, 2, 1)
    frames = [HdlcFrame.decode(f)[0] for f in client.send_data(bytes(450))]
    assert len(frames) == 2 and all(len(f.info) == 100 for f in frames)  # the granted window
    line.run([f.encode() for f in frames])
    assert line.server_got == [bytes(450)] and line.client_got == [bytes(1000)]
    assert not any(isinstance(e, Rejected) for e in line.server_events)


def test_snrm_of_default_parameters_carries_no_information_field() -> None:
    client, _server = make_pair()
    assert HdlcFrame.decode(client.send_connect())[0].info == b""


@pytest.mark.parametrize("refusal", [
    HdlcFrame(CLIENT, SERVER, FrameKind.DM, True),
    HdlcFrame(CLIENT, SERVER, FrameKind.FRMR, True, info=b"\x93\x00\x02"),
])
def test_refused_proposal_is_asked_again_with_the_defaults(refusal: HdlcFrame) -> None:
    client, _server = make_pair(HdlcParameters.largest())
    client.send_connect()
    client.receive_data(refusal.encode())
    assert events(client) == [] and client.state is State.CONNECTING
    (again,) = client.data_to_send()
    snrm = HdlcFrame.decode(again)[0]
    assert (snrm.kind, snrm.info) == (FrameKind.SNRM, b"")
    # A UA granting more than the second SNRM asked: the client keeps to what it asked.
    generous = HdlcParameters(512, 512, 7, 7).encode()
    client.receive_data(HdlcFrame(CLIENT, SERVER, FrameKind.UA, True, info=generous).encode())
    assert events(client) == [Connected(DEFAULTS)]
    # A time-out retransmits the SNRM in flight, not the refused proposal.
    client, _server = make_pair(HdlcParameters.largest())
    client.send_connect()
    client.receive_data(refusal.encode())
    client.data_to_send()
    assert HdlcFrame.decode(client.on_timeout()[0])[0].info == b""


def test_second_refusal_ends_the_connection_attempt() -> None:
    client, _server = make_pair(HdlcParameters.largest())
    client.send_connect()
    client.receive_data(HdlcFrame(CLIENT, SERVER, FrameKind.DM, True).encode())
    client.data_to_send()
    client.receive_data(HdlcFrame(CLIENT, SERVER, FrameKind.DM, True).encode())
    (event,) = events(client)
    assert isinstance(event, Disconnected) and "DM" in event.reason
    assert client.data_to_send() == [] and client.state is State.DISCONNECTED


def _connected_server() -> HdlcConnection:
    client, server = make_pair()
    connect(client, server)
    events(server)
    return server


@pytest.mark.parametrize(
    ("frame", "bits"),
    [
        (
            HdlcFrame(SERVER, CLIENT, FrameKind.RR, True, receive_sequence=3),
            0x08,
        ),  # N(R) never sent
        (HdlcFrame(SERVER, CLIENT, FrameKind.RR, True, info=b"x"), 0x03),  # info not allowed
        (HdlcFrame(SERVER, CLIENT, FrameKind.I, True, info=b"\xe6\xe6\x00" + bytes(200)), 0x04),
    ],
)
def test_server_rejects_with_frmr_and_stays_rejecting(frame: HdlcFrame, bits: int) -> None:
    server = _connected_server()
    server.receive_data(frame.encode())
    reply = HdlcFrame.decode(server.data_to_send()[0])[0]
    assert reply.kind is FrameKind.FRMR and reply.info[0] == frame.control and reply.info[2] == bits
    (event,) = events(server)
    assert isinstance(event, Rejected) and not event.by_peer
    server.receive_data(HdlcFrame(SERVER, CLIENT, FrameKind.RR, True).encode())
    assert HdlcFrame.decode(server.data_to_send()[0])[0].kind is FrameKind.FRMR
    server.receive_data(HdlcFrame(SERVER, CLIENT, FrameKind.SNRM, True).encode())
    assert HdlcFrame.decode(server.data_to_send()[0])[0].kind is FrameKind.UA
    assert server.state is State.CONNECTED


def test_server_rejects_undefined_control_with_frmr() -> None:
    from edge_agent.dlms.encoding.crc import crc16_x25

    def frame(control: int) -> bytes:
        body = bytes.fromhex("a00a0002002121") + bytes((control,))
        return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"

    server = _connected_server()
    server.receive_data(frame(0x19))  # REJ with P=1: REJ is not in IEC 62056-46
    reply = HdlcFrame.decode(server.data_to_send()[0])[0]
    assert reply.kind is FrameKind.FRMR and reply.info[0] == 0x19 and reply.info[2] & 0x01
    # Without P the server says nothing yet (never unpolled); the next poll gets the FRMR.
    server = _connected_server()
    server.receive_data(frame(0x09))
    assert server.data_to_send() == [] and server.state is State.FRAME_REJECT
    server.receive_data(HdlcFrame(SERVER, CLIENT, FrameKind.RR, True).encode())
    reply = HdlcFrame.decode(server.data_to_send()[0])[0]
    assert reply.kind is FrameKind.FRMR and reply.info[0] == 0x09 and reply.info[2] & 0x01


def test_client_reports_frmr_from_the_server() -> None:
    client, server = make_pair()
    connect(client, server)
    client.receive_data(
        HdlcFrame(CLIENT, SERVER, FrameKind.FRMR, True, info=b"\x31\x00\x08").encode()
    )
    (event,) = events(client)
    assert event == Rejected(0x31, "invalid N(R)", by_peer=True)
    assert client.state is State.DISCONNECTED


def test_client_rejects_impossible_acknowledgement() -> None:
    client, server = make_pair()
    connect(client, server)
    with pytest.raises(ProtocolError, match="N\\(R\\)=5"):
        client.receive_data(
            HdlcFrame(CLIENT, SERVER, FrameKind.RR, True, receive_sequence=5).encode()
        )


def test_frames_for_other_stations_are_ignored() -> None:
    _client, server = make_pair()
    other = HdlcAddress.server(1, 17)
    server.receive_data(HdlcFrame(other, CLIENT, FrameKind.SNRM, True).encode())
    assert server.data_to_send() == [] and server.state is State.DISCONNECTED


def test_server_replies_with_the_address_form_the_client_used() -> None:
    server = HdlcConnection(Role.SERVER, SERVER)
    server.receive_data(HdlcFrame(HdlcAddress(1, 16, 2), CLIENT, FrameKind.SNRM, True).encode())
    ua = HdlcFrame.decode(server.data_to_send()[0])[0]
    assert ua.source == HdlcAddress(1, 16, 2) and ua.destination == CLIENT


def test_ui_frames_are_delivered_unnumbered() -> None:
    client, server = make_pair()
    connect(client, server)
    client.receive_data(server.send_ui(b"\x0f\x00\x00\x00\x01"))
    assert events(client) == [DataReceived(b"\x0f\x00\x00\x00\x01", unnumbered=True)]


def test_send_before_connect_is_a_protocol_error() -> None:
    client, _ = make_pair()
    with pytest.raises(ProtocolError, match="connect first"):
        client.send_data(b"\x01")


def test_server_ignores_a_second_client_while_connected() -> None:
    client, server = make_pair()
    connect(client, server)
    intruder = HdlcAddress.client(1)
    server.receive_data(HdlcFrame(SERVER, intruder, FrameKind.DISC, True).encode())
    assert server.data_to_send() == [] and server.state is State.CONNECTED


def test_dm_goes_back_to_the_calling_client() -> None:
    server = HdlcConnection(Role.SERVER, SERVER)
    server.receive_data(HdlcFrame(SERVER, HdlcAddress.client(1), FrameKind.DISC, True).encode())
    dm = HdlcFrame.decode(server.data_to_send()[0])[0]
    assert (dm.kind, dm.destination, dm.source) == (FrameKind.DM, HdlcAddress.client(1), SERVER)


@given(st.lists(st.binary(max_size=60), max_size=6))
def test_random_bytes_never_crash_either_role(chunks: list[bytes]) -> None:
    from edge_agent.dlms.errors import DlmsError

    client, server = make_pair()
    connect(client, server)
    for chunk in chunks:
        server.receive_data(b"\x7e" + chunk)  # a server answers garbage, it never raises
        try:
            client.receive_data(b"\x7e" + chunk)
        except DlmsError:
            pass
