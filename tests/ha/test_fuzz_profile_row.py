"""The long fuzz run's ha-profile-row target, briefly, under this Home Assistant.

`ProfileRow.from_payload` takes MQTT payloads from outside; its module imports Home
Assistant, so it is fuzzed here rather than in the agent's suite (tests/fuzz_targets.py,
bench/fuzz.py). This venv has neither atheris nor hypothesis: the run's plain mutator
drives it from the target's own well-formed rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_profile_rows_fail_only_in_their_documented_way() -> None:
    done = subprocess.run(
        [sys.executable, str(REPOSITORY / "bench" / "fuzz.py"), "--json", "--engine", "mutate",
         "--targets", "ha-profile-row", "--minutes", "0.05"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tried"]["ha-profile-row"] >= 1000
    assert report["unexpected"] == {}, report["unexpected"]
    assert report["hangs"] == []
