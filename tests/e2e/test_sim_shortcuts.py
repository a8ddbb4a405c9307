"""The simulator's shortcuts change its speed, never what happens.

A small community (doors on the three boards over both transports, a mains
smoke sensor on its kept MQTT session, a battery one over BLE that smells a
fire and sounds the other through the hub) runs three times: as it runs by
default, without starting wakes early (run ahead), and with the chamber read
through the host instead of in the board. The printed timeline, with every
frame, stored event and alarm at its virtual time, must be the same line for
line, and so must what the devices did."""
import random
from pathlib import Path

from simulator.runner import run_scenario

BOARDS = ("esp32", "esp32c3", "pico_w")
HOURS = 2


def community(seed=3):
    rnd = random.Random(seed)
    devices, steps, flats = [], [], []
    for i in range(6):
        flats.append("      - {id: f%d}" % i)
        did = "door-%d" % i
        devices.append("  - {id: %s, kind: door_sensor, board: %s, flat: f%d, transport: %s, "
                       "heartbeat: 20m}" % (did, BOARDS[i % 3], i, "ble" if i % 2 else "mqtt"))
        for _ in range(3):
            t = rnd.randint(60, HOURS * 3600 - 900)
            steps += [(t, did, "open"), (t + rnd.randint(5, 300), did, "close")]
    devices.append("  - {id: smoke-0, kind: smoke_sensor, board: esp32, flat: f0, transport: mqtt, "
                   "smoke: {power: mains}}")
    devices.append("  - {id: smoke-1, kind: smoke_sensor, board: pico_w, flat: f1, transport: ble, "
                   "smoke: {power: battery}}")
    lines = ["  - {at: %ds, device: %s, action: %s}" % s for s in sorted(steps)]
    lines.append("  - {at: 1h, device: smoke-1, action: smoke, value: {profile: flaming}}")
    lines.sort(key=lambda line: _at(line))
    return """name: shortcut equivalence
site: {id: sim-same, name: Same}
rules:
  escalation: {enabled: false}
  smoke: {interconnect: site}
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
  - {alarm: smoke, between: [1h, 1h10m]}
""" % ("\n".join(flats), "\n".join(devices), "\n".join(lines), HOURS)


def _at(line):
    v = line.split("at: ", 1)[1].split(",", 1)[0]
    return int(v[:-1]) * (3600 if v.endswith("h") else 1)


async def _run(tmp_path, name, on_start=None):
    path = tmp_path / (name + ".yaml")
    path.write_text(community())
    lines = []
    ok, run = await run_scenario(path, out=lines.append, workdir=tmp_path / name,
                                 on_start=on_start)
    assert ok, "\n".join(lines[-40:])
    devices = run.sim.devices.values()
    did = {d.id: (d.boots, d.wifi_connects, round(d.wifi_on_s, 6), d.peak_heap > 0,
                  list(d.pwm_log.get(d.board["pins"].get("siren"), [])))
           for d in devices}
    # alarm ids are random and the file name differs; the rest must not
    trace = [line.split(" (id ")[0] for line in lines if not line.startswith("PASS")]
    return trace, did, run.sim


async def test_run_ahead_and_the_board_side_chamber_change_nothing(tmp_path):
    default, did, sim = await _run(tmp_path, "default")
    assert sim.runs_ahead > 0  # the shortcut was taken
    assert any("ALARM" in line and "smoke" in line for line in default)
    assert did["smoke-0"][4], "the interconnect never sounded the mains sensor"

    def no_ahead(run, sim):
        sim.run_ahead = False
    plain, did_plain, sim_plain = await _run(tmp_path, "plain", no_ahead)
    assert sim_plain.runs_ahead == 0
    assert plain == default
    assert did_plain == did

    def host_chamber(run, sim):
        for dev_id, chamber in sim.chambers.items():
            dev = sim.devices[dev_id]
            pins = dev.board["pins"]
            dev.adc_source[pins["photodiode_adc"]] = chamber.adc_source(pins["ir_led"])
    hosted, did_hosted, _ = await _run(tmp_path, "hosted", host_chamber)
    assert hosted == default
    assert did_hosted == did
