"""The project's known-answer vectors, kept in the repository (tests/vectors/) so that a
clone tests itself anywhere; tests/test_known_answers_copy.py checks the copies against the
shared originals (../shared/vectors/) whenever those are beside the repository."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent / "vectors"


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed vector file ``name`` (e.g. ``security.json``)."""
    return json.loads((VECTORS / name).read_text())


def cases(name: str = "security.json") -> dict[str, dict[str, Any]]:
    """The cases of a vector file by id."""
    return {case["id"]: case for case in load(name)["cases"]}
