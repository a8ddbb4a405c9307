"""`make bench`: run every benchmark and write bench/results.json.

    python -m bench            all benchmarks
    python -m bench face       only the named ones
"""
import json
import sys
from pathlib import Path

from bench import console_bench
from bench import deploy_bench
from bench import face_bench
from bench import flash_bench
from bench import hub_bench
from bench import lock_bench
from bench import ota_bench
from bench import reject_bench
from bench import sim_bench
from bench import smoke_bench
from bench import visitor_bench
from bench import visitors_bench

BENCHES = {"face": face_bench.run}
BENCHES["hub"] = hub_bench.run
BENCHES["reject"] = reject_bench.run
BENCHES["smoke"] = smoke_bench.run
BENCHES["sim"] = sim_bench.run
BENCHES["ota"] = ota_bench.run
BENCHES["lock"] = lock_bench.run
BENCHES["flash"] = flash_bench.run
BENCHES["console"] = console_bench.run
BENCHES["visitors"] = visitors_bench.run
BENCHES["deploy"] = deploy_bench.run
BENCHES["visitor_code"] = visitor_bench.run


def main(argv):
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print("unknown benchmark(s): %s; known: %s" % (", ".join(unknown), ", ".join(BENCHES)),
              file=sys.stderr)
        return 2
    path = Path(__file__).resolve().parent / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        print("== %s" % name)
        BENCHES[name](results)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("results written to %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
