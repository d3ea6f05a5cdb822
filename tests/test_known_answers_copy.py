"""The vendored known-answer vectors are byte-for-byte the shared ones (when present)."""

from __future__ import annotations

from pathlib import Path

import pytest
from known_answers import VECTORS

SHARED = Path(__file__).resolve().parents[2] / "shared"
COPIES = {
    "security.json": SHARED / "vectors" / "security.json",
    "mbus-push.json": SHARED / "vectors" / "mbus-push.json",
    "README.md": SHARED / "vectors" / "README.md",
    "t210d-pass3-general-signing.txt": SHARED / "reference" / "t210d-pass3-general-signing.txt",
}


@pytest.mark.parametrize("name", sorted(COPIES))
def test_vendored_copy_matches_the_shared_original(name: str) -> None:
    original = COPIES[name]
    if not original.is_file():
        pytest.skip(f"{original} is not beside this clone")
    assert (VECTORS / name).read_bytes() == original.read_bytes(), f"tests/vectors/{name} is stale: copy it again"


def test_every_vector_file_is_vendored() -> None:
    assert {path.name for path in VECTORS.iterdir()} >= set(COPIES)
