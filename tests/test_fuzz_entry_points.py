"""Bounded fuzzing in CI: every entry point that takes outside bytes (tests/fuzz_targets.py)
fails only in its documented way, on random bytes and on mutations of real frames.
``bench/fuzz.py --minutes N`` is the long run."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest
from fuzz_targets import Target, check, targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).parent / "vectors"


def seeds() -> list[bytes]:
    """Real frames to mutate: the known-answer vectors' hex strings."""
    found: list[bytes] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) >= 8 and len(node) % 2 == 0:
            try:
                found.append(bytes.fromhex(node))
            except ValueError:
                pass

    for path in sorted(VECTORS.glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


SEEDS = seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real frame with a few bytes changed, inserted, deleted or cut."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(("flip", "insert", "delete", "cut")))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del data[at]
        else:
            del data[at:]
    return bytes(data)


def fail_on_unexpected(target: Target, data: bytes) -> None:
    error = check(target, data)
    if error is not None:
        trace = "".join(traceback.format_exception(error))
        pytest.fail(f"{target.name}: unexpected {type(error).__name__} on "
                    f"{data.hex()}:\n{trace}")


def test_there_are_real_frames_to_mutate() -> None:
    assert len(SEEDS) >= 10


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.name)
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300), mutated()))
def test_entry_point_fails_only_in_its_documented_way(target: Target, data: bytes) -> None:
    fail_on_unexpected(target, data)
