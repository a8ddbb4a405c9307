"""The store's alarm feed (hub/store.py): an increasing id per alarm change,
written in the change's transaction; listeners told after the commit only; the
catch-up queries the live stream uses; an older store numbered once."""
import pytest

from hub.store import Store


def doc(alarm_id, seq=1, state="raised"):
    return {"id": alarm_id, "seq": seq, "state": state, "type": "tamper", "severity": "high",
            "flat": "b1-101", "device": "door-101"}


def raise_(store, alarm_id, at=1.0):
    with store.transaction():
        store.insert_alarm(doc(alarm_id), at, "t")


def move(store, alarm_id, seq, state, at=2.0):
    with store.transaction():
        store.update_alarm(doc(alarm_id, seq, state), at, "li-wei", None, "t")


def test_ids_increase_and_each_alarm_is_replayed_once_in_its_newest_version(tmp_path):
    store = Store(tmp_path / "hub.db")
    assert store.alarm_feed_last() == 0 and store.alarm_changes_after(0) == []
    raise_(store, "a")
    raise_(store, "b")
    after_b = store.alarm_feed_last()
    move(store, "a", 2, "acknowledged")
    move(store, "b", 2, "resolved")
    move(store, "a", 3, "resolved")
    changes = store.alarm_changes_after(after_b)
    assert [(d["id"], d["seq"]) for _, d in changes] == [("b", 2), ("a", 3)]
    assert [i for i, _ in changes] == sorted(i for i, _ in changes)
    assert changes[-1][0] == store.alarm_feed_last() == 5
    assert store.alarm_changes_after(5) == []


def test_the_snapshot_has_every_open_alarm_and_the_newest_closed_ones(tmp_path):
    store = Store(tmp_path / "hub.db")
    raise_(store, "old-open")
    for name in ("c1", "c2", "c3"):
        raise_(store, name)
        move(store, name, 2, "resolved")
    raise_(store, "new-open")
    got = [d["id"] for _, d in store.alarm_snapshot(2)]
    assert got == ["old-open", "c2", "c3", "new-open"]


def test_listeners_hear_of_a_commit_and_not_of_a_rollback(tmp_path):
    store = Store(tmp_path / "hub.db")
    heard = []
    unsubscribe = store.on_alarm_change(lambda: heard.append(store.alarm_feed_last()))
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.insert_alarm(doc("x"), 1.0, "t")
            assert heard == []  # not before the commit
            raise RuntimeError("the decision failed")
    assert heard == [] and store.alarm_feed_last() == 0
    with store.batch():
        with store.transaction():
            store.insert_alarm(doc("y"), 1.0, "t")
        assert heard == []  # a batch commits once, at its end
    assert heard == [1]
    unsubscribe()
    raise_(store, "z")
    assert heard == [1]


def test_an_older_store_gets_its_transitions_numbered_once(tmp_path):
    store = Store(tmp_path / "hub.db")
    raise_(store, "a", at=1.0)
    raise_(store, "b", at=2.0)
    move(store, "a", 2, "acknowledged", at=3.0)
    store.db.execute("DROP TABLE alarm_feed")  # as a store made before the feed was
    store.close()
    store = Store(tmp_path / "hub.db")
    assert store.alarm_feed_last() == 3
    assert [(d["id"], d["seq"]) for _, d in store.alarm_changes_after(1)] == [("b", 1), ("a", 2)]
    store.close()
    assert Store(tmp_path / "hub.db").alarm_feed_last() == 3  # not numbered again

