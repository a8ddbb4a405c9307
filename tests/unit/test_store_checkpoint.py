"""WAL checkpoints run in the store's checkpointer thread, not inside a COMMIT:
with it running, SQLite's automatic checkpoint is off and the thread copies
the WAL into the database file; stopped, the automatic one is back."""
import time

from hub.verify.frames import Reading
from hub.store import Store


def fill(store, n, start=1):
    with store.batch():
        for i in range(start, start + n):
            store.append_event(Reading("door-1", i, "door", {"open": True, "pad": "x" * 400},
                                       0, "mqtt"), 1_795_000_000.0 + i)


def wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_checkpointer_copies_the_wal_into_the_database(tmp_path):
    path = tmp_path / "hub.db"
    store = Store(path)
    try:
        store.start_checkpointer(interval_s=0.05)
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        size = path.stat().st_size
        for k in range(10):
            fill(store, 1000, 1 + k * 1000)  # ~5 MB through the WAL
        # the main file grows only when the WAL is copied back into it
        wait_for(lambda: path.stat().st_size > size + 3_000_000)
        assert store.wal_pages is not None
        assert len(store.events()) == 10_000
    finally:
        store.close()
    assert Store(path).last_counter("door-1") == 10_000


def test_without_the_checkpointer_sqlite_checkpoints_itself(tmp_path):
    store = Store(tmp_path / "hub.db")
    try:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        store.start_checkpointer(interval_s=0.05)
        store.stop_checkpointer()
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        store.close()
