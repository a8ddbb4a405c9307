"""The rejection path: every kind of junk is counted, changes no state and
shares its batch's commit with the valid frames beside it.

Real pipeline, real rules, real SQLite files; the statements SQLite runs are
counted with its own trace callback. The speed of this path is measured by
`python -m bench reject` (docs/performance.md), not here.
"""
from __future__ import annotations

import pytest

from anju import frame
from hub import StoreError
from hub.alarms import lifecycle
from hub.config import site as config
from hub.config import yamlfile
from hub.pipeline import UNKNOWN_ID, Pipeline
from hub.store import _CLOSED, Store

KEY = bytes(range(32))
FORGED = bytes(32)
SITE_YAML = """\
site: {id: s1}
buildings:
  - id: b1
    flats:
      - id: f1
        residents: [{id: r1, name: Wang Lan, lives_alone: true}]
      - id: f2
        residents: [{id: r2, name: Li Wei}]
devices:
  - {id: door-1, kind: door_sensor, board: esp32c3, flat: f1, transport: mqtt, frame_key: %(k)s}
  - {id: door-2, kind: door_sensor, board: esp32c3, flat: f2, transport: mqtt, frame_key: %(k)s}
""" % {"k": KEY.hex()}
T0 = 1_795_000_000.0


def door(device, counter, is_open=True, key=KEY):
    return frame.encode(key, device.encode(), frame.T_DOOR, counter, 0, frame.door_body(is_open))


def topic(device, site="s1", leaf="event"):
    return "anju/%s/%s/%s" % (site, device, leaf)


# (name, topic, payload, reason, counted under) — door-1 has counter 5 stored
JUNK = [
    ("forged tag", topic("door-1"), door("door-1", 9, key=FORGED), "bad_tag", "door-1"),
    ("replayed counter", topic("door-1"), door("door-1", 3), "replayed", "door-1"),
    ("truncated", topic("door-1"), door("door-1", 9)[:20], "truncated", "door-1"),
    ("length field past the end", topic("door-1"), door("door-1", 9)[:-1], "truncated",
     "door-1"),
    ("oversized", topic("door-1"), b"\xa1" * 4096, "oversized", "door-1"),
    ("bad version", topic("door-1"), b"\x01" + door("door-1", 9)[1:], "bad_version", "door-1"),
    ("JSON instead of a frame", topic("door-1"), b'{"open": true, "counter": 9, "pad": 1}',
     "bad_version", "door-1"),
    ("unknown device id", topic("door-9"), door("door-9", 1), "unknown_device", UNKNOWN_ID),
    ("another site", topic("door-1", site="s2"), door("door-1", 9), "unknown_device",
     "door-1"),
    ("unknown topic level", topic("door-1", leaf="config"), door("door-1", 9),
     "unknown_device", UNKNOWN_ID),
    ("topic too deep", "anju/s1/door-1/event/x", door("door-1", 9), "unknown_device",
     UNKNOWN_ID),
]


@pytest.fixture
def hub(tmp_path):
    s = config.parse_site(yamlfile.loads(SITE_YAML, "site.yaml"))
    store = Store(tmp_path / "hub.db")
    pipe = Pipeline(s, store)
    with store.batch():
        assert pipe.handle_mqtt(topic("door-1"), door("door-1", 5), T0) == "accepted"
    yield store, pipe, tmp_path / "hub.db"
    store.close()


def reopened(path, read):
    """`read(store)` on a store freshly opened on the same file."""
    other = Store(path)
    try:
        return read(other)
    finally:
        other.close()


def state(store):
    return (store.last_counter("door-1"), store.device_state("door-1"), store.events(),
            store.all_flat_activity(), store.alarms())


@pytest.mark.parametrize("name,tpc,payload,reason,counted", JUNK, ids=[j[0] for j in JUNK])
def test_junk_is_counted_and_changes_no_state(hub, name, tpc, payload, reason, counted):
    store, pipe, path = hub
    before = state(store)
    with store.batch():
        assert pipe.handle_mqtt(tpc, payload, T0 + 1) == reason
    assert state(store) == before
    rows = store.db.execute("SELECT reason, device_id, count, last_at FROM rejections").fetchall()
    assert rows == [(reason, counted, 1, T0 + 1)]
    assert pipe.stats["rejected"] == 1


