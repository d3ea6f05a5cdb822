"""The interop tests need gurux-dlms: without it they skip on a developer's machine, and
fail under CI (``CI=true``), where a skipped matrix would pass for a proven one.

gurux is hidden by a package of the same name, earlier on the path, that raises what a
missing package raises (ModuleNotFoundError);
this module imports nothing of gurux, so it runs (and holds) when gurux is missing too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEROP = Path(__file__).resolve().parent


@pytest.mark.parametrize("ci", ["true", ""], ids=["under-ci", "outside-ci"])
def test_a_missing_gurux_fails_under_ci_and_skips_outside(tmp_path: Path, ci: str) -> None:
    hidden = tmp_path / "gurux_dlms"
    hidden.mkdir()
    (hidden / "__init__.py").write_text(  # what Python raises for a package not installed
        "raise ModuleNotFoundError('gurux-dlms hidden by the test', name='gurux_dlms')\n")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
         str(INTEROP / "test_gurux_client.py"), str(INTEROP / "test_gurux_translator.py")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": path, "CI": ci},
        capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    if ci:
        assert result.returncode == pytest.ExitCode.INTERRUPTED, output  # collection errors
        assert "gurux-dlms hidden by the test" in output and "2 errors" in output, output
    else:
        assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, output  # all skipped
        assert "2 skipped" in output and "gurux-dlms is not installed" in output, output
