"""Runs the whole test suite several times in a row with CPU load beside it.

A test that waits on wall time instead of on a condition passes on an idle
machine and fails on a busy one (a CI runner, a Pi that is also ingesting).
This runs pytest `--runs` times while `--load` processes burn CPU, and fails
if any run failed. `make test-repeat` calls it (docs/testing.md).

It never changes files; the burners are stopped however the runs end.
"""
from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time


def burn() -> None:  # pragma: no cover - runs in the burner processes
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="suite runs in a row (default 3)")
    parser.add_argument("--load", type=int, default=1,
                        help="CPU-burning processes beside the suite (default 1)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.load < 0:
        parser.error("--runs must be >= 1 and --load >= 0")
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    results = []
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            print(f"== run {run}/{args.runs} with {args.load} CPU burner(s)", flush=True)
            code = subprocess.call([sys.executable, "-m", "pytest", "-q", *args.pytest_args])
            results.append((run, code, time.monotonic() - started))
    finally:
        for b in burners:
            b.terminate()
        for b in burners:
            b.join(5)
    for run, code, seconds in results:
        print(f"run {run}: {'passed' if code == 0 else 'FAILED (exit %d)' % code} in {seconds:.0f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
