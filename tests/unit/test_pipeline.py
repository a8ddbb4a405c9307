"""hub.pipeline.Pipeline over a real SQLite hub.store.Store: acceptance,
de-duplication, rejection counts, the inactivity rule, the outbox and a hub
restart over the same database file. Time is passed in explicitly (hub time
as `received_at` / `now`), so 30 hours take milliseconds."""

from __future__ import annotations

import datetime
import json
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from anju import frame
from hub.config import site as config
from hub.config import yamlfile
from hub.pipeline import Pipeline
from hub.rules import inactivity
from hub.store import Store

KEY_101 = bytes(range(32))
KEY_102 = bytes(range(32, 64))
KEY_103 = bytes(range(64, 96))

SITE_YAML = f"""\
site: {{id: sunrise, name: Sunrise Gardens}}
defaults:
  inactivity: 12h
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents:
          - {{id: r-101, name: Wang Lan, lives_alone: true}}
      - id: b1-102
        residents:
          - {{id: r-102, name: Li Wei}}
          - {{id: r-103, name: Li Na, lives_alone: false}}
      - id: b1-103
        inactivity: 2h
        residents:
          - {{id: r-104, name: Chen Bo, lives_alone: true}}
devices:
  - {{id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt,
     frame_key: "{KEY_101.hex()}"}}
  - {{id: door-102, kind: door_sensor, board: esp32c3, flat: b1-102, transport: mqtt,
     frame_key: "{KEY_102.hex()}"}}
  - {{id: door-103, kind: door_sensor, board: esp32, flat: b1-103, transport: mqtt,
     frame_key: "{KEY_103.hex()}"}}
"""

KEYS = {"door-101": KEY_101, "door-102": KEY_102, "door-103": KEY_103}
T0 = 1_795_000_000.0  # 2026-11-18, hub time in epoch seconds
H = 3600.0
TH = 12 * H  # the site's inactivity threshold


def site() -> config.SiteConfig:
    return config.parse_site(yamlfile.loads(SITE_YAML, "site.yaml"))


def topic(device: str, leaf: str = "event", site_id: str = "sunrise") -> str:
    return f"anju/{site_id}/{device}/{leaf}"


def door(device: str, counter: int, is_open: bool, device_time: int = 0) -> bytes:
    return frame.encode(KEYS[device], device.encode(), frame.T_DOOR, counter, device_time,
                        frame.door_body(is_open))


def heartbeat(device: str, counter: int) -> bytes:
    return frame.encode(KEYS[device], device.encode(), frame.T_HEARTBEAT, counter, 0,
                        frame.heartbeat_body(0, 90, 2900, 0))


