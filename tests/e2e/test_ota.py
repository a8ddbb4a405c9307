"""OTA of a fleet of door sensors through the hub, end to end: the unmodified
firmware on MicroPython (simulator), the hub's OTA component on a real
Mosquitto with the site's ACL, releases signed by `anju release build`.

A good release (1.1.0) goes to one group; a release whose app crashes on boot
(1.2.0) to the other. Some sensors lose power in the middle of their transfer
and are powered on again later; they resume where their flash copy ends. All
must end on a good version: the first group on 1.1.0, the second rolled back
to 1.0.0 with the crash reported at the hub.

100 sensors, 5 of them cut (ota_fleet.FLEET_DEVICES, FLEET_CUTS), a third on
the crashing release; bench/ota_bench.py times the same run
(`ota_100_devices_s`).
"""
import asyncio

import pytest

from simulator import ota_fleet

pytestmark = pytest.mark.micropython


def test_a_fleet_updates_resumes_after_power_cuts_and_rolls_back_a_crashing_release(tmp_path):
    result = asyncio.run(ota_fleet.run(tmp_path))
    assert result.ok, "\n".join(result.lines[-60:])
    hub = result.hub_status
    for did in result.good:
        fw = hub[did]["firmware"]
        assert fw["version"] == "1.1.0" and not fw["trial"], (did, hub[did])
        assert hub[did]["target"]["state"] == "done", (did, hub[did])
    for did in result.crashing:
        fw = hub[did]["firmware"]
        # rolled back to what it ran, and the crash reached the hub
        assert fw["version"] == "1.0.0" and not fw["trial"], (did, hub[did])
        assert hub[did]["target"]["state"] == "failed", (did, hub[did])
        assert [f["version"] for f in fw["failed_updates"]] == ["1.2.0"], (did, hub[did])
        assert fw["failed_updates"][0]["reason"] == "crashed", (did, hub[did])
    for did in result.cut:
        dev = result.sim.devices[did]
        assert dev.power_cuts == 1, (did, dev.power_cuts, dev.cuts_missed)
        # resumed: it did not fetch the release again from the start
        assert result.served[did] < 1.5 * result.release_bytes[did], (did, result.served[did])
    for did in result.good + result.crashing:
        # the device's last report: nothing left to report (it forgot what the hub took)
        assert hub[did]["firmware"]["unreported_failures"] == [], (did, hub[did])
    assert result.peak_heap < 2 * 111936, result.peak_heap


SMOKE_SITE = """\
name: smoke sensors take an update while they keep sampling
site: {id: ota-smoke, name: OTA smoke}
hub: {ota: {release_pubkey: %(pub)s}}
buildings:
  - id: b1
    flats: [{id: f-1}, {id: f-2}]
devices:
  - {id: smoke-1, kind: smoke_sensor, board: esp32, flat: f-1, transport: mqtt, heartbeat: 10m, smoke: {power: mains}}
  - {id: smoke-2, kind: smoke_sensor, board: esp32c3, flat: f-2, transport: mqtt, heartbeat: 10m, smoke: {power: battery}}
timeline:
  - {at: 40m}
expect:
  - {no_alarm: smoke}
"""

