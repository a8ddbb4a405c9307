"""hub.store.Store keeps counters, device state, flat activity and rule state in
memory and writes them (and new events) just before COMMIT. These tests hold it
to one promise: what the live store answers is what a store freshly opened on
the same file answers, after commits, failed decisions, failed batches and
writes outside a transaction. Real SQLite files, the real pipeline and rules;
failures are real SQLite errors raised by triggers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from anju import frame
from hub import StoreError
from hub.config import site as config
from hub.config import yamlfile
from hub.pipeline import Pipeline, default_rules
from hub.service import HubService
from hub.clock import SystemClock
from hub.store import Store

KEY = bytes(range(32))
DEVICES = ("door-1", "door-2", "door-3")
SITE_YAML = """\
site: {id: s1}
rules: {door_left_open: {after: 10m}}
buildings:
  - id: b1
    flats:
      - id: f1
        inactivity: 1h
        residents: [{id: r1, name: Wang Lan, lives_alone: true}]
      - id: f2
        residents: [{id: r2, name: Li Wei, lives_alone: true}]
      - id: f3
        residents: [{id: r3, name: Chen Bo}]
devices:
  - {id: door-1, kind: door_sensor, board: esp32c3, flat: f1, transport: mqtt, frame_key: %(k)s}
  - {id: door-2, kind: door_sensor, board: esp32c3, flat: f2, transport: mqtt, frame_key: %(k)s}
  - {id: door-3, kind: door_sensor, board: esp32c3, flat: f3, transport: mqtt, frame_key: %(k)s}