def test_rejections_share_the_batch_commit_with_valid_frames(hub):
    store, pipe, path = hub
    with store.batch():  # door-1's flood raises its attack alarm here, once
        for _, tpc, payload, _, _ in JUNK:
            pipe.handle_mqtt(tpc, payload, T0 + 1)
    assert store.has_open_alarm("attack:door-1")
    statements = []
    store.db.set_trace_callback(statements.append)
    try:
        with store.batch():
            for k in range(50):
                for _, tpc, payload, _, _ in JUNK:
                    pipe.handle_mqtt(tpc, payload, T0 + 2 + k)
            assert pipe.handle_mqtt(topic("door-2"), door("door-2", 1), T0 + 60) == "accepted"
    finally:
        store.db.set_trace_callback(None)
    # 550 rejections and a valid frame: BEGIN, the event and the hot rows, the
    # rejection counts, COMMIT; no statement per rejection
    assert len(statements) < 10, statements
    assert not any("SAVEPOINT" in s for s in statements)
    counts = store.rejection_counts()
    assert sum(counts.values()) == 51 * len(JUNK)
    assert counts["unknown_device"] == 51 * 4
    assert [e["device"] for e in store.events()] == ["door-1", "door-2"]
    assert reopened(path, Store.rejection_counts) == counts


def test_counts_add_up_over_batches_and_restarts(hub):
    store, pipe, path = hub
    for batch in range(3):
        with store.batch():
            for k in range(10):
                pipe.handle_mqtt(topic("door-9"), b"junk", T0 + batch * 10 + k)
    assert reopened(path, Store.rejection_counts) == {"unknown_device": 30}
    row = reopened(path, lambda s: s.db.execute("SELECT count, last_at FROM rejections").fetchone())
    assert row == (30, T0 + 29)


def test_a_batch_that_fails_leaves_its_rejections_uncounted_in_memory_too(hub):
    store, pipe, path = hub
    store.db.execute("CREATE TRIGGER no_events BEFORE INSERT ON events "
                     "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(StoreError):
        with store.batch():
            pipe.handle_mqtt(topic("door-9"), b"junk", T0 + 1)
            pipe.handle_mqtt(topic("door-1"), b"junk", T0 + 2)
            pipe.handle_mqtt(topic("door-2"), door("door-2", 1), T0 + 3)
    assert store.rejection_counts() == {}
    store.db.execute("DROP TRIGGER no_events")
    with store.batch():
        pipe.handle_mqtt(topic("door-9"), b"junk", T0 + 4)
    assert store.rejection_counts() == {"unknown_device": 1}
    assert reopened(path, Store.rejection_counts) == {"unknown_device": 1}


def test_a_flood_of_forged_frames_keeps_one_attack_alarm_until_it_is_resolved(hub):
    store, pipe, path = hub
    with store.batch():
        for k in range(200):
            pipe.handle_mqtt(topic("door-1"), door("door-1", 10 + k, key=FORGED), T0 + 1 + k)
    alarms = [a for a in store.alarms() if a["type"] == "possible_attack"]
    assert len(alarms) == 1 and store.has_open_alarm("attack:door-1")
    assert store.last_counter("door-1") == 5
    outcome, _ = pipe.command(alarms[0]["id"], "resolved", "office", T0 + 300)
    assert outcome == "applied"
    assert not store.has_open_alarm("attack:door-1")
    assert not reopened(path, lambda s: s.has_open_alarm("attack:door-1"))
    with store.batch():
        for k in range(5):
            pipe.handle_mqtt(topic("door-1"), door("door-1", 300 + k, key=FORGED), T0 + 301 + k)
    assert len([a for a in store.alarms() if a["type"] == "possible_attack"]) == 2
    assert store.has_open_alarm("attack:door-1")
    assert reopened(path, lambda s: s.has_open_alarm("attack:door-1"))


def test_the_store_knows_the_same_closed_states_as_the_lifecycle():
    assert _CLOSED == lifecycle.CLOSED