def _run_update(tmp_path, app, site_text, ids, prepend=None):
    """Build a signed 1.1.0 of `app` (its main.py with `prepend` before it, if
    given), offer it to `ids` in a window from 5 minutes after the start, run
    the site; (the run, {device: (firmware, target) as the hub's book has them})."""
    import datetime
    import shutil
    from host_tools import release as host_release
    from hub.ota import book as ota_book, release as ota_release
    from simulator.runner import run_scenario
    pub = host_release.keygen(tmp_path / "key")
    fw = None
    if prepend is not None:
        fw = tmp_path / "fw-1.1.0"
        shutil.copytree(ota_fleet.FIRMWARE, fw, ignore=shutil.ignore_patterns("__pycache__"))
        main = fw / app / "main.py"
        main.write_text(prepend + main.read_text())
    host_release.build(app, "1.1.0", tmp_path / "key" / host_release.KEY_FILE, tmp_path / "rel",
                       **({} if fw is None else {"firmware": fw}))

    def on_start(run, sim):
        t0 = datetime.datetime.fromtimestamp(sim.clock.now() + 300, datetime.timezone.utc)
        info = run.hub.ota.publish_release(ota_release.to_upload(tmp_path / "rel"))
        run.hub.ota.update(info["id"], ids, "%s-%s" % (
            t0.strftime("%H:%M"), (t0 + datetime.timedelta(hours=2)).strftime("%H:%M")))

    path = tmp_path / "site.yaml"
    path.write_text(site_text % {"pub": pub})
    lines = []
    ok, run = asyncio.run(run_scenario(path, out=lines.append, workdir=tmp_path / "run",
                                       on_start=on_start))
    assert ok, "\n".join(lines[-40:])
    book = ota_book.OtaBook(ota_book.path_for(tmp_path / "run" / "hub.db"))
    try:
        return run, {did: (book.firmware(did), book.target(did)) for did in ids}
    finally:
        book.close()


def _update_two(tmp_path, app, site_text, ids, chunk_passes=True):
    run, states = _run_update(tmp_path, app, site_text, ids)
    for did, (fw, target) in states.items():
        assert fw["version"] == "1.1.0" and not fw["trial"], (did, fw)
        assert target["state"] == "done", (did, target)
    if chunk_passes:
        # several passes of at most 4 chunks each, the app's loop running in between
        assert run.hub.ota.served["chunks"] > len(ids) * 2 * 4
    for did in ids:
        # the app fed the watchdog the boot shim starts for a trial on a deep-sleep board
        assert "WDT_RESET" not in run.sim.devices[did].resets, (did, run.sim.devices[did].resets)
    return run


def _rolled_back(states, reason):
    for did, (fw, target) in states.items():
        assert fw["version"] == "1.0.0" and not fw["trial"], (did, fw)
        assert target["state"] == "failed", (did, target)
        assert [(f["version"], f["reason"]) for f in fw["failed_updates"]] == \
            [("1.1.0", reason)], (did, fw)


def test_smoke_sensors_update_a_few_chunks_at_a_time_and_confirm_after_reaching_the_hub(tmp_path):
    _update_two(tmp_path, "smoke_sensor", SMOKE_SITE, ["smoke-1", "smoke-2"])



HANG_SITE = """\
name: door sensors take a release that hangs at boot
site: {id: ota-hang, name: OTA hang}
hub: {ota: {release_pubkey: %(pub)s}}
buildings:
  - id: b1
    flats: [{id: f-1}, {id: f-2}]
devices:
  - {id: door-1, kind: door_sensor, board: esp32, flat: f-1, transport: mqtt, heartbeat: 10m}
  - {id: door-2, kind: door_sensor, board: esp32c3, flat: f-2, transport: mqtt, heartbeat: 10m}
timeline:
  - {at: 1h}
expect:
  - {no_alarm: inactivity}
  - {watchdog: door-1, count: 1}
  - {watchdog: door-2, count: 1}
"""


def test_a_release_that_hangs_at_boot_is_reset_by_the_watchdog_and_rolled_back(tmp_path):
    """1.1.0's app waits forever before its loop starts its own watchdog: the
    one the boot shim keeps during a trial resets the board, the next boot
    goes back to 1.0.0 and the hub hears of a watchdog failure."""
    run, states = _run_update(tmp_path, "door_sensor", HANG_SITE, ["door-1", "door-2"],
                              "import time\nwhile True:\n    time.sleep(1)  # waits for what "
                              "never comes\n")
    _rolled_back(states, "watchdog")
    for did in states:
        # the install resets into the trial; the watchdog ends the trial once
        assert run.sim.devices[did].resets == {"HARD_RESET": 1, "WDT_RESET": 1}, \
            run.sim.devices[did].resets


