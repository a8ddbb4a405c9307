"""Hub side of the smoke sensor: frame decoding, interconnect scope, command
frames the device accepts, and fire alarms overtaking queued alarms."""
import struct

import pytest

from hub.verify import frames  # noqa: F401
from hub.verify import frames_smoke
from hub.forward import interconnect
from hub.alarms.alarmbook import AlarmBook
from hub.store import Store
from simulator import loader

KEY = bytes(range(32))


def _frame(mtype, body, counter=5):
    fr = loader.core("anju.frame")
    return fr.encode(KEY, b"smoke-1", mtype, counter, 0, body)


def test_smoke_frame_decodes():
    r = frames.verify("smoke-1", KEY, _frame(0x30, struct.pack(">BBHH", 2, 0, 3300, 3200)))
    assert r.type == "smoke"
    assert r.values == {"level": "alarm", "cause": "chamber", "smoke": 3300, "threshold": 3200}


@pytest.mark.parametrize("mtype,body", [
    (0x30, struct.pack(">BBHH", 3, 0, 1, 1)),        # level out of range
    (0x31, struct.pack(">BBHBBH", 0, 101, 1, 0, 2, 0)),  # percent > 100
    (0x32, struct.pack(">BH", 3, 0)),
    (0x33, struct.pack(">BB", 8, 0)),
    (0x34, struct.pack(">BB", 9, 1)),
])
def test_out_of_range_bodies_rejected(mtype, body):
    r = frames.verify("smoke-1", KEY, _frame(mtype, body))
    assert r.reason == "bad_body"


def test_hub_command_verifies_on_the_device_core():
    cmd = loader.core("anju.command")
    data = interconnect.encode_command(KEY, "smoke-1", interconnect.T_INTERCONNECT, 9, 0,
                                       b"\x01\x00")
    assert cmd.verify(KEY, b"smoke-1", data, 8) == (0x38, 9, b"\x01\x00")
    with pytest.raises(ValueError):
        cmd.verify(KEY, b"smoke-2", data, 0)  # another device's command


def test_fire_alarm_overtakes_queued_alarms(tmp_path):
    store = Store(tmp_path / "hub.db")
    book = AlarmBook("anju/upstream/s/alarms")
    with store.transaction() as tx:
        for i in range(3):
            book.raise_alarm(tx, "inactivity:%d" % i,
                             {"id": "in-%d" % i, "seq": 1, "type": "inactivity",
                              "severity": "high", "state": "raised"}, 100.0 + i)
        book.raise_alarm(tx, "smoke:x:1", {"id": "fire", "seq": 1, "type": "smoke",
                                           "severity": "critical", "state": "raised"}, 200.0)
    import json
    order = [json.loads(row[2])["id"] for row in store.outbox_head(10)]
    assert order == ["fire", "in-0", "in-1", "in-2"]
    store.close()


@pytest.mark.parametrize("stored,now,expect", [
    (0, 1704067200 + 100, 400),              # fresh hub: clock floor
    (10**6, 1704067200 + 100, 10**6 + 1),    # above the stored counter
    (5, 1000, 6),                            # clock before 2024: stored + 1
    (0xFFFFFFFF, 1704067200, 0xFFFFFFFF),    # saturates, never wraps
])
def test_hub_command_counter(stored, now, expect):
    assert interconnect.next_counter(stored, now) == expect


def _site():
    from types import SimpleNamespace as NS
    flats = {"1-101": NS(id="1-101", building="b1"), "1-102": NS(id="1-102", building="b1"),
             "2-201": NS(id="2-201", building="b2")}
    devs = [("s-a", "1-101", "smoke_sensor"), ("s-b", "1-101", "smoke_sensor"),
            ("s-c", "1-102", "smoke_sensor"), ("s-d", "2-201", "smoke_sensor"),
            ("door", "1-101", "door_sensor")]
    devices = {d: NS(id=d, flat=f, kind=k) for d, f, k in devs}
    return NS(flats=flats, devices=devices)


@pytest.mark.parametrize("scope,expect", [
    ("flat", ["s-b"]), ("building", ["s-b", "s-c"]), ("site", ["s-b", "s-c", "s-d"]), ("off", []),
])
def test_interconnect_scope(scope, expect):
    from hub.rules.smoke import in_scope
    site = _site()
    assert in_scope(site, site.devices["s-a"], scope) == expect


def test_unknown_interconnect_scope_is_a_config_error():
    from hub import ConfigError
    from hub.rules.smoke import SmokeRule
    site = _site()
    site.rules = {"smoke": {"interconnect": "flatt"}}
    site.building_rules = {}
    site.site_id = "s"
    for f in site.flats.values():
        f.rules = {}
        f.inactivity_s = 43200
    with pytest.raises(ConfigError, match="smoke.interconnect is 'flatt'.*allowed: flat"):
        SmokeRule(site)
    site.rules = {"smoke": {"interconnect": "building"}}
    SmokeRule(site)
