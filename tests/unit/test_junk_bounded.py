"""Junk on the device network costs O(1) storage and a bounded log.

100,000 frames on random topics (random site and device ids, some of them
60,000 characters long, random payloads) go through the real pipeline over a
real SQLite store with the hub's JSON log formatter. Before, every distinct id
became a permanent `rejections` row and a full-length log line (1,000 frames
with 60,000-character ids: a 124 MB database, 125 MB of WAL, 120 MB of log).
"""
import io
import logging
import os
import random

from hub.config import site as config
from hub.config import yamlfile
from hub.pipeline import LOG_ID_CHARS, Pipeline, RejectionLog
from hub.store import Store

SITE = """
site: {id: sunrise, name: Sunrise Gardens}
buildings:
  - id: b1
    flats:
      - id: b1-101
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt,
     frame_key: "%s"}
""" % bytes(range(32)).hex()

FRAMES = 100_000
DB_GROWTH_MAX = 256 * 1024     # the database and its WAL together
LOG_GROWTH_MAX = 64 * 1024


def _size(path):
    total = 0
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            total += os.path.getsize(str(path) + suffix)
    return total


def _junk_topic(rnd, i):
    long_id = "x" * 60_000 if i % 1000 == 0 else None
    device = long_id or "".join(rnd.choice("abcdefghij0123456789-") for _ in range(rnd.randint(1, 40)))
    site = "sunrise" if i % 3 else "site-%d" % rnd.randint(0, 10 ** 9)
    leaf = "event" if i % 2 else "state"
    return "anju/%s/%s/%s" % (site, device, leaf)


def test_100000_junk_frames_grow_database_and_log_by_a_small_bound(tmp_path):
    from host_tools.cli import JsonFormatter
    site = config.parse_site(yamlfile.loads(SITE, "site.yaml"))
    path = tmp_path / "hub.db"
    store = Store(path)
    pipeline = Pipeline(site, store)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("anju.hub.pipeline")
    logger.addHandler(handler)
    try:
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = _size(path)
        rnd = random.Random(1)
        t = 1_795_000_000.0
        outcomes = set()
        for i in range(FRAMES):
            payload = rnd.randbytes(rnd.randint(0, 80))
            outcomes.add(pipeline.handle_mqtt(_junk_topic(rnd, i), payload, t + i * 0.001))
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        grown = _size(path) - before
        logged = len(out.getvalue().encode())
    finally:
        logger.removeHandler(handler)
        store.close()
    assert pipeline.stats["rejected"] == FRAMES  # every frame counted...
    assert outcomes <= {"unknown_device"}, outcomes
    assert grown < DB_GROWTH_MAX, grown  # ...in one row per reason
    assert logged < LOG_GROWTH_MAX, logged
    assert "x" * (LOG_ID_CHARS + 1) not in out.getvalue()


def test_rejection_log_bursts_then_one_line_per_interval_and_says_what_it_left_out():
    now = [0.0]
    lines = []
    rl = RejectionLog(burst=3, every_s=10.0, now=lambda: now[0])
    logger = logging.getLogger("anju.hub.pipeline")

    class Grab(logging.Handler):
        def emit(self, record):
            lines.append(getattr(record, "not_logged_before", 0))

    h = Grab()
    logger.addHandler(h)
    try:
        logged = [rl.warn("d", "bad_tag") for _ in range(10)]
        assert logged == [True] * 3 + [False] * 7
        now[0] = 10.0
        assert rl.warn("d", "bad_tag") is True
        assert rl.warn("d", "bad_tag") is False
        assert rl.warn("d", "truncated") is True  # each reason has its own budget
    finally:
        logger.removeHandler(h)
    assert lines == [0, 0, 0, 7, 0]
