"""The protocol core type-checks under mypy --strict (config: [tool.mypy] in pyproject.toml).

mypy runs through its API inside the test suite, so `bash .ci/run` fails when a change
breaks the types of edge_agent/dlms. Every remaining ``type: ignore`` names its error code
and says why, on its line or in a comment right above it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api  # the test extra brings it: a missing mypy fails the build, never skips

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
CORE = ROOT / "edge_agent" / "dlms"


def _mypy(*arguments: str, cache: Path) -> tuple[int, str]:
    stdout, stderr, status = api.run(
        ["--config-file", str(CONFIG), "--cache-dir", str(cache), "--no-error-summary", *arguments]
    )
    return status, stdout + stderr


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # mypy finds edge_agent from the working directory (an editable install's import hook
    # is invisible to it), so run it from the repository root wherever pytest started.
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def test_the_protocol_core_type_checks_strictly(cache: Path) -> None:
    status, output = _mypy(str(CORE), cache=cache)  # what [tool.mypy] files names
    assert status == 0, output


def test_a_type_error_fails_the_check(tmp_path: Path, cache: Path) -> None:
    module = tmp_path / "broken.py"
    module.write_text(
        "from edge_agent.dlms.system_title import SystemTitle\n\n"
        "def manufacturer(title: SystemTitle) -> int:\n"
        "    return title.manufacturer\n",
        encoding="utf-8",
    )
    status, output = _mypy(str(module), cache=cache)
    assert status == 1
    assert 'Incompatible return value type (got "str | None", expected "int")' in output


def test_an_untyped_function_fails_the_strict_check(tmp_path: Path, cache: Path) -> None:
    module = tmp_path / "untyped.py"
    module.write_text("def decode(buf):\n    return buf\n", encoding="utf-8")
    status, output = _mypy(str(module), cache=cache)
    assert status == 1 and "[no-untyped-def]" in output


_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<after>.*)$")


def ignores_without_reason(root: Path) -> list[str]:
    """``type: ignore`` comments without an error code, or without a reason beside them
    (a comment after the ignore on its line, or a comment line right above)."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            match = _IGNORE.search(line)
            if match is None:
                continue
            where = f"{path.relative_to(root.parent)}:{number}"
            if not match.group("codes"):
                problems.append(f"{where}: blanket type: ignore (name the error code)")
                continue
            reason_after = match.group("after").strip().startswith("#")
            above = lines[number - 2].strip() if number > 1 else ""
            if not reason_after and not above.startswith("#"):
                problems.append(f"{where}: type: ignore{match.group('codes')} without a reason")
    return problems


def test_every_type_ignore_in_the_core_names_its_code_and_reason() -> None:
    assert ignores_without_reason(CORE) == []


def test_the_reason_check_catches_bare_and_unexplained_ignores(tmp_path: Path) -> None:
    package = tmp_path / "core"
    package.mkdir()
    (package / "a.py").write_text(
        "x = f()  # type: ignore\n"
        "y = g()  # type: ignore[arg-type]\n"
        "# g's stub is wrong about bytearray\n"
        "z = g()  # type: ignore[arg-type]\n"
        "w = g()  # type: ignore[arg-type]  # stub is wrong\n",
        encoding="utf-8",
    )
    assert ignores_without_reason(package) == [
        "core/a.py:1: blanket type: ignore (name the error code)",
        "core/a.py:2: type: ignore[arg-type] without a reason",
    ]
