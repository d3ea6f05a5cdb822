"""Decode speed of our xDLMS/A-XDR core next to gurux-dlms (and dlms-cosem < 24), one run.

    .venv/bin/python bench/bench_decode.py [--rounds N] [--quick]

What is measured (all contenders get the same bytes, the same warm-up, and are timed in
interleaved rounds with time.perf_counter; the best round counts, so a busy neighbour on a
shared machine hurts every contender alike and never flatters one):

1. GET-Response-With-List of 20 registers, as a T-210D answers one poll: 10 energies and
   powers (double-long-unsigned), 7 voltages, currents and frequency (long-unsigned), a
   power factor (long), the clock (octet-string of 12) and the serial number (octet-string).
   Ours: ``edge_agent.dlms.apdu.decode_apdu`` (whole APDU -> typed values), and the
   with-list body read directly (what ``decode_apdu`` runs, less its dispatch).
   gurux-dlms: ``GXDLMSClient.getData`` with ``InterfaceType.PDU`` -- the path its client
   takes for every received APDU (getPdu -> handleGetResponse -> handleGetResponseWithList
   -> one typed value per result), with the HDLC/wrapper layer switched off so that both
   sides decode exactly the APDU. ``GXDLMSTranslator.pduToXml`` is not used: it renders
   XML, which would make gurux look slower than its client is.
   dlms-cosem: ``XDlmsApduFactory.apdu_from_bytes`` (its connection's decode path).
2. The same APDU ciphered as glo-get-response (0xCC, security control 0x30: authenticated
   and encrypted, AES-GCM-128). Ours: ``security.unprotect`` + ``decode_apdu``. gurux:
   ``getData`` with its ciphering settings (block cipher key, authentication key, the
   meter's system title). dlms-cosem 21.x has no glo-get-response class: skipped.
3. HDLC: ``HdlcFrame.decode`` (HCS + FCS checked) and ``FrameSplitter.feed`` over frames
   carrying that APDU, as bytes/s next to the line speed of a 9600 baud 8N1 link.
4. A-XDR alone: the 20 results, a load-profile buffer (tagged array of structures) and a
   compact-array of the same rows, decode and encode.

Timings are printed, never asserted. Optional peers: gurux-dlms from the project venv;
dlms-cosem < 24 (MIT; 24 and later are BSL, never a dependency) is looked for in
``$DLMS_EDGE_BENCH_PEERS`` (default ``~/.cache/dlms-edge-bench/peers``), where
``bench/run`` installs it with ``pip install --target`` when it can.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.dlms.apdu import GetResponseWithList, apdu_class, decode_apdu
from edge_agent.dlms.apdu.base import expect_end, read_count
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.encoding.axdr import (
    Array,
    CompactArray,
    DoubleLongUnsigned,
    Long,
    LongUnsigned,
    OctetString,
    Structure,
)
from edge_agent.dlms.link.hdlc.frame import FrameKind, FrameSplitter, HdlcAddress, HdlcFrame
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.ciphering import protect, unprotect
from edge_agent.dlms.security.control import CipherKeys, SecurityControl

# Illustrative keys and titles (the Green Book's example values), not secrets.
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
METER_TITLE = bytes.fromhex("5341477df129c270")
CLIENT_TITLE = bytes.fromhex("4D4D4D0000BC614E")

CLOCK = bytes.fromhex("07ea0b18020d2d0000ff8880")
REGISTERS = (
    [DoubleLongUnsigned(12_345_678 + 1_111 * i) for i in range(8)]  # 1.8.0 ... 2.8.2 (Wh)
    + [DoubleLongUnsigned(1_500), DoubleLongUnsigned(20)]  # 1.7.0, 2.7.0 (W)
    + [LongUnsigned(2301), LongUnsigned(2298), LongUnsigned(2310)]  # 32/52/72.7.0 (0.1 V)
    + [LongUnsigned(512), LongUnsigned(480), LongUnsigned(505)]  # 31/51/71.7.0 (0.01 A)
    + [LongUnsigned(5001), Long(987)]  # 14.7.0 (0.01 Hz), 13.7.0 (0.001)
    + [OctetString(CLOCK), OctetString(b"1SAG1100000292")]  # 0.0.1.0.0.255, 0.0.96.1.0.255
)
WITH_LIST = GetResponseWithList(0xC1, tuple(REGISTERS)).encode()
CIPHERED = protect(WITH_LIST, sc=SecurityControl(0, True, True),
                   keys=CipherKeys(ek=Secret(EK), ak=Secret(AK)),
                   system_title=METER_TITLE, invocation_counter=0x1234)
KEYS = CipherKeys(ek=Secret(EK), ak=Secret(AK))
LINE_BYTES_PER_S = 9600 / 10  # 8N1: a start bit, 8 data bits, a stop bit per byte

Contenders = dict[str, Callable[[], object]]


# --- measuring ------------------------------------------------------------------------------


def _batch_time(function: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        function()
    return time.perf_counter() - start


def race(contenders: Contenders, rounds: int, round_seconds: float) -> dict[str, float]:
    """Calls per second of each contender: warm-up, then the best of ``rounds`` rounds.

    Each contender's batch is sized to last about ``round_seconds``; the rounds interleave
    the contenders so that machine noise is spread over all of them.
    """
    batches: dict[str, int] = {}
    for name, function in contenders.items():
        number = 1
        while (elapsed := _batch_time(function, number)) < round_seconds / 4:
            number *= 2  # also the warm-up: caches, specialisation, first allocations
        batches[name] = max(1, int(number * round_seconds / elapsed))
    best = dict.fromkeys(contenders, math.inf)
    for _ in range(rounds):
        for name, function in contenders.items():
            best[name] = min(best[name], _batch_time(function, batches[name]) / batches[name])
    return {name: 1 / seconds for name, seconds in best.items()}


def report(title: str, rates: dict[str, float], ours: int = 1) -> None:
    """Print rates; the first ``ours`` entries are ours, each peer gets its ratio to them."""
    print(f"\n{title}")
    names = list(rates)
    for index, (name, rate) in enumerate(rates.items()):
        ratio = "" if index < ours else "   ours/peer: " + ", ".join(
            f"{rates[mine] / rate:5.1f}x" for mine in names[:ours])
        print(f"  {name:46s} {rate:10,.0f} APDUs/s {1e6 / rate:8.2f} us{ratio}")


# --- peers ----------------------------------------------------------------------------------


def gurux_client(ciphered: bool) -> object | None:
    try:
        from gurux_dlms import GXDLMSClient
        from gurux_dlms.enums import InterfaceType, Security
        from gurux_dlms.secure import GXDLMSSecureClient
    except ImportError:
        return None
    # The secure client is the same client with ciphering settings: plain APDUs get the
    # plain class so that neither side pays for a feature it does not use.
    client = (GXDLMSSecureClient if ciphered else GXDLMSClient)(
        True, interfaceType=InterfaceType.PDU)
    if ciphered:
        client.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
        client.settings.cipher.systemTitle = CLIENT_TITLE
        client.settings.cipher.blockCipherKey = EK
        client.settings.cipher.authenticationKey = AK
        client.settings.sourceSystemTitle = METER_TITLE  # the meter's: the IV of its replies
    return client


def gurux_decoder(apdu: bytes, ciphered: bool) -> Callable[[], object] | None:
    client = gurux_client(ciphered)
    if client is None:
        return None
    from gurux_dlms import GXByteBuffer, GXReplyData

    def decode() -> object:
        reply = GXReplyData()
        client.getData(GXByteBuffer(apdu), reply)
        return reply.value

    return decode


def dlms_cosem_factory() -> tuple[object, str] | str:
    """(XDlmsApduFactory, version), or why dlms-cosem cannot take part."""
    peers = Path(os.environ.get("DLMS_EDGE_BENCH_PEERS",
                                Path.home() / ".cache" / "dlms-edge-bench" / "peers"))
    if peers.is_dir() and str(peers) not in sys.path:
        sys.path.append(str(peers))  # after the venv: its own packages keep precedence
    try:
        from importlib.metadata import version

        import dlms_cosem
        from dlms_cosem.connection import XDlmsApduFactory
    except ImportError as error:
        return f"dlms-cosem < 24 not installed ({error.name} missing); bench/run installs it"
    found = getattr(dlms_cosem, "__version__", None) or version("dlms-cosem")
    if int(found.split(".")[0]) >= 24:
        return f"dlms-cosem {found} is BSL-licensed (>= 24): not used, not even as a peer"
    return XDlmsApduFactory, found


def plain_values(values: list | tuple) -> list:
    """Registers as plain int/bytes, to check that every decoder read the same thing."""
    return [bytes(v) if isinstance(v, bytes | bytearray) else int(v) for v in values]


# --- the with-list body read directly -------------------------------------------------------


def with_list_fast_path(buf: bytes) -> GetResponseWithList:
    """What ``GetResponseWithList._read_body`` does (``axdr.decode_get_data_results``, the
    fast path ``decode_apdu`` uses), called directly instead of through ``decode_apdu``'s
    dispatch by tag and choice.

    Same checks as ``decode_apdu`` (tag and choice, invoke-id, count against the input,
    nothing after the end): the difference between the two rows is the dispatch.
    """
    if apdu_class(buf) is not GetResponseWithList:
        raise AssertionError("not a get-response-with-list")
    count, offset = read_count(buf, 3, "get-data-result list", 2)
    results, offset = axdr.decode_get_data_results(buf, offset, count, DataAccessResult)
    expect_end(buf, offset, GetResponseWithList.NAME)
    return GetResponseWithList(buf[2], tuple(results))


# --- benchmarks -----------------------------------------------------------------------------


def bench_with_list(rounds: int, seconds: float) -> None:
    ours = decode_apdu(WITH_LIST)
    expected = plain_values(ours.results)
    assert with_list_fast_path(WITH_LIST) == ours
    contenders: Contenders = {
        "edge_agent decode_apdu": lambda: decode_apdu(WITH_LIST),
        "edge_agent with-list body only (no dispatch)": lambda: with_list_fast_path(WITH_LIST),
    }
    gurux = gurux_decoder(WITH_LIST, ciphered=False)
    if gurux is not None:
        assert plain_values(gurux()) == expected, "gurux-dlms decoded other values"
        contenders["gurux-dlms GXDLMSClient.getData (PDU)"] = gurux
    else:
        print("gurux-dlms not installed: skipped")
    cosem = dlms_cosem_factory()
    if isinstance(cosem, str):
        print(f"dlms-cosem skipped: {cosem}")
    else:
        factory, found = cosem
        decoded = factory.apdu_from_bytes(WITH_LIST)
        assert plain_values([d.value for d in decoded.response_data]) == expected
        contenders[f"dlms-cosem {found} apdu_from_bytes"] = (
            lambda: factory.apdu_from_bytes(WITH_LIST))
    report(f"GET-Response-With-List, 20 registers ({len(WITH_LIST)} bytes), full APDU",
           race(contenders, rounds, seconds), ours=2)


def bench_ciphered(rounds: int, seconds: float) -> None:
    def ours() -> object:
        return decode_apdu(unprotect(CIPHERED, KEYS, METER_TITLE).plaintext)

    def ours_fast() -> object:
        return with_list_fast_path(unprotect(CIPHERED, KEYS, METER_TITLE).plaintext)

    expected = plain_values(ours().results)
    contenders: Contenders = {
        "edge_agent unprotect + decode_apdu": ours,
        "edge_agent unprotect + with-list body only": ours_fast,
    }
    gurux = gurux_decoder(CIPHERED, ciphered=True)
    if gurux is not None:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            assert plain_values(gurux()) == expected, "gurux-dlms deciphered other values"
        contenders["gurux-dlms GXDLMSClient.getData (PDU, ciphered)"] = gurux
        print("gurux-dlms prints two lines per deciphered APDU (GXDLMSChippering.decrypt):"
              " sent to /dev/null while timing")
    print("dlms-cosem skipped for the ciphered APDU: 21.x has no glo-get-response (0xCC)")
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        rates = race(contenders, rounds, seconds)
    report(f"glo-get-response SC 0x30 (AES-GCM-128), same 20 registers ({len(CIPHERED)} bytes)",
           rates, ours=2)


def bench_hdlc(rounds: int, seconds: float) -> None:
    frame = HdlcFrame(HdlcAddress.client(16), HdlcAddress.server(1, 16), FrameKind.I,
                      poll_final=True, send_sequence=1, receive_sequence=1,
                      info=b"\xe6\xe7\x00" + WITH_LIST).encode()
    stream = frame * 8
    HdlcFrame.decode(frame)
    assert len(FrameSplitter().feed(stream)) == 8
    rates = race({
        "HdlcFrame.decode (one I-frame, HCS+FCS)": lambda: HdlcFrame.decode(frame),
        "FrameSplitter.feed (8 frames per call)": lambda: FrameSplitter().feed(stream),
    }, rounds, seconds)
    print(f"\nHDLC, I-frame of {len(frame)} bytes; 9600 baud 8N1 carries "
          f"{LINE_BYTES_PER_S:.0f} bytes/s")
    for name, rate in rates.items():
        size = len(stream) if "8 frames" in name else len(frame)
        throughput = rate * size
        print(f"  {name:48s} {throughput / 1e6:8.2f} MB/s  = {throughput / LINE_BYTES_PER_S:9,.0f}"
              " x the line speed")


def bench_axdr(rounds: int, seconds: float) -> None:
    body = WITH_LIST[4:]  # the 20 Get-Data-Results after tag, choice, invoke-id, count
    row = Structure((OctetString(CLOCK), DoubleLongUnsigned(4711), DoubleLongUnsigned(12),
                     LongUnsigned(2301), Long(987)))
    profile = axdr.encode(Array([row] * 96))  # one day of 15-minute rows
    compact_rows = Structure(row[1:])  # compact-array of the fixed-width columns
    compact = axdr.encode(CompactArray.from_values([compact_rows] * 96))
    registers = axdr.encode(Structure(REGISTERS))
    rates = race({
        "decode_get_data_results (20 results)":
            lambda: axdr.decode_get_data_results(body, 0, 20, DataAccessResult),
        "decode_all structure of the 20 registers": lambda: axdr.decode_all(registers),
        "decode_all profile: array of 96 tagged rows": lambda: axdr.decode_all(profile),
        "decode_all compact-array of 96 fixed rows": lambda: axdr.decode_all(compact),
        "encode profile: array of 96 tagged rows": lambda: axdr.encode(Array([row] * 96)),
    }, rounds, seconds)
    print("\nA-XDR alone (calls/s; values/s = calls/s x values per call)")
    for name, rate in rates.items():
        print(f"  {name:48s} {rate:12,.0f} calls/s  {1e6 / rate:8.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (best counts)")
    parser.add_argument("--quick", action="store_true", help="3 short rounds (smoke run)")
    args = parser.parse_args()
    rounds, seconds = (3, 0.05) if args.quick else (args.rounds, 0.25)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {load:.2f}; best of {rounds} interleaved rounds")
    print("gurux path: GXDLMSClient.getData with InterfaceType.PDU = its client's decode of a "
          "received APDU, without HDLC/wrapper and without the translator's XML")
    bench_with_list(rounds, seconds)
    bench_ciphered(rounds, seconds)
    bench_hdlc(rounds, seconds)
    bench_axdr(rounds, seconds)


if __name__ == "__main__":
    main()
