"""Simulator benchmark: 12 simulated hours of a 100-flat community.

100 door sensors (half over BLE, half over MQTT, on the three boards in turn)
and four smoke sensors (one on mains with its kept MQTT session, three on
battery: one over MQTT, two over BLE) run the unmodified firmware on the MicroPython unix
port (one interpreter per boot, simulator/device.py), with the hub in-process
and real Mosquitto brokers. Every flat's door opens and closes six times over
the day at its own times. Figures:

  sim_12h_100_devices_s       wall seconds for the whole run (the target is
                              20 s, the aim 10 s; the CPython simulator this
                              replaced took 55 s for the same community)
  sim_wake_ms_mean / _p99     wall ms of one device run, from the simulator
                              resuming it to its next block (a deep-sleep
                              wake is a whole boot: interpreter start, mount,
                              import, report, sleep; for a wake run ahead,
                              only what is left when the clock gets there)
  sim_runs_ahead              wakes handed to a device before their time
                              (simulator/world.py, _run_ahead)
  sim_boots                   interpreter starts (power-ons and deep-sleep wakes)
  sim_peak_heap_bytes         most live heap each app held on each board, on
                              the 64-bit port (about 2x a 32-bit board)

    python -m bench sim
"""
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.hub_bench import pct  # noqa: E402

TARGET_S = 20.0
FLATS = 100
# a mains sensor on its kept MQTT session (it polls for commands every 500 ms),
# a battery one over MQTT and two over BLE
SMOKE = (("mqtt", "mains"), ("mqtt", "battery"), ("ble", "battery"), ("ble", "battery"))
HOURS = 12
BOARDS = ("esp32", "esp32c3", "pico_w")


def scenario_text(seed=7):
    rnd = random.Random(seed)
    flats, devices, steps = [], [], []
    for i in range(FLATS):
        flat = "f%03d" % i
        flats.append("      - {id: %s}" % flat)
        transport = "ble" if i % 2 else "mqtt"
        did = "door-%03d" % i
        devices.append("  - {id: %s, kind: door_sensor, board: %s, flat: %s, transport: %s, "
                       "heartbeat: 1h}" % (did, BOARDS[i % 3], flat, transport))
        for _ in range(6):
            t = rnd.randint(60, HOURS * 3600 - 900)
            steps.append((t, did, "open"))
            steps.append((t + rnd.randint(5, 600), did, "close"))
    for j, (transport, power) in enumerate(SMOKE):
        did = "smoke-%d" % j
        devices.append("  - {id: %s, kind: smoke_sensor, board: %s, flat: f%03d, transport: %s, "
                       "smoke: {power: %s}}" % (did, BOARDS[j % 3], j, transport, power))
    steps.sort()
    timeline = "\n".join("  - {at: %ds, device: %s, action: %s}" % s for s in steps)
    return """name: simulator benchmark, a 100-flat community for 12 hours
site: {id: sim-bench, name: Sim Bench}
rules:
  escalation: {enabled: false}
buildings:
  - id: b1
    flats:
%s
devices:
%s
timeline:
%s
  - {at: %dh}
expect:
  - {no_alarm: smoke}
""" % ("\n".join(flats), "\n".join(devices), timeline, HOURS)




def run(results):
    from simulator import device as simdevice
    from simulator.runner import run_scenario, scratch_dir

    wakes = []
    orig_resume, orig_power_on = simdevice.SimDevice.resume, simdevice.SimDevice.power_on

    depth = [0]

    def timed(fn):
        def wrapper(self, *args):
            # a deep-sleep wake is resume() calling power_on(): one run
            depth[0] += 1
            t = time.perf_counter()
            try:
                return fn(self, *args)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    wakes.append(time.perf_counter() - t)
        return wrapper

    simdevice.SimDevice.resume = timed(orig_resume)
    simdevice.SimDevice.power_on = timed(orig_power_on)
    try:
        # in RAM where the machine has it, as `anju sim run` does (scratch_dir)
        with tempfile.TemporaryDirectory(prefix="anju-sim-bench-", dir=scratch_dir()) as tmp:
            path = Path(tmp) / "community.yaml"
            path.write_text(scenario_text())
            t0 = time.perf_counter()
            lines = []
            ok, run_ = asyncio.run(run_scenario(path, out=lines.append, workdir=Path(tmp) / "run"))
            wall = time.perf_counter() - t0
            if not ok:
                print("\n".join(lines[-30:]), file=sys.stderr)
                raise SystemExit("the benchmark community failed its expectations")
            devices = run_.sim.devices.values()
            boots = sum(d.boots for d in devices)
            heap = {}
            for d in devices:
                key = "%s/%s" % (d.app, d.board["name"])
                heap[key] = max(heap.get(key, 0), d.peak_heap)
            frames = run_.sim.mqtt_frames_sent
            ahead = run_.sim.runs_ahead
            adverts = run_.sim.adverts
    finally:
        simdevice.SimDevice.resume, simdevice.SimDevice.power_on = orig_resume, orig_power_on
    mean_ms = 1000.0 * sum(wakes) / len(wakes)
    p99_ms = 1000.0 * pct(wakes, 99)
    print("sim_12h_100_devices_s   %.1f s  (target %.0f s: ratio %.2f; %d device runs, %d run ahead, "
          "%d boots, %d MQTT frames, %d BLE bursts)"
          % (wall, TARGET_S, wall / TARGET_S, len(wakes), ahead, boots, frames, adverts))
    print("sim_wake_ms             mean %.2f  p99 %.2f" % (mean_ms, p99_ms))
    for key in sorted(heap):
        print("sim_peak_heap_bytes     %-24s %d" % (key, heap[key]))
    results["sim_12h_100_devices_s"] = round(wall, 2)
    results["sim_12h_100_devices_target_ratio"] = round(wall / TARGET_S, 3)
    results["sim_wake_ms_mean"] = round(mean_ms, 3)
    results["sim_wake_ms_p99"] = round(p99_ms, 3)
    results["sim_device_runs"] = len(wakes)
    results["sim_runs_ahead"] = ahead
    results["sim_boots"] = boots
    results["sim_peak_heap_bytes"] = heap


if __name__ == "__main__":
    out = {}
    run(out)
