"""Visitor code benchmark: the lock's decision on a ten-digit keypad entry
(anju.lock.decide.handle(("visitor", digits)), which parses the code,
resolves its start slot, computes both candidate check values with
HMAC-SHA256, scans the blocked list and builds the ACCESS body), run by the
firmware's own modules on the MicroPython unix port (the interpreter the
simulator runs, with the ESP32-sized heap of tests/firmware_core/mp_harness)
over codes made by the hub's generator (hub/visitors/passcode.py): inside
their windows, before, after, wrong ones, with a full blocked list of
`lock.visitor_blocked` = 128 entries (the longest scan).

  visitor_code_verify_ms_mean / _p99   wall ms per decision (time.ticks_us), each
                                       entry's fastest of REPEAT (the machine is shared:
                                       the rest is other processes' time)
  visitor_code_verify_ms_p99_every_run p99 over every run, preemption included
  visitor_code_verify_alloc_bytes      heap allocated by one decision (max)
  visitor_code_blocked_list_bytes      the blocked list's buffer (128 x 8 B)
  visitor_code_verify_ratio_to_budget  p99 / 100 ms, the keypad's response budget
  visitor_code_verify_esp32_ms_est ... p99 scaled to the boards (below)

The reference is the keypad's response budget: a key press answered within
100 ms feels immediate (the lock's own scan and debounce take 10-15 ms of
it, docs/smart_lock.md). The boards' figures are estimates: the unix-port
p99 times the pystone ratio of each board to this port (docs/ota.md, "On the
boards": ESP32 @ 240 MHz 117, ESP32-C3 @ 160 MHz 150, Pico W @ 133 MHz 212),
which lean high (SHA-256 is native code and scales less than bytecode).

    python -m bench visitor_code
"""
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.hub_bench import pct  # noqa: E402

RUNS = 400
REPEAT = 5  # each entry decided 5 times; the fastest is its own cost (the machine is shared)
BUDGET_MS = 100.0
PYSTONE_RATIO = {"esp32": 117, "esp32c3": 150, "pico_w": 212}  # docs/ota.md, "On the boards"
KEY = bytes(range(32))
T = 849916800  # device time, 2026-12-07 00:00 UTC

GUEST = r'''
import gc, json, time
from anju.lock import decide, users, visitor
KEY = bytes(range(32))
cfg = decide.LockConfig(max_users=4, max_credentials=4, visit_key=visitor.visit_key(KEY))
table = users.Table(4, 4)
blocked = visitor.Blocked(128)
for i in range(128):
    # revoked codes whose windows last all day: the list is full and each one is scanned
    blocked.add(944000 + i, 31, 0, i, visitor.F_REVOKED, 0)
state = decide.LockState(cfg)
state.clock_set = 1
times = []
alloc = 0
for digits, now in CASES:
    row = []
    for _ in range(REPEAT):
        gc.collect()
        a0 = gc.mem_alloc()
        t0 = time.ticks_us()
        s2, acts = decide.handle(state, ("visitor", digits), now, cfg, table, blocked)
        dt = time.ticks_diff(time.ticks_us(), t0)
        alloc = max(alloc, gc.mem_alloc() - a0)
        row.append(dt)
        state.wrong = [[], [], []]  # no lockout: every entry is decided in full
        state.seq_last = s2.seq_last
        state.seq_reserved = s2.seq_reserved
    times.append(row)
print("BENCH " + json.dumps({"us": times, "alloc": alloc, "blocked": len(blocked.buf)}))
'''


def _cases():
    from hub.visitors import passcode
    out = []
    base = T // 900 + 4
    for i in range(RUNS):
        index = i % 32
        start = base + (i % 50)
        code = passcode.make(KEY, start * 900 + passcode.MP_EPOCH_OFFSET,
                             (start + passcode.DURATIONS[index]) * 900 + passcode.MP_EPOCH_OFFSET,
                             i % 3 == 0, T + passcode.MP_EPOCH_OFFSET)
        kind = i % 4
        if kind == 0:
            now = start * 900 - 60            # a minute early
        elif kind == 3:
            # a wrong code: another check value
            wrong = (code.check + 1) % passcode.CHECK_MOD
            out.append(("%010d" % (wrong * passcode.PAYLOAD_MOD
                                   + int(code.digits) % passcode.PAYLOAD_MOD), start * 900 + 5))
            continue
        else:
            now = start * 900 + 30            # inside (a one-time one is then spent)
        out.append((code.digits, now))
    return out


def measure():
    from tests.firmware_core import mp_harness
    code = "CASES = %r\nREPEAT = %d\n" % (_cases(), REPEAT) + GUEST
    with tempfile.TemporaryDirectory(prefix="anju-visitor-bench-") as tmp:
        stage = Path(tmp)
        dummy = stage / "bench_dummy.py"
        dummy.write_text("pass\n")
        staged = stage / "staged"
        staged.mkdir()
        mp_harness.stage(dummy, staged)
        res = mp_harness.run_guest(code, readonly_dir=staged, wall_timeout_seconds=300)
    line = next(x for x in res.stdout.splitlines() if x.startswith("BENCH "))
    return json.loads(line[len("BENCH "):])


def run(results):
    got = measure()
    ms = [min(row) / 1000.0 for row in got["us"]]
    every = [u / 1000.0 for row in got["us"] for u in row]
    mean, p99 = statistics.mean(ms), pct(ms, 99)
    out = {
        "visitor_code_verify_ms_mean": round(mean, 3),
        "visitor_code_verify_ms_p99": round(p99, 3),
        "visitor_code_verify_ms_p99_every_run": round(pct(every, 99), 3),
        "visitor_code_verify_runs": len(ms),
        "visitor_code_verify_alloc_bytes": got["alloc"],
        "visitor_code_blocked_list_bytes": got["blocked"],
        "visitor_code_verify_ratio_to_budget": round(p99 / BUDGET_MS, 4),
    }
    for board, ratio in PYSTONE_RATIO.items():
        out["visitor_code_verify_%s_ms_est" % board] = round(p99 * ratio, 1)
    results.update(out)
    print("visitor code decision on the unix port, %d runs: mean %.3f ms, p99 %.3f ms "
          "(%.1f %% of the keypad's %d ms budget); %d B allocated at most"
          % (len(ms), mean, p99, 100 * p99 / BUDGET_MS, BUDGET_MS, got["alloc"]))
    for board, ratio in PYSTONE_RATIO.items():
        print("  %s estimate: p99 x %d = %.0f ms" % (board, ratio, p99 * ratio))
    return out


if __name__ == "__main__":
    r = {}
    run(r)
    print(json.dumps(r, indent=2, sort_keys=True))
