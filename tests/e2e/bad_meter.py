"""Scripted misbehaving meters for the end-to-end tests, on 127.0.0.1 only.

``BadMeter`` is a TCP proxy in front of a real ``dlms-edge simulate``: every wrapper frame
the client sends goes to the simulator, and a *fault* function turns the simulator's answer
into the bytes the client gets (a crafted APDU, two frames, a wrong port...), so each test
sees a real client talking to a real meter that misbehaves in exactly one way.
``HdlcBadMeter`` speaks HDLC over TCP itself: UA to SNRM, then crafted I-frames.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Self

from edge_agent.dlms import apdu as x
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import DecodeError
from edge_agent.dlms.link.hdlc.frame import FrameKind, FrameSplitter, HdlcFrame, HdlcParameters
from edge_agent.dlms.link.wrapper import WrapperDecoder, WrapperFrame

# (request APDU, the simulator's answer frame) -> the bytes the client gets
Fault = Callable[[bytes, WrapperFrame], bytes]
IO_TIMEOUT = 5.0  # every socket wait is bounded: a stuck test fails, it never hangs


def asks_for(request: bytes) -> list[tuple[Obis, int]]:
    """The (OBIS, attribute) pairs a GET request asks for; empty for anything else."""
    try:
        decoded = x.decode_apdu(request)
    except DecodeError:
        return []
    if isinstance(decoded, x.GetRequestNormal):
        descriptors = [decoded.descriptor]
    elif isinstance(decoded, x.GetRequestWithList):
        descriptors = [item.descriptor for item in decoded.attribute_descriptor_list]
    else:
        return []
    return [(Obis.from_bytes(d.instance_id), d.attribute_id) for d in descriptors]


def frame(source: int, destination: int, apdu: bytes, length: int | None = None) -> bytes:
    """A wrapper frame; ``length`` overrides the header's APDU length."""
    encoded = WrapperFrame(source, destination, apdu).encode()
    if length is None:
        return encoded
    return encoded[:6] + length.to_bytes(2, "big") + encoded[8:]


class BadMeter:
    """Proxy on 127.0.0.1 (``address``) in front of the simulator at ``upstream``."""

    def __init__(self, upstream: str, fault: Fault) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.fault = fault
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.2)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream, timeout=IO_TIMEOUT) as meter:
            client.settimeout(IO_TIMEOUT)
            requests, answers = WrapperDecoder(), WrapperDecoder()
            while not self._stop.is_set():
                try:
                    data = client.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                for request in requests.feed(data):
                    meter.sendall(request.encode())
                    answer: list[WrapperFrame] = []
                    while not answer:
                        chunk = meter.recv(4096)
                        if not chunk:
                            return
                        answer = answers.feed(chunk)
                    try:
                        client.sendall(self.fault(request.apdu, answer[0]))
                    except OSError:
                        return

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(2)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HdlcBadMeter:
    """HDLC over TCP: UA to SNRM, then ``answer(info)`` builds the I-frame for each I-frame."""

    def __init__(self, answer: Callable[[HdlcFrame], bytes]) -> None:
        self.answer = answer
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(IO_TIMEOUT)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.received: list[HdlcFrame] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        splitter = FrameSplitter()
        with client:
            client.settimeout(IO_TIMEOUT)
            while True:
                try:
                    data = client.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                for item in splitter.feed(data):
                    if not isinstance(item, HdlcFrame):
                        continue
                    self.received.append(item)
                    reply = self._reply(item)
                    if reply:
                        client.sendall(reply)

    def _reply(self, item: HdlcFrame) -> bytes:
        back = (item.source, item.destination)
        if item.kind is FrameKind.SNRM:
            return HdlcFrame(*back, FrameKind.UA, True, info=HdlcParameters().encode()).encode()
        if item.kind is FrameKind.DISC:
            return HdlcFrame(*back, FrameKind.DM, True).encode()
        if item.kind is FrameKind.I:
            return self.answer(item)
        return b""

    def close(self) -> None:
        self.listener.close()
        self._thread.join(2)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