LOCK_SITE = """\
name: smart locks take an update in an update boot, their tables and events kept
site: {id: ota-lock, name: OTA locks}
hub: {ota: {release_pubkey: %(pub)s}}
buildings:
  - id: b1
    flats:
      - id: f-1
        residents: [{id: r-1, name: Li Wei, role: tenant}]
      - id: f-2
        residents: [{id: r-2, name: Ana Silva, role: tenant}]
      - id: f-3
        residents: [{id: r-3, name: Chen Jie, role: tenant}]
devices:
  - {id: lock-1, kind: smart_lock, board: esp32, flat: f-1, transport: mqtt, heartbeat: 10m, battery_mv: 5600, lock: {power: battery, cmd_poll_s: 60}}
  - {id: lock-2, kind: smart_lock, board: esp32c3, flat: f-2, transport: mqtt, heartbeat: 10m, lock: {power: mains, relock_s: 10}}
  - {id: lock-3, kind: smart_lock, board: pico_w, flat: f-3, transport: mqtt, heartbeat: 10m, battery_mv: 5600, lock: {power: battery, cmd_poll_s: 60}}
timeline:
  - {at: 1m, device: lock-1, action: tenant_add, value: {resident: r-1, card: li-card}}
  - {at: 1m, device: lock-2, action: tenant_add, value: {resident: r-2, card: ana-card}}
  - {at: 1m, device: lock-3, action: tenant_add, value: {resident: r-3, card: chen-card}}
  - {at: 4m, device: lock-1, action: card, value: li-card}
  - {at: 4m, device: lock-2, action: card, value: ana-card}
  - {at: 4m, device: lock-3, action: card, value: chen-card}
  - {at: 40m, device: lock-1, action: card, value: li-card}
  - {at: 40m, device: lock-2, action: card, value: ana-card}
  - {at: 40m, device: lock-3, action: card, value: chen-card}
  - {at: 45m}
expect:
  - {access: lock-1, outcome: unlocked, method: card, count: 2}
  - {access: lock-2, outcome: unlocked, method: card, count: 2}
  - {access: lock-3, outcome: unlocked, method: card, count: 2}
  - {rejected: replayed, count: 0}
  - {rejected: bad_tag, count: 0}
"""
# the boards the lock scenarios use, as they power them (scenarios/lock_*.yaml)
LOCKS = {"lock-1": "esp32", "lock-2": "esp32c3", "lock-3": "pico_w"}


def _budget(board):
    import json
    return json.loads((ota_fleet.FIRMWARE.parent / "boards" / ("%s.json" % board))
                      .read_text())["heap_bytes"]


def test_smart_locks_update_in_an_update_boot_within_their_heap_and_confirm(tmp_path):
    """Each lock hears the offer on its kept session, resets into an update
    boot (nothing of the lock loaded) that fetches, verifies and installs,
    then into the trial, which confirms once it reached the hub. The card
    opens before and after: the tables and every access event survive."""
    run = _update_two(tmp_path, "smart_lock", LOCK_SITE, sorted(LOCKS), chunk_passes=False)
    for did, board in LOCKS.items():
        dev = run.sim.devices[did]
        assert dev.peak_heap <= 2 * _budget(board), (did, dev.peak_heap, _budget(board))
        # into the update boot, into the trial: nothing else reset the lock
        assert dev.resets == {"HARD_RESET": 2}, (did, dev.resets)


def test_a_lock_release_that_crashes_on_boot_is_rolled_back_with_the_failure_at_the_hub(tmp_path):
    run, states = _run_update(tmp_path, "smart_lock", LOCK_SITE, sorted(LOCKS),
                              'raise RuntimeError("1.1.0 does not start")\n')
    _rolled_back(states, "crashed")
    for did in states:
        dev = run.sim.devices[did]
        assert dev.peak_heap <= 2 * _budget(LOCKS[did]), (did, dev.peak_heap)

