"""Power cut during a flash write: the device boots again and keeps working.

Each device runs the unmodified firmware on MicroPython with its flash as a
LittleFS2 image. The battery is pulled during the n-th block program or erase
of a cold boot (that write is torn: half of it
reaches the image), for every n a cold boot makes; the real file system
decides what survives. After the battery is back, every sensor must boot from
its flash, report the door opening and closing, and never reuse a frame
counter (the hub would reject the frame as a replay).
"""
import asyncio
import json
import sqlite3
import textwrap

from simulator.runner import run_scenario

# (board, transport): deep sleep on ESP32, deep or light sleep on the C3,
# light sleep with RAM kept on the Pico W
KINDS = [("esp32", "mqtt"), ("esp32c3", "ble"), ("esp32c3", "mqtt"), ("pico_w", "mqtt"),
         ("pico_w", "ble")]
# A cold boot writes the counter reservation (BLE: 3 writes) and, over MQTT,
# queues and removes its four report frames (MQTT: about 30 writes): every
# write up to 8, then spread to past the end.
CUTS = (1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 23, 32, 45)


def _scenario():
    devices, steps = [], []
    for board, transport in KINDS:
        for n in CUTS:
            did = "d-%s-%s-%d" % (board.replace("_", ""), transport, n)
            devices.append("  - {id: %s, kind: door_sensor, board: %s, flat: f1, "
                           "transport: %s, heartbeat: 1h}" % (did, board, transport))
            steps += [(5, did, "remove", None), (10, did, "flash_cut", n),
                      (10, did, "insert", None), (20, did, "insert", None),
                      (25, did, "open", None), (30, did, "close", None)]
    steps.sort(key=lambda s: s[0])
    timeline = ["  - {at: %dm, device: %s, action: %s%s}"
                % (t, did, action, "" if value is None else ", value: %d" % value)
                for t, did, action, value in steps]
    return textwrap.dedent("""\
        name: power cut at every flash write of a cold boot
        site: {id: flashcut, name: Flash cut}
        buildings:
          - id: b1
            flats:
              - id: f1
        devices:
        """) + "\n".join(devices) + "\ntimeline:\n" + "\n".join(timeline) + textwrap.dedent("""
          - {at: 45m}
        expect:
          - {rejected: replayed, count: 0}
          - {rejected: bad_tag, count: 0}
        """)


def test_every_sensor_survives_a_power_cut_at_each_flash_write(tmp_path):
    path = tmp_path / "flash_cut.yaml"
    path.write_text(_scenario())
    lines = []
    ok, run = asyncio.run(run_scenario(path, out=lines.append, workdir=tmp_path / "run"))
    assert ok, "\n".join(lines[-60:])
    t_close = run.t0 + 30 * 60
    db = sqlite3.connect(tmp_path / "run" / "hub.db")
    cut_somewhere = {}
    for did, dev in run.sim.devices.items():
        board_transport = did.rsplit("-", 1)[0]
        cut_somewhere.setdefault(board_transport, 0)
        cut_somewhere[board_transport] += dev.power_cuts
        events = db.execute("SELECT counter, type, data, received_at FROM events "
                            "WHERE device_id=? ORDER BY id", (did,)).fetchall()
        counters = [e[0] for e in events]
        assert counters == sorted(set(counters)), (did, counters)  # none reused, none twice
        # MQTT sensors send door events, BLE ones their BTHome state
        closed = [json.loads(e[2]) for e in events if e[1] in ("door", "state") and e[3] >= t_close]
        assert closed and closed[-1]["open"] is False, (did, events[-3:])
        # a cut is armed for the cold boot only: it hits or is missed there
        assert dev.power_cuts + dev.cuts_missed == 1, (did, dev.power_cuts, dev.cuts_missed)
    # the cut really happened, at several writes of each kind of sensor
    for kind, cuts in cut_somewhere.items():
        assert cuts >= 3, (kind, cuts)
