"""The outbox per forwarding target, the per-alarm head query, dead letters,
the migration of an older database and the backoff schedule (pure parts)."""
import random
import sqlite3

import pytest

from hub.forward.outbox import Backoff
from hub.store import Store


def doc(alarm_id, seq):
    return {"id": alarm_id, "seq": seq, "type": "smoke" if alarm_id == "fire" else "x",
            "severity": "high", "state": "raised"}


def fill(store):
    with store.transaction() as tx:
        tx.insert_alarm(doc("a", 1), 1.0, "t")
        tx.insert_alarm(doc("fire", 1), 2.0, "t", priority=100)
        tx.update_alarm(doc("a", 2), 3.0, "rules", None, "t")
        tx.update_alarm(doc("fire", 2), 4.0, "rules", None, "t")


def test_each_document_is_queued_once_per_target(tmp_path):
    store = Store(tmp_path / "hub.db")
    store.targets = ("mqtt", "webhook")
    fill(store)
    assert store.outbox_targets() == {"mqtt": 4, "webhook": 4}
    # draining one target leaves the other's rows alone
    with store.transaction() as tx:
        for row in store.outbox_heads("mqtt", 10):
            tx.outbox_delivered(row[0])
    assert store.outbox_targets() == {"mqtt": 2, "webhook": 4}


def test_heads_offer_one_version_per_alarm_fire_first(tmp_path):
    store = Store(tmp_path / "hub.db")
    fill(store)
    heads = [(r[1], r[2]) for r in store.outbox_heads("mqtt", 10)]
    assert heads == [("fire", 1), ("a", 1)]
    with store.transaction() as tx:
        tx.outbox_delivered(store.outbox_heads("mqtt", 10)[0][0])
    assert [(r[1], r[2]) for r in store.outbox_heads("mqtt", 10)] == [("fire", 2), ("a", 1)]


def test_dead_letter_keeps_the_document(tmp_path):
    store = Store(tmp_path / "hub.db")
    fill(store)
    row = store.outbox_heads("mqtt", 1)[0]
    with store.transaction() as tx:
        tx.outbox_attempt(row[0])
        tx.outbox_dead_letter(row[0], "HTTP 400", 9.0)
    (letter,) = store.dead_letters()
    assert (letter["alarm_id"], letter["seq"], letter["attempts"], letter["reason"]) == \
        ("fire", 1, 2, "HTTP 400")
    assert '"id": "fire"' in letter["payload"] and store.outbox_depth() == 3


def test_an_older_outbox_gains_the_target_column(tmp_path):
    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("CREATE TABLE outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id TEXT NOT NULL,"
               " seq INTEGER NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,"
               " created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
               " priority INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO outbox(alarm_id, seq, topic, payload, created_at) "
               "VALUES('old', 1, 't', '{}', 1.0)")
    db.commit()
    db.close()
    store = Store(tmp_path / "old.db")
    assert [(r[1], r[2]) for r in store.outbox_heads("mqtt", 5)] == [("old", 1)]


@pytest.mark.parametrize("attempt", range(0, 12))
def test_backoff_grows_with_jitter_and_is_capped(attempt):
    b = Backoff(base=0.5, cap=60.0, rng=random.Random(attempt))
    top = min(60.0, 0.5 * 2 ** attempt)
    delays = [b.delay(attempt) for _ in range(50)]
    assert all(top / 2 <= d <= top for d in delays)
    assert len(set(delays)) > 1  # jitter: retries of many alarms do not stampede