""" % {"k": KEY.hex()}
T0 = 1_795_000_000.0


def site():
    return config.parse_site(yamlfile.loads(SITE_YAML, "site.yaml"))


def door(device, counter, is_open):
    return frame.encode(KEY, device.encode(), frame.T_DOOR, counter, 0, frame.door_body(is_open))


def tamper(device, counter, is_open):
    return frame.encode(KEY, device.encode(), frame.T_TAMPER, counter, 0, bytes([is_open]))


def topic(device):
    return "anju/s1/%s/event" % device


def view(store):
    """Everything the rules and the API read from the hot tables, plus the logs."""
    rules = ("door_left_open", "offline", "tamper", "attack", "clock_skew", "smoke")
    return {
        "counters": {d: store.last_counter(d) for d in DEVICES},
        "states": {d: store.device_state(d) for d in DEVICES},
        "last_seen": store.last_seen_all(),
        "flats": store.all_flat_activity(),
        "rules": {r: store.rule_items(r) for r in rules},
        "offline_fields": store.rule_fields("offline", ("first_seen", "alarmed_basis")),
        "events": store.events(),
        "last_event_id": store.last_event_id(),
        "alarms": store.alarms(),
        "transitions": store.transitions(),
        "outbox": store.outbox_depth(),
        "rejections": store.rejection_counts(),
        "open_causes": {a["cause"]: store.has_open_alarm(a["cause"])
                        for a in store.alarms() if a.get("cause")},
    }


def reopened(path):
    other = Store(path)
    try:
        return view(other)
    finally:
        other.close()


@pytest.fixture
def hub(tmp_path):
    store = Store(tmp_path / "hub.db")
    s = site()
    pipe = Pipeline(s, store, rules=default_rules(s))
    yield store, pipe, tmp_path / "hub.db"
    store.close()


def test_committed_batch_is_in_memory_and_in_the_file(hub):
    store, pipe, path = hub
    with store.batch():
        assert pipe.handle_mqtt(topic("door-1"), door("door-1", 1, True), T0) == "accepted"
        assert pipe.handle_mqtt(topic("door-2"), door("door-2", 1, True), T0 + 1) == "accepted"
        assert pipe.handle_mqtt(topic("door-2"), door("door-2", 1, True), T0 + 2) == "duplicate"
        assert pipe.handle_mqtt(topic("door-1"), tamper("door-1", 2, True), T0 + 3) == "accepted"
    live = view(store)
    assert live["counters"] == {"door-1": 2, "door-2": 1, "door-3": 0}
    assert live["states"]["door-1"]["door_open"] == 1 and live["states"]["door-1"]["case_open"] == 1
    assert set(live["rules"]["door_left_open"]) == {"door-1", "door-2"}
    assert [a["type"] for a in live["alarms"]] == ["tamper"]
    assert live["rejections"] == {"duplicate": 1}
    assert reopened(path) == live


def test_a_failing_decision_is_undone_alone_in_memory_too(hub):
    store, pipe, path = hub
    # the tamper alarm's row cannot be written: that frame's decision fails
    store.db.execute("CREATE TRIGGER no_alarms BEFORE INSERT ON alarms "
                     "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with store.batch():
        assert pipe.handle_mqtt(topic("door-1"), door("door-1", 1, True), T0) == "accepted"
        with pytest.raises(StoreError):
            pipe.handle_mqtt(topic("door-2"), tamper("door-2", 1, True), T0 + 1)
        assert pipe.handle_mqtt(topic("door-3"), door("door-3", 1, True), T0 + 2) == "accepted"
    live = view(store)
    assert live["counters"] == {"door-1": 1, "door-2": 0, "door-3": 1}
    assert live["states"]["door-2"] is None
    assert [e["device"] for e in live["events"]] == ["door-1", "door-3"]
    assert [e["counter"] for e in live["events"]] == [1, 1]
    assert live["alarms"] == []
    assert reopened(path) == live
    # the same frame is accepted once the store can take it
    store.db.execute("DROP TRIGGER no_alarms")
    assert pipe.handle_mqtt(topic("door-2"), tamper("door-2", 1, True), T0 + 3) == "accepted"
    assert view(store) == reopened(path)


def test_a_batch_whose_rows_cannot_be_written_leaves_nothing_anywhere(hub):
    store, pipe, path = hub
    with store.batch():
        pipe.handle_mqtt(topic("door-1"), door("door-1", 1, True), T0)
    before = view(store)
    # events are written just before COMMIT: the failure comes at the end of the batch
    store.db.execute("CREATE TRIGGER no_door_2 BEFORE INSERT ON events WHEN "
                     "NEW.device_id = 'door-2' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(StoreError):
        with store.batch():
            assert pipe.handle_mqtt(topic("door-1"), door("door-1", 2, False), T0 + 1) == "accepted"
            assert pipe.handle_mqtt(topic("door-2"), door("door-2", 1, True), T0 + 2) == "accepted"
            assert pipe.handle_mqtt(topic("door-2"), tamper("door-2", 2, True), T0 + 3) == "accepted"
    assert view(store) == before == reopened(path)
    # and the store goes on from there: ids continue without a gap
    with store.batch():
        pipe.handle_mqtt(topic("door-1"), door("door-1", 2, False), T0 + 4)
    assert [e["counter"] for e in store.events("door-1")] == [1, 2]
    assert store.last_event_id() == 2
    assert view(store) == reopened(path)


def test_an_exception_in_a_decision_outside_sqlite_also_undoes_memory(hub):
    store, pipe, path = hub

    class Boom(Exception):
        pass

    with store.batch():
        pipe.handle_mqtt(topic("door-1"), door("door-1", 1, True), T0)
        with pytest.raises(Boom):
            with store.transaction() as tx:
                tx.rule_set("door_left_open", "door-3", {"opened_at": T0, "alarmed": False})
                tx.set_flat_activity("f3", T0, 99)
                tx.update_device_state("door-3", {"open": True}, T0, 99)
                raise Boom()
    live = view(store)
    assert "door-3" not in live["rules"]["door_left_open"]
    assert "f3" not in live["flats"] and live["states"]["door-3"] is None
    assert live == reopened(path)


def test_writes_outside_a_transaction_reach_the_file_at_once(hub):
    store, pipe, path = hub
    store.rule_set("offline", "door-1", {"first_seen": T0})
    store.set_flat_activity("f1", T0, None)
    assert reopened(path)["rules"]["offline"] == {"door-1": {"first_seen": T0}}
    store.rule_delete("offline", "door-1")
    assert view(store) == reopened(path)


def test_an_alarm_raised_in_a_batch_names_the_event_of_that_batch(hub):
    store, pipe, path = hub
    with store.batch():
        pipe.handle_mqtt(topic("door-1"), door("door-1", 1, True), T0)
        pipe.handle_mqtt(topic("door-1"), door("door-1", 2, False), T0 + 60)
        # an hour and a bit of silence later, inside the same batch, the rule runs on time
        with store.transaction() as tx:
            raised = pipe.engine.on_time(tx, T0 + 60 + 3601)
            pipe._raise(tx, raised, T0 + 60 + 3601)
    alarms = [a for a in store.alarms() if a["type"] == "inactivity"]
    assert len(alarms) == 1
    assert alarms[0]["flat"] == "f1"
    assert view(store) == reopened(path)


def test_memory_matches_the_file_over_a_random_run_with_failures(tmp_path):
    """Many batches of door, tamper, duplicate, replayed and forged frames, with
    rules run on time between them; now and then a decision or a whole batch
    fails. After every batch the live store and a reopened one agree."""
    rng = random.Random(20261129)
    path = tmp_path / "hub.db"
    store = Store(path)
    s = site()
    pipe = Pipeline(s, store, rules=default_rules(s))
    counters = {d: 0 for d in DEVICES}
    now = T0
    try:
        for round_ in range(60):
            poison = rng.random() < 0.15
            if poison:
                store.db.execute("CREATE TRIGGER poison BEFORE INSERT ON events WHEN "
                                 "NEW.counter %% 7 = %d BEGIN SELECT RAISE(ABORT, 'x'); END"
                                 % rng.randrange(7))
            if rng.random() < 0.15:
                store.db.execute("CREATE TRIGGER no_alarms BEFORE INSERT ON alarm_transitions "
                                 "BEGIN SELECT RAISE(ABORT, 'x'); END")
            sent = dict(counters)
            try:
                with store.batch():
                    for _ in range(rng.randrange(1, 12)):
                        now += rng.choice((1, 30, 700, 4000))
                        d = rng.choice(DEVICES)
                        kind = rng.random()
                        if kind < 0.1:
                            payload = door(d, max(1, sent[d]), True)  # duplicate or replay
                        elif kind < 0.15:
                            payload = door(d, sent[d] + 1, True)[:-1] + b"\x00"  # forged
                        else:
                            sent[d] += 1
                            make = tamper if kind < 0.3 else door
                            payload = make(d, sent[d], rng.random() < 0.5)
                        try:
                            pipe.handle_mqtt(topic(d), payload, now)
                        except StoreError:
                            sent[d] = store.last_counter(d)
                    if rng.random() < 0.3:
                        with store.transaction() as tx:
                            pipe._raise(tx, pipe.engine.on_time(tx, now), now)
                counters = sent
            except StoreError:
                pass
            finally:
                store.db.execute("DROP TRIGGER IF EXISTS poison")
                store.db.execute("DROP TRIGGER IF EXISTS no_alarms")
            live = view(store)
            assert live == reopened(path), "round %d" % round_
            counters = {d: store.last_counter(d) for d in DEVICES}
        assert len(store.events()) > 100  # the run did accept frames
    finally:
        store.close()


def test_hub_batch_with_a_frame_the_store_refuses_acknowledges_all_the_others(tmp_path):
    """The ingest task applies queued frames under one commit; when that batch
    fails it applies them again one commit each: only the refused frame goes
    unacknowledged (the broker offers it again)."""
    s = site()
    service = HubService(s, tmp_path / "hub.db", SystemClock(), {"host": "127.0.0.1", "port": 1},
                         {"host": "127.0.0.1", "port": 1})
    try:
        service.store.db.execute("CREATE TRIGGER no_door_2 BEFORE INSERT ON events WHEN "
                                 "NEW.device_id = 'door-2' BEGIN SELECT RAISE(ABORT, 'x'); END")
        acked = []
        items = [("mqtt", topic(d), door(d, c, c % 2 == 1), False,
                  (lambda d=d, c=c: acked.append((d, c))), False)
                 for c in (1, 2) for d in DEVICES]
        acks = service._apply_batch(items)
        for ack in acks:
            ack()
        assert sorted(acked) == [("door-1", 1), ("door-1", 2), ("door-3", 1), ("door-3", 2)]
        assert service.ingest_errors == 2
        assert service.frames_seen == 6
        assert service.pipeline.stats["accepted"] == 4
        assert [(e["device"], e["counter"]) for e in service.store.events()] == [
            ("door-1", 1), ("door-3", 1), ("door-1", 2), ("door-3", 2)]
        assert service.store.last_counter("door-2") == 0
        assert view(service.store) == reopened(tmp_path / "hub.db")
    finally:
        service.store.close()
