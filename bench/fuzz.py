"""Long fuzz run over every entry point that takes bytes from outside.

    .venv/bin/python bench/fuzz.py --minutes 30          # atheris when it is installed
    .venv/bin/python bench/fuzz.py --minutes 1 --engine hypothesis
    DLMS_EDGE_FUZZ_NO_ATHERIS=1 .venv/bin/python bench/fuzz.py --minutes 1   # the fallback

The targets and what each may raise are tests/fuzz_targets.py (CI runs them bounded,
tests/test_fuzz_entry_points.py). Engines (``--engine auto``: the first that imports):

* ``atheris`` (libFuzzer, coverage-guided, the project's modules instrumented): one child
  process per run; the first input byte picks the target, the rest is its input;
* ``hypothesis`` (no atheris, or ``DLMS_EDGE_FUZZ_NO_ATHERIS=1``): hypothesis' own
  generation in this process, batch after batch of ``@given`` runs with fresh seeds until
  the time is up, each example a target and its input: random bytes, or the known-answer
  frames and the target's own seeds with bytes flipped, inserted, deleted, cut or
  repeated (hypothesis shrinks nothing: findings are recorded, not raised);
* ``mutate`` (neither installed, e.g. .venv-ha for the targets that need Home
  Assistant): the same dispatch over Python's ``random`` and the same mutations.

Nothing unexpected stops the run: each unexpected exception is recorded by (target,
type, innermost frame) with its first input, inputs that take over ``--hang`` seconds
count as hangs, and resident memory is sampled after a warm-up and at the end. The report
says: inputs tried per target, distinct unexpected exception types (goal 0), hangs
(goal 0), memory growth; ``--json`` prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests"))

WARM_UP = 10.0  # seconds before the first memory sample (caches, imports, interning)


class Hang(Exception):
    """An input ran longer than --hang seconds."""


class Recorder:
    """Counts and findings of one run; written to ``stats`` as JSON now and then."""

    def __init__(self, names: list[str], stats: Path | None, hang: float) -> None:
        self.tried = dict.fromkeys(names, 0)
        self.unexpected: dict[str, dict[str, object]] = {}
        self.hangs: list[dict[str, str]] = []
        self.stats, self.hang = stats, hang
        self.started = time.monotonic()
        self.rss_warm: int | None = None
        self._written = 0.0
        signal.signal(signal.SIGALRM, self._alarm)

    @staticmethod
    def _alarm(signum: int, frame: object) -> None:
        raise Hang

    def run(self, target, data: bytes) -> None:
        from fuzz_targets import check

        self.tried[target.name] += 1
        signal.setitimer(signal.ITIMER_REAL, self.hang)
        try:
            error = check(target, data)
        except Hang:
            self.hangs.append({"target": target.name, "input": data[:512].hex()})
            error = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(error, Hang):
            self.hangs.append({"target": target.name, "input": data[:512].hex()})
        elif error is not None:
            where = traceback.extract_tb(error.__traceback__)[-1]
            key = f"{target.name}: {type(error).__name__} at {where.filename}:{where.lineno}"
            entry = self.unexpected.setdefault(key, {"count": 0, "input": data.hex(),
                                                     "message": str(error)[:200]})
            entry["count"] = int(entry["count"]) + 1  # type: ignore[call-overload]
        self._checkpoint()

    def _checkpoint(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.rss_warm is None and now - self.started >= WARM_UP:
            self.rss_warm = rss()
        if self.stats is not None and (force or now - self._written >= 2.0):
            self._written = now
            self.stats.write_text(json.dumps(self.report()))

    def report(self) -> dict[str, object]:
        return {"seconds": round(time.monotonic() - self.started, 1), "tried": self.tried,
                "unexpected": self.unexpected, "hangs": self.hangs,
                "rss_warm": self.rss_warm, "rss_end": rss()}


def rss() -> int:
    """Resident set size of this process in bytes (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def seeds() -> list[bytes]:
    from fuzz_targets import known_answer_frames

    return known_answer_frames()


def mutate(rnd: random.Random, corpus: list[bytes]) -> bytes:
    if not corpus or rnd.random() < 0.25:
        return rnd.randbytes(rnd.randrange(0, 400))
    data = bytearray(rnd.choice(corpus))
    for _ in range(rnd.randrange(1, 6)):
        if not data:
            break
        at = rnd.randrange(len(data))
        action = rnd.randrange(5)
        if action == 0:
            data[at] ^= 1 << rnd.randrange(8)
        elif action == 1:
            data[at:at] = rnd.randbytes(rnd.randrange(1, 8))
        elif action == 2:
            del data[at:at + rnd.randrange(1, 8)]
        elif action == 3:
            del data[at:]
        else:
            data[at:at] = data[rnd.randrange(len(data)):][:rnd.randrange(1, 32)]
    return bytes(data)


def chosen_targets(names: list[str] | None) -> list:
    from fuzz_targets import targets

    every = targets()
    unknown = set(names or ()) - {t.name for t in every}
    if unknown:
        raise SystemExit(f"fuzz: no target {', '.join(sorted(unknown))} here; "
                         f"choose among {', '.join(t.name for t in every)}")
    return [t for t in every if names is None or t.name in names]


def run_mutate(seconds: float, chosen: list, hang: float, seed: int) -> dict[str, object]:
    recorder = Recorder([t.name for t in chosen], None, hang)
    rnd, corpus = random.Random(seed), seeds()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for target in chosen:
            recorder.run(target, mutate(rnd, [*corpus, *target.seeds]))
    return recorder.report()


def run_hypothesis(seconds: float, chosen: list, hang: float, seed: int,
                   batch: int = 1000) -> dict[str, object]:
    """Hypothesis generates; one ``@given`` run of ``batch`` examples after another, each
    with its own seed, until ``seconds`` are over (the last batch stops early)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    recorder = Recorder([t.name for t in chosen], None, hang)
    corpus = seeds()

    @st.composite
    def mutated(draw: st.DrawFn, frames: tuple[bytes, ...]) -> bytes:
        data = bytearray(draw(st.sampled_from(frames)))
        for _ in range(draw(st.integers(1, 5))):
            if not data:
                break
            at = draw(st.integers(0, len(data) - 1))
            action = draw(st.sampled_from(("flip", "insert", "delete", "cut", "repeat")))
            if action == "flip":
                data[at] ^= draw(st.integers(1, 255))
            elif action == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            elif action == "delete":
                del data[at:at + draw(st.integers(1, 8))]
            elif action == "cut":
                del data[at:]
            else:
                start = draw(st.integers(0, len(data) - 1))
                data[at:at] = data[start:start + draw(st.integers(1, 32))]
        return bytes(data)

    inputs = {t.name: st.one_of(st.binary(max_size=400),
                                mutated((*corpus, *t.seeds)),
                                *([mutated(t.seeds)] * 2 if t.seeds else []))
              for t in chosen}

    deadline = time.monotonic() + seconds

    @settings(max_examples=batch, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(st.data())
    def one_batch(data: st.DataObject) -> None:
        # Draws must not depend on the clock (hypothesis checks that a choice sequence
        # seen before draws the same), so the rest of the last batch draws and skips.
        target = data.draw(st.sampled_from(chosen))
        payload = data.draw(inputs[target.name])
        if time.monotonic() < deadline:
            recorder.run(target, payload)

    number = seed
    while time.monotonic() < deadline:
        hypothesis_seed(number)(one_batch)()
        number += 1
    report = recorder.report()
    report["batches"] = number - seed
    return report


def atheris_child(seconds: float, names: list[str] | None, hang: float, stats: Path,
                  corpus_dir: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["edge_agent"]):
        import fuzz_targets  # noqa: F401 - instrumented here, used by chosen_targets
    chosen = chosen_targets(names)
    recorder = Recorder([t.name for t in chosen], stats, hang)

    def one_input(data: bytes) -> None:
        if data:
            recorder.run(chosen[data[0] % len(chosen)], data[1:])

    for number, target in enumerate(chosen):
        for index, frame in enumerate((*seeds(), *target.seeds)):
            (corpus_dir / f"seed-{index}-{number}").write_bytes(bytes([number]) + frame)
    # Hangs are counted by our own per-input alarm (--hang); libFuzzer's time-out only
    # catches a process stalled far beyond it. Artifacts go to the run's work dir.
    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", "-timeout=120",
                   "-rss_limit_mb=4096", "-print_final_stats=0",
                   f"-artifact_prefix={corpus_dir.parent}/", str(corpus_dir)],
                  one_input)
    try:
        atheris.Fuzz()
    finally:
        recorder._checkpoint(force=True)


def run_atheris(seconds: float, names: list[str] | None, hang: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dlms-edge-fuzz-") as work:
        stats = Path(work) / "stats.json"
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        command = [sys.executable, __file__, "--child", "--seconds", str(seconds),
                   "--hang", str(hang), "--stats", str(stats), "--corpus", str(corpus)]
        if names:
            command += ["--targets", ",".join(names)]
        child = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               check=False, timeout=seconds + 300)
        if not stats.exists():
            raise SystemExit("fuzz: the atheris child wrote no statistics")
        report = json.loads(stats.read_text())
        if child.returncode != 0:  # libFuzzer stopped early: say why
            tail = child.stderr.decode(errors="replace").strip().splitlines()[-3:]
            report["stopped"] = " / ".join(tail)
        return report


def pick_engine(engine: str) -> str:
    """``auto``: atheris, unless DLMS_EDGE_FUZZ_NO_ATHERIS=1 or it does not import, then
    hypothesis, then the plain mutator."""
    if engine != "auto":
        return engine
    candidates = ("hypothesis",) if os.environ.get("DLMS_EDGE_FUZZ_NO_ATHERIS") == "1" \
        else ("atheris", "hypothesis")
    for candidate in candidates:
        try:
            __import__(candidate)
        except ImportError:
            continue
        return candidate
    return "mutate"


def print_report(engine: str, report: dict[str, object]) -> None:
    tried = report["tried"]
    assert isinstance(tried, dict)
    print(f"engine {engine}, {report['seconds']} s, {sum(tried.values()):,} inputs")
    for name, count in tried.items():
        print(f"  {name:24} {count:>12,}")
    unexpected = report["unexpected"]
    assert isinstance(unexpected, dict)
    print(f"distinct unexpected exception types: {len(unexpected)} (goal 0)")
    for key, entry in unexpected.items():
        print(f"  {key}  x{entry['count']}: {entry['message']}\n    input {entry['input'][:160]}")
    hangs = report["hangs"]
    assert isinstance(hangs, list)
    print(f"hangs: {len(hangs)} (goal 0)")
    for hang in hangs[:5]:
        print(f"  {hang['target']}: {hang['input'][:160]}")
    if "stopped" in report:
        print(f"libFuzzer stopped early: {report['stopped']}")
    warm, end = report["rss_warm"], report["rss_end"]
    if isinstance(warm, int) and isinstance(end, int):
        print(f"memory: {warm / 2**20:.1f} MiB after warm-up, {end / 2**20:.1f} MiB at the "
              f"end ({(end - warm) / 2**20:+.1f} MiB)")
    else:
        print(f"memory: {int(end) / 2**20:.1f} MiB at the end (run shorter than the warm-up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis", "mutate"),
                        default="auto")
    parser.add_argument("--targets", help="comma-separated target names (default: all)")
    parser.add_argument("--hang", type=float, default=2.0, help="seconds that make a hang")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.targets.split(",") if args.targets else None
    if args.child:
        atheris_child(args.seconds, names, args.hang, args.stats, args.corpus)
        return
    engine = pick_engine(args.engine)
    seconds = args.minutes * 60
    if engine == "atheris":
        chosen_targets(names)  # an unknown name fails here, not in the child
        report = run_atheris(seconds, names, args.hang)
    elif engine == "hypothesis":
        report = run_hypothesis(seconds, chosen_targets(names), args.hang, args.seed)
    else:
        report = run_mutate(seconds, chosen_targets(names), args.hang, args.seed)
    if args.json:
        print(json.dumps({"engine": engine, **report}))
    else:
        print_report(engine, report)


if __name__ == "__main__":
    main()
