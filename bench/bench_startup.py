"""Start-up of the CLI: time and peak RSS of `dlms-edge --version` and `dlms-edge decode HEX`
next to a bare `python -c pass`, with the goal for --version (2x python + 60 ms).

Run: .venv/bin/python bench/bench_startup.py [--runs N | --quick]

Each command runs N times, the three interleaved round by round after one warm-up each
(byte-code caches written, files in the page cache); a run's time is spawn to exit seen from
here. Medians are printed, with the fastest run beside them. Nothing is asserted: on a shared
machine compare the ratios, and run again.

Peak RSS is VmHWM of /proc/self/status, written by the child itself at exit (a sitecustomize
put on PYTHONPATH for a few separate, untimed runs). The child's ru_maxrss from wait4 would
not do: Linux carries the parent's high-water mark over fork and exec, so every command would
show at least this script's own ~13 MB. Without /proc (not Linux) the column reads n/a.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HDLC_FRAME = "7ea0070321930f017e"  # the first example of `dlms-edge decode --help`
TARGET_FACTOR, TARGET_EXTRA_MS = 2.0, 60.0  # dlms-edge --version <= 2 x python + 60 ms
RSS_RUNS = 3
# Appends the interpreter's peak RSS in kB to the file named by DLMS_EDGE_BENCH_RSS at exit.
_HOOK = """\
import atexit, os

def _peak_rss():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["DLMS_EDGE_BENCH_RSS"], "a") as out:
        out.write(peak + "\\n")

atexit.register(_peak_rss)
"""


def cli() -> list[str]:
    """The console script next to this interpreter (what a user runs), else `python -m`."""
    script = Path(sys.executable).with_name("dlms-edge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "edge_agent"]


def run_once(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds from spawn to exit (stdout to /dev/null)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ if env is None else env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed with exit status {status}")
    return elapsed


def peak_rss_mb(argv: list[str]) -> float | None:
    """Median over RSS_RUNS runs of the child's own peak RSS, in MB; None without /proc."""
    if not Path("/proc/self/status").exists():
        return None
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "sitecustomize.py").write_text(_HOOK)
        report = Path(folder) / "rss.txt"
        path = os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path, "DLMS_EDGE_BENCH_RSS": str(report)}
        for _ in range(RSS_RUNS):
            run_once(argv, env)
        return statistics.median(int(kb) / 1024 for kb in report.read_text().split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command (median counts)")
    parser.add_argument("--quick", action="store_true", help="5 runs (smoke run)")
    args, _ = parser.parse_known_args()  # bench/run passes bench_decode's options too
    runs = 5 if args.quick else args.runs
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "dlms-edge --version": [*cli(), "--version"],
        f"dlms-edge decode {HDLC_FRAME}": [*cli(), "decode", HDLC_FRAME],
    }
    for argv in commands.values():  # warm-up
        run_once(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(run_once(argv) * 1000)
    rss = {name: peak_rss_mb(argv) for name, argv in commands.items()}

    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; {runs} runs each, "
          f"{' '.join(commands['dlms-edge --version'][:-1])}")
    base = statistics.median(times["python -c pass"])
    width = max(map(len, commands))
    print(f"{'command':<{width}} {'median ms':>10} {'fastest':>8} {'x python':>9} {'peak RSS MB':>12}")
    for name in commands:
        median = statistics.median(times[name])
        peak = "n/a" if rss[name] is None else f"{rss[name]:.1f}"
        print(f"{name:<{width}} {median:>10.1f} {min(times[name]):>8.1f} {median / base:>8.1f}x "
              f"{peak:>12}")
    version = statistics.median(times["dlms-edge --version"])
    target = TARGET_FACTOR * base + TARGET_EXTRA_MS
    verdict = "within" if version <= target else "OVER"
    print(f"--version: {version:.1f} ms against the target 2 x {base:.1f} + 60 = {target:.1f} ms "
          f"({verdict}; {version - base:.1f} ms above a bare python)")


if __name__ == "__main__":
    main()