class Hub:
    """A pipeline over a store on one database file; `restart()` is a hub restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stores: list[Store] = []
        self.restart()

    def restart(self) -> None:
        if self.stores:
            self.stores[-1].close()
        self.store = Store(self.path)
        self.stores.append(self.store)
        s = site()
        # the inactivity rule alone: the other rules have their own test files
        self.pipeline = Pipeline(s, self.store, rules=[inactivity.InactivityRule(s)])

    def send(self, device: str, data: bytes, at: float, leaf: str = "event") -> str:
        return self.pipeline.handle_mqtt(topic(device, leaf), data, at)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def snapshot(h: Hub, device: str) -> tuple:
    return (h.store.device_state(device), h.store.events(), h.store.last_counter(device),
            h.store.all_flat_activity(), h.store.alarms(), h.store.outbox_depth())


# ---- acceptance and freshness --------------------------------------------------------

def test_accepted_frame_is_stored_once(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 5, True, device_time=0), T0) == "accepted"
    events = hub.store.events()
    assert len(events) == 1
    assert events[0] == {"device": "door-101", "counter": 5, "type": "door", "values": {"open": True},
                         "received_at": T0}
    assert hub.store.last_counter("door-101") == 5
    state = hub.store.device_state("door-101")
    assert state["door_open"] == 1 and state["last_seen"] == T0
    assert hub.pipeline.stats["accepted"] == 1
    assert hub.store.rejection_counts() == {}


def test_same_counter_is_duplicate_and_changes_nothing(hub: Hub) -> None:
    data = door("door-101", 5, False)
    assert hub.send("door-101", data, T0) == "accepted"
    before = snapshot(hub, "door-101")
    # QoS 1 re-delivery, and the same frame as a retained state message
    assert hub.send("door-101", data, T0 + 60) == "duplicate"
    assert hub.pipeline.handle_mqtt(topic("door-101", "state"), data, T0 + 61, retained=True) == "duplicate"
    # a different body with the same counter is still a duplicate, not new state
    assert hub.send("door-101", door("door-101", 5, True), T0 + 62) == "duplicate"
    assert snapshot(hub, "door-101") == before
    assert hub.store.rejection_counts() == {"duplicate": 3}
    assert hub.pipeline.stats["duplicate"] == 3 and hub.pipeline.stats["rejected"] == 0


def test_lower_counter_is_replayed_and_changes_nothing(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 4, True), T0) == "accepted"
    assert hub.send("door-101", door("door-101", 9, False), T0 + 10) == "accepted"
    before = snapshot(hub, "door-101")
    assert hub.send("door-101", door("door-101", 4, True), T0 + 20) == "replayed"
    assert hub.send("door-101", door("door-101", 8, True), T0 + 30) == "replayed"
    assert snapshot(hub, "door-101") == before
    assert hub.store.device_state("door-101")["door_open"] == 0
    assert hub.store.rejection_counts() == {"replayed": 2}
    # the next fresh counter is accepted
    assert hub.send("door-101", door("door-101", 10, True), T0 + 40) == "accepted"


def test_broker_redelivery_of_a_stored_frame_is_a_duplicate_not_a_replay(hub: Hub) -> None:
    """A PUBACK lost with the hub's connection: the broker re-sends the frame (DUP)
    after later frames of the device were stored. Only a frame the hub has is a
    duplicate; a re-sent frame it never stored, or an old frame published anew
    (no DUP), is a replay."""
    for counter in (4, 5, 9):
        assert hub.send("door-101", door("door-101", counter, True), T0 + counter) == "accepted"
    before = snapshot(hub, "door-101")
    redeliver = hub.pipeline.handle_mqtt
    assert redeliver(topic("door-101"), door("door-101", 5, True), T0 + 20,
                     redelivered=True) == "duplicate"
    assert redeliver(topic("door-101"), door("door-101", 4, True), T0 + 21,
                     redelivered=True) == "duplicate"
    assert redeliver(topic("door-101"), door("door-101", 6, True), T0 + 22,
                     redelivered=True) == "replayed"  # never stored: not ours to excuse
    assert redeliver(topic("door-101"), door("door-101", 5, True), T0 + 23) == "replayed"
    assert snapshot(hub, "door-101")[:4] == before[:4]
    assert hub.store.rejection_counts() == {"duplicate": 2, "replayed": 2}


def test_redelivery_inside_one_batch_sees_the_frames_of_that_batch(hub: Hub) -> None:
    with hub.store.batch():
        assert hub.send("door-101", door("door-101", 1, True), T0) == "accepted"
        assert hub.send("door-101", door("door-101", 2, False), T0 + 1) == "accepted"
        assert hub.pipeline.handle_mqtt(topic("door-101"), door("door-101", 1, True), T0 + 2,
                                        redelivered=True) == "duplicate"
    assert hub.store.rejection_counts() == {"duplicate": 1}


def test_counters_are_per_device(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 50, True), T0) == "accepted"
    assert hub.send("door-102", door("door-102", 1, True), T0) == "accepted"
    assert hub.store.last_counter("door-101") == 50
    assert hub.store.last_counter("door-102") == 1


def test_replay_protection_survives_restart(hub: Hub) -> None:
    data = door("door-101", 7, True)
    assert hub.send("door-101", data, T0) == "accepted"
    hub.restart()
    assert hub.send("door-101", data, T0 + 5) == "duplicate"
    assert hub.send("door-101", door("door-101", 6, False), T0 + 6) == "replayed"
    assert len(hub.store.events()) == 1


BAD_INPUTS = [
    ("bad_tag", "door-101", lambda: frame.encode(KEY_102, b"door-101", frame.T_DOOR, 5, 0, b"\x01")),
    ("bad_tag_other_device", "door-102", lambda: door("door-101", 5, True)),
    ("truncated", "door-101", lambda: door("door-101", 5, True)[:-3]),
    ("oversized", "door-101", lambda: door("door-101", 5, True) + bytes(70)),
    ("bad_version", "door-101", lambda: b"\xa2" + door("door-101", 5, True)[1:]),
    ("unknown_type", "door-101",
     lambda: frame.encode(KEY_101, b"door-101", 0x27, 5, 0, b"\x01")),
    ("bad_body", "door-101", lambda: frame.encode(KEY_101, b"door-101", frame.T_DOOR, 5, 0, b"\x02")),
    ("unknown_device", "door-999", lambda: door("door-101", 5, True)),
]


@pytest.mark.parametrize(("reason", "device", "make"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_rejection_is_counted_by_reason_and_changes_nothing(hub: Hub, reason: str, device: str,
                                                             make) -> None:
    expected = reason.removesuffix("_other_device")
    assert hub.send(device, make(), T0) == expected
    assert hub.store.rejection_counts() == {expected: 1}
    assert hub.store.events() == []
    assert hub.store.all_flat_activity() == {}
    assert hub.store.last_counter(device) == 0
    assert hub.pipeline.stats["rejected"] == 1


def test_rejections_accumulate_per_reason(hub: Hub) -> None:
    good = door("door-101", 5, True)
    assert hub.send("door-101", good[:-1], T0) == "truncated"
    assert hub.send("door-101", good[:10], T0) == "truncated"
    assert hub.send("door-102", good, T0) == "bad_tag"
    assert hub.pipeline.handle_mqtt(topic("door-101", site_id="moonrise"), good, T0) == "unknown_device"
    assert hub.send("door-101", good, T0) == "accepted"
    assert hub.send("door-101", good, T0) == "duplicate"
    assert hub.store.rejection_counts() == {"truncated": 2, "bad_tag": 1, "unknown_device": 1,
                                            "duplicate": 1}


# ---- inactivity ----------------------------------------------------------------------

def test_inactivity_alarm_raised_once_at_threshold(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == T0 + TH
    assert hub.pipeline.evaluate(T0 + TH - 1) == []
    assert hub.store.alarms() == []
    raised = hub.pipeline.evaluate(T0 + TH)
    assert len(raised) == 1
    doc = raised[0]
    assert doc["flat"] == "b1-101"
    assert doc["resident"] == {"id": "r-101", "name": "Wang Lan"}
    assert doc["last_event"]["type"] == "door" and doc["last_event"]["state"] == "closed"
    assert hub.store.alarms() == [doc]
    # one alarm per silence period: the rule has nothing more to wait for (what
    # remains is the alarm's escalation if nobody acknowledges it)
    assert hub.pipeline.engine.next_deadline(hub.store, T0 + TH) is None
    assert hub.pipeline.evaluate(T0 + 30 * H) == []
    assert len(hub.store.alarms()) == 1
    assert hub.pipeline.stats["alarms"] == 1


def test_alarm_document_matches_protocol(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 17, True), T0 - 60) == "accepted"
    assert hub.send("door-101", door("door-101", 18, False), T0) == "accepted"
    (doc,) = hub.pipeline.evaluate(T0 + TH + 5)
    for key in ("schema", "id", "seq", "type", "severity", "state", "site", "building", "flat",
                "device", "resident", "raised_at", "detail", "last_event"):
        assert key in doc, key
    assert doc["schema"] == "anju.alarm/1"
    assert uuid.UUID(doc["id"]).version == 4
    assert doc["seq"] == 1
    assert (doc["type"], doc["severity"], doc["state"]) == ("inactivity", "high", "raised")
    assert (doc["site"], doc["building"], doc["flat"], doc["device"]) == ("sunrise", "b1", "b1-101",
                                                                          "door-101")
    assert doc["resident"] == {"id": "r-101", "name": "Wang Lan"}
    raised_at = datetime.datetime.fromisoformat(doc["raised_at"])
    assert raised_at.utcoffset() == datetime.timedelta(0)
    assert raised_at.timestamp() == T0 + TH + 5
    assert doc["detail"]["silent_for_s"] == int(TH + 5)
    assert doc["detail"]["threshold_s"] == int(TH)
    last = doc["last_event"]
    assert last["type"] == "door" and last["state"] == "closed"
    assert last["device"] == "door-101" and last["counter"] == 18
    assert datetime.datetime.fromisoformat(last["at"]).timestamp() == T0
    json.dumps(doc)  # serialisable as is


def test_outbox_holds_the_alarm_document(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    assert hub.store.outbox_head() == []
    (doc,) = hub.pipeline.evaluate(T0 + TH)
    rows = hub.store.outbox_head(limit=10)
    assert len(rows) == 1
    _, out_topic, payload = rows[0]
    assert out_topic == "anju/upstream/sunrise/alarms"
    assert json.loads(payload) == doc
    assert hub.store.outbox_depth() == 1


def test_upstream_prefix_is_used_for_the_alarm_topic(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db")
    try:
        pipe = Pipeline(site(), store, upstream_prefix="city/v2")
        assert pipe.handle_mqtt(topic("door-101"), door("door-101", 1, False), T0) == "accepted"
        pipe.evaluate(T0 + TH)
        assert store.outbox_head()[0][1] == "city/v2/sunrise/alarms"
    finally:
        store.close()


def test_door_event_pushes_the_deadline(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    assert hub.send("door-101", door("door-101", 2, True), T0 + 11 * H) == "accepted"
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == T0 + 11 * H + TH
    assert hub.pipeline.evaluate(T0 + TH) == []
    assert hub.pipeline.evaluate(T0 + 11 * H + TH - 1) == []
    (doc,) = hub.pipeline.evaluate(T0 + 11 * H + TH)
    assert doc["last_event"]["state"] == "open" and doc["last_event"]["counter"] == 2


def test_heartbeat_is_not_activity(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    assert hub.send("door-101", heartbeat("door-101", 2), T0 + 6 * H) == "accepted"
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == T0 + TH
    assert len(hub.pipeline.evaluate(T0 + TH)) == 1


def test_first_word_starts_the_silence(hub: Hub) -> None:
    assert hub.send("door-101", heartbeat("door-101", 1), T0) == "accepted"
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == T0 + TH


def test_activity_after_alarm_starts_a_new_period(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    (first,) = hub.pipeline.evaluate(T0 + TH)
    assert hub.send("door-101", door("door-101", 2, True), T0 + 20 * H) == "accepted"
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == T0 + 20 * H + TH
    (second,) = hub.pipeline.evaluate(T0 + 20 * H + TH)
    assert second["id"] != first["id"]
    assert queued_alarm_ids(hub) == {first["id"], second["id"]}


def test_flat_without_resident_living_alone_never_gets_a_deadline(hub: Hub) -> None:
    assert hub.send("door-102", door("door-102", 1, False), T0) == "accepted"
    assert hub.store.all_flat_activity()["b1-102"][0] == T0
    assert hub.pipeline.engine.next_deadline(hub.store, 0) is None
    assert hub.pipeline.evaluate(T0 + 100 * H) == []
    assert hub.store.alarms() == []


def test_per_flat_threshold_and_soonest_deadline(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    assert hub.send("door-103", door("door-103", 1, False), T0 + H) == "accepted"
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == T0 + 3 * H  # b1-103: 2 h threshold
    (doc,) = hub.pipeline.evaluate(T0 + 3 * H)
    assert doc["flat"] == "b1-103" and doc["detail"]["threshold_s"] == 7200
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == T0 + TH


def test_plausible_device_time_dates_the_activity(hub: Hub) -> None:
    # a queued "door closed" delivered an hour late carries its device time
    mp_epoch = 946684800
    moved_at = T0 - H
    data = door("door-101", 1, False, device_time=int(moved_at - mp_epoch))
    assert hub.send("door-101", data, T0) == "accepted"
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == moved_at + TH


def test_restart_rebuilds_the_timer_from_the_store(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, True), T0) == "accepted"
    assert hub.send("door-101", door("door-101", 2, False), T0 + 2 * H) == "accepted"
    deadline = hub.pipeline.engine.next_deadline(hub.store, 0)
    assert deadline == T0 + 2 * H + TH
    hub.restart()
    assert hub.pipeline.engine.next_deadline(hub.store, 0) == deadline
    assert hub.pipeline.evaluate(deadline - 1) == []
    hub.restart()
    (doc,) = hub.pipeline.evaluate(deadline)
    assert doc["last_event"]["counter"] == 2
    hub.restart()
    # the raised alarm survives too: nothing more after another restart
    assert hub.pipeline.engine.next_deadline(hub.store, 0) is None
    assert hub.pipeline.evaluate(deadline + 20 * H) == []
    assert [a["id"] for a in hub.store.alarms()] == [doc["id"]]
    assert queued_alarm_ids(hub) == {doc["id"]}


# ---- lifecycle and escalation ----------------------------------------------------------

def test_unacknowledged_alarm_escalates_up_to_the_limit(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    (doc,) = hub.pipeline.evaluate(T0 + TH)
    # escalation (default: every 5 min, at most twice) is the next thing to wait for
    assert hub.pipeline.next_deadline() == T0 + TH + 300
    hub.pipeline.evaluate(T0 + TH + 300)
    esc = hub.store.alarm(doc["id"])
    assert (esc["seq"], esc["severity"], esc["escalation"]["level"]) == (2, "critical", 1)
    hub.pipeline.evaluate(T0 + TH + 600)
    assert hub.store.alarm(doc["id"])["escalation"]["level"] == 2
    assert hub.pipeline.next_deadline() is None
    hub.pipeline.evaluate(T0 + TH + 3600)
    assert hub.store.alarm(doc["id"])["seq"] == 3
    # every version is queued for upstream, in order; escalations also to the second target
    rows = [(t, json.loads(p)["seq"]) for _, t, p in hub.store.outbox_head(10)]
    esc_topic = "anju/upstream/sunrise/escalations"
    assert [s for t, s in rows if t == hub.pipeline.alarm_topic] == [1, 2, 3]
    assert rows == [(hub.pipeline.alarm_topic, 1), (hub.pipeline.alarm_topic, 2), (esc_topic, 2),
                    (hub.pipeline.alarm_topic, 3), (esc_topic, 3)]


def test_acknowledged_alarm_does_not_escalate(hub: Hub) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    (doc,) = hub.pipeline.evaluate(T0 + TH)
    outcome, new = hub.pipeline.command(doc["id"], "acknowledged", "platform", T0 + TH + 60,
                                        command_id="c-1")
    assert outcome == "applied" and new["seq"] == 2 and new["state"] == "acknowledged"
    assert hub.pipeline.next_deadline() is None
    hub.pipeline.evaluate(T0 + TH + 3600)
    assert hub.store.alarm(doc["id"])["seq"] == 2


@pytest.mark.parametrize(("commands", "final_state", "final_seq"), [
    ([("dispatched", "c1"), ("acknowledged", "c2"), ("resolved", "c3")], "resolved", 4),
    ([("acknowledged", "c1"), ("acknowledged", "c1"), ("acknowledged", "c9")], "acknowledged", 2),
    ([("resolved", "c1"), ("acknowledged", "c2"), ("dispatched", "c3")], "resolved", 2),
    ([("acknowledged", "c1"), ("dispatched", "c2")], "acknowledged", 2),
    ([("false_alarm", "c1"), ("resolved", "c2")], "false_alarm", 2),
])
def test_duplicate_and_out_of_order_commands_leave_a_consistent_state(
        hub: Hub, commands: list, final_state: str, final_seq: int) -> None:
    assert hub.send("door-101", door("door-101", 1, False), T0) == "accepted"
    (doc,) = hub.pipeline.evaluate(T0 + TH)
    for i, (state, cid) in enumerate(commands):
        hub.pipeline.command(doc["id"], state, "platform", T0 + TH + 10 + i, command_id=cid)
    now = hub.store.alarm(doc["id"])
    assert (now["state"], now["seq"]) == (final_state, final_seq)
    trail = hub.store.transitions(doc["id"])
    assert [t["seq"] for t in trail] == list(range(1, final_seq + 1))


def test_command_for_unknown_alarm(hub: Hub) -> None:
    assert hub.pipeline.command("no-such-alarm", "resolved", "platform", T0)[0] == "unknown_alarm"


def test_one_open_alarm_per_cause_and_reraise_after_resolution(hub: Hub) -> None:
    book = hub.pipeline.book
    with hub.store.transaction() as tx:
        first = book.raise_alarm(tx, "tamper:door-101", _doc("tamper"), T0)
        assert first is not None
        assert book.raise_alarm(tx, "tamper:door-101", _doc("tamper"), T0 + 1) is None
    hub.pipeline.command(first["id"], "resolved", "office", T0 + 2)
    with hub.store.transaction() as tx:
        again = book.raise_alarm(tx, "tamper:door-101", _doc("tamper"), T0 + 3)
    assert again is not None and again["id"] != first["id"]


def queued_alarm_ids(hub: Hub) -> set:
    """Distinct alarms waiting in the outbox (escalation updates share their alarm's id)."""
    return {json.loads(p)["id"] for _, _, p in hub.store.outbox_head(1000)}


def _doc(kind: str) -> dict:
    return {"schema": "anju.alarm/1", "id": str(uuid.uuid4()), "seq": 1, "type": kind,
            "severity": "medium", "state": "raised", "flat": "b1-101", "device": "door-101"}
