"""Back-to-back general-glo-ciphering APDUs on the T-210D-r P1 port."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from known_answers import VECTORS

from edge_agent.dlms.push.ciphered_stream import GeneralGloCipheringSplitter
from edge_agent.dlms.push.reassembly import Telegram, reassemble

VECTOR = json.loads(
    (VECTORS / "mbus-push.json").read_text()
)["cases"][0]


def mbus_apdus(data: bytes) -> list[bytes]:
    """The APDUs of the M-Bus telegrams in ``data``, through the one push reassembler."""
    return [e.apdu for e in reassemble(data, ("mbus",)) if isinstance(e, Telegram)]
# A real T-210D general-glo-ciphering APDU (81 f8 length form) from the M-Bus vector.
REAL = mbus_apdus(bytes.fromhex(VECTOR["inputs"]["frames"]))[0]


def glo(system_title: bytes, body: bytes, security_control: int = 0x30) -> bytes:
    content = bytes((security_control,)) + b"\x00\x00\x00\x2a" + body
    size = len(content)
    length = (
        bytes((size,))
        if size < 0x80
        else (b"\x81" + bytes((size,)) if size < 0x100 else b"\x82" + size.to_bytes(2, "big"))
    )
    return b"\xdb\x08" + system_title + length + content


def test_real_apdu_and_long_form_lengths_back_to_back() -> None:
    big = glo(b"SAG10000", bytes(700))
    small = glo(b"SAG10000", b"\xdb\x08" * 10, 0x20)  # tag bytes inside the ciphertext
    stream = b"\x00\xffnoise\xdb\x07" + REAL + big + small + b"\xdb"
    splitter = GeneralGloCipheringSplitter()
    got = []
    for start in range(0, len(stream), 64):
        got += splitter.feed(stream[start : start + 64])
    assert got == [REAL, big, small]
    assert splitter.discarded == len(b"\x00\xffnoise\xdb\x07")


def test_implausible_length_does_not_stall() -> None:
    splitter = GeneralGloCipheringSplitter(max_length=2048)
    assert splitter.feed(b"\xdb\x08" + bytes(8) + b"\x82\xff\xff\x30" + REAL) == [REAL]


@given(st.lists(st.binary(max_size=300), max_size=5), st.binary(max_size=30), st.integers(1, 97))
def test_frames_between_garbage_are_found(bodies, garbage, chunk) -> None:
    frames = [glo(b"KFM12345", body) for body in bodies]
    clean_garbage = garbage.replace(b"\xdb", b"")
    stream = clean_garbage + b"".join(frames)
    splitter = GeneralGloCipheringSplitter()
    got = []
    for start in range(0, len(stream), chunk):
        got += splitter.feed(stream[start : start + chunk])
    assert got == frames
