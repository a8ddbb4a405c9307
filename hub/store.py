"""The hub's event store: SQLite in WAL mode, one transaction per decision.

An accepted event, the state it changes, any alarm it raises and that alarm's
outbox entry are committed together, before the broker is acknowledged, so a
crash at any point leaves either all of it or none of it. The per-device
counter here is the replay protection that survives restarts.

Hot state in memory. The small tables every frame reads and writes (counters,
device_state, flat_activity, rule_state) are loaded once when the store opens
and then served from memory; the hub is their only writer (one connection, the
loop thread). Rejection counts are added up in memory and written the same
way, and which alarm causes are open is known from memory (derived from the
alarms rows), so a rejected frame costs no SQL either. Inside a transaction
their changes, and new events, are kept in memory and written by a few
multi-row INSERTs just before COMMIT, so a door frame costs no SQL statement
of its own. Every change is journalled: a
decision that fails is undone in memory as in SQLite (savepoint), and a
transaction that rolls back (or whose COMMIT fails) leaves memory exactly as
the database is. The SAVEPOINT of a decision is issued only when the decision
writes a row directly (an alarm, an outbox entry).

Alarm feed. Every alarm transition also gets a row in `alarm_feed`, whose id
(AUTOINCREMENT: increasing, never reused) numbers the changes of all alarms in
the order they were committed; the console's live stream (hub/web/alarm_stream.py)
sends it as the event id and replays what came after an id. Functions given to
`on_alarm_change` are called on the loop thread after a COMMIT that changed an
alarm.

Never stores keys. Never deletes events, access-log entries or the alarm feed
(append-only logs).
"""
import contextlib
import json
import logging
import sqlite3
import threading

from hub import StoreError

log = logging.getLogger("anju.hub.store")

_MISSING = object()  # journal value of a row that did not exist
_STATE_KEYS = ("door_open", "case_open", "battery_percent", "battery_low", "last_seen")
_STATE_COLUMNS = {"open": 0, "case_open": 1, "percent": 2, "battery_low": 3}
# hot table name -> (its dict on the Store, upsert head, delete)
_HOT_SQL = {
    "counters": ("_counters", "INSERT OR REPLACE INTO counters(device_id, last_counter,"
                 " updated_at) VALUES", "DELETE FROM counters WHERE device_id=?"),
    "states": ("_states", "INSERT OR REPLACE INTO device_state(device_id, door_open, case_open,"
               " battery_percent, battery_low, last_seen, last_event_id) VALUES",
               "DELETE FROM device_state WHERE device_id=?"),
    "flats": ("_flats", "INSERT OR REPLACE INTO flat_activity(flat_id, last_activity,"
              " last_event_id, open_alarm) VALUES", "DELETE FROM flat_activity WHERE flat_id=?"),
}
# Rejection counts of the open transaction, (reason, device) -> (count, last at),
# added to the stored rows before COMMIT; a rejection costs no SQL of its own.
_REJECTIONS_SQL = ("INSERT INTO rejections(reason, device_id, count, last_at) VALUES",
                   " ON CONFLICT(reason, device_id) DO UPDATE SET"
                   " count=count+excluded.count, last_at=excluded.last_at")
_CLOSED = ("resolved", "cancelled", "false_alarm")  # hub.alarms.lifecycle.CLOSED
_CLOSED_SQL = "(%s)" % ",".join("'%s'" % state for state in _CLOSED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters(
    device_id TEXT PRIMARY KEY, last_counter INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, counter INTEGER NOT NULL,
    type TEXT NOT NULL, data TEXT NOT NULL, device_time INTEGER, received_at REAL NOT NULL,
    transport TEXT NOT NULL, UNIQUE(device_id, counter));
CREATE TABLE IF NOT EXISTS rejections(
    reason TEXT NOT NULL, device_id TEXT NOT NULL, count INTEGER NOT NULL, last_at REAL,
    PRIMARY KEY(reason, device_id));
CREATE TABLE IF NOT EXISTS device_state(
    device_id TEXT PRIMARY KEY, door_open INTEGER, case_open INTEGER, battery_percent INTEGER,
    battery_low INTEGER, last_seen REAL, last_event_id INTEGER);
CREATE TABLE IF NOT EXISTS flat_activity(
    flat_id TEXT PRIMARY KEY, last_activity REAL, last_event_id INTEGER, open_alarm TEXT);
CREATE TABLE IF NOT EXISTS alarms(
    id TEXT PRIMARY KEY, type TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
    flat_id TEXT, device_id TEXT, raised_at REAL NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
    cause_key TEXT, priority INTEGER NOT NULL DEFAULT 0, escalation INTEGER NOT NULL DEFAULT 0,
    updated_at REAL);
CREATE INDEX IF NOT EXISTS alarms_open_cause ON alarms(cause_key, state);
CREATE TABLE IF NOT EXISTS commands(
    command_id TEXT PRIMARY KEY, alarm_id TEXT NOT NULL, at REAL NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rule_state(
    rule TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(rule, key));
CREATE TABLE IF NOT EXISTS alarm_transitions(
    alarm_id TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL, at REAL NOT NULL,
    actor TEXT NOT NULL, note TEXT, PRIMARY KEY(alarm_id, seq));
CREATE TABLE IF NOT EXISTS outbox(
    id INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id TEXT NOT NULL, seq INTEGER NOT NULL,
    topic TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, priority INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox(priority DESC, id);
CREATE TABLE IF NOT EXISTS dead_letters(
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, alarm_id TEXT NOT NULL, seq INTEGER NOT NULL,
    topic TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL, failed_at REAL NOT NULL,
    attempts INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_log(
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, at REAL NOT NULL, payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS access_log_kind ON access_log(kind, id);
CREATE TABLE IF NOT EXISTS alarm_feed(
    id INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS alarm_feed_alarm ON alarm_feed(alarm_id, id);
CREATE TABLE IF NOT EXISTS lock_commands(
    device_id TEXT NOT NULL, counter INTEGER NOT NULL, type INTEGER NOT NULL, name TEXT NOT NULL,
    user INTEGER, credential TEXT, requested_at REAL NOT NULL, requested_by TEXT NOT NULL,
    valid_s INTEGER, body BLOB, state TEXT NOT NULL, result TEXT, sent_at REAL, done_at REAL,
    PRIMARY KEY(device_id, counter));
CREATE INDEX IF NOT EXISTS lock_commands_state ON lock_commands(state, device_id, counter);
CREATE TABLE IF NOT EXISTS lock_users(
    device_id TEXT NOT NULL, user INTEGER NOT NULL, resident_id TEXT, type TEXT,
    state TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY(device_id, user));
CREATE TABLE IF NOT EXISTS lock_credentials(
    device_id TEXT NOT NULL, credential TEXT NOT NULL, kind TEXT, user INTEGER,
    resident_id TEXT, source TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
    updated_at REAL NOT NULL, PRIMARY KEY(device_id, credential));
"""


class Store:
    def __init__(self, path):
        self.path = str(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            self._migrate_outbox_target()
            self._backfill_alarm_feed()
        except sqlite3.Error as exc:
            raise StoreError("%s: cannot open the event store: %s" % (self.path, exc)) from exc
        self._alarm_listeners = []
        self._alarm_changed = False  # an alarm row was written in the open transaction
        self._in_tx = False
        self._in_batch = False
        self._checkpointer = None
        self.wal_pages = None  # WAL size at the last checkpoint (pages)
        self._in_decision = False   # inside a savepoint decision of a batch
        self._savepoint_open = False  # its SAVEPOINT has been issued
        self._load_hot_state()
        # Forwarding targets ("mqtt", "webhook"): every outbox document is queued
        # once per target, so a slow target never holds another. Set by the hub
        # before anything is queued; call sites of insert/update never see it.
        self.targets = ("mqtt",)

    def _migrate_outbox_target(self):
        cols = [r[1] for r in self.db.execute("PRAGMA table_info(outbox)")]
        if "target" not in cols:
            # rows queued by an older hub were meant for the MQTT upstream
            self.db.execute("ALTER TABLE outbox ADD COLUMN target TEXT NOT NULL DEFAULT 'mqtt'")
        self.db.execute("CREATE INDEX IF NOT EXISTS outbox_target_alarm "
                        "ON outbox(target, alarm_id, id)")

    def _backfill_alarm_feed(self):
        # a store made before the feed existed: number its transitions once, in
        # the order the audit export gives them
        if self.db.execute("SELECT 1 FROM alarm_feed LIMIT 1").fetchone() is None:
            self.db.execute("INSERT INTO alarm_feed(alarm_id, seq) SELECT alarm_id, seq"
                            " FROM alarm_transitions ORDER BY at, alarm_id, seq")

    def on_alarm_change(self, fn):
        """Call `fn()` after every commit that changed an alarm; returns the unsubscribe."""
        self._alarm_listeners.append(fn)
        return lambda: self._alarm_listeners.remove(fn) if fn in self._alarm_listeners else None

    def _alarm_written(self):
        if self._in_tx or self._in_batch:
            self._alarm_changed = True
        else:
            self._tell_alarm_listeners()

    def _tell_alarm_listeners(self):
        self._alarm_changed = False
        for fn in list(self._alarm_listeners):
            try:
                fn()
            except Exception:  # a listener's bug must not undo or hide a committed alarm
                log.exception("alarm listener failed")

    def close(self):
        self.stop_checkpointer()
        self.db.close()

    # ---- WAL checkpoints off the ingest path -------------------------------------
    def start_checkpointer(self, interval_s=1.0):
        """Copy the WAL into the database from a thread of its own, every
        `interval_s`, instead of inside whichever COMMIT crosses SQLite's
        1,000-page mark: that copy and its fsync (long on an SD card) would
        otherwise stall the frame, and the alarm, that happened to commit then.
        PASSIVE: it never blocks the writer; what it cannot copy yet it copies
        next time."""
        if self._checkpointer is not None:
            return
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        stop = threading.Event()
        thread = threading.Thread(target=self._checkpoint_loop, args=(stop, interval_s),
                                  name="anju-store-checkpoint", daemon=True)
        self._checkpointer = (thread, stop)
        thread.start()

    def stop_checkpointer(self):
        if self._checkpointer is None:
            return
        thread, stop = self._checkpointer
        stop.set()
        thread.join(10.0)
        self._checkpointer = None
        self.db.execute("PRAGMA wal_autocheckpoint=1000")

    def _checkpoint_loop(self, stop, interval_s):
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.error("WAL checkpointer cannot open the store", extra={"error": str(exc)})
            return
        try:
            db.execute("PRAGMA synchronous=FULL")
            while not stop.wait(interval_s):
                try:
                    busy, wal_pages, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed", extra={"error": str(exc)})
                    continue
                self.wal_pages = wal_pages
                if wal_pages > 100_000 and copied < wal_pages:
                    log.warning("WAL is not being copied back", extra={"wal_pages": wal_pages,
                                                                       "copied": copied})
        finally:
            db.close()

    # ---- hot state: memory first, written before COMMIT ------------------------------
    def _load_hot_state(self):
        try:
            db = self.db
            self._counters = {r[0]: (r[1], r[2]) for r in db.execute(
                "SELECT device_id, last_counter, updated_at FROM counters")}
            self._states = {r[0]: tuple(r[1:]) for r in db.execute(
                "SELECT device_id, door_open, case_open, battery_percent, battery_low, last_seen,"
                " last_event_id FROM device_state")}
            self._flats = {r[0]: tuple(r[1:]) for r in db.execute(
                "SELECT flat_id, last_activity, last_event_id, open_alarm FROM flat_activity")}
            self._rules = {}
            for rule, key, text in db.execute("SELECT rule, key, value FROM rule_state"):
                self._rules.setdefault(rule, {})[key] = text
            self._next_event_id = db.execute(
                "SELECT COALESCE(MAX(id), 0) + 1 FROM events").fetchone()[0]
            # cause -> ids of its open alarms (derived from `alarms`, never written)
            self._open_causes = {}
            for cause, alarm_id in db.execute(
                    "SELECT cause_key, id FROM alarms WHERE cause_key IS NOT NULL AND state"
                    " NOT IN %s ORDER BY raised_at, id" % _CLOSED_SQL):
                self._open_causes[cause] = self._open_causes.get(cause, ()) + (alarm_id,)
        except sqlite3.Error as exc:
            raise StoreError("%s: cannot read the event store: %s" % (self.path, exc)) from exc
        self._rejections = {}  # pending counts, see _REJECTIONS_SQL
        self._decoded = {}
        self._sql_cache = {}
        self._journal = []         # (table dict, key, previous value or _MISSING)
        self._pending_events = []  # event rows not yet inserted
        self._dirty = {"counters": set(), "states": set(), "flats": set(), "rules": set(),
                       "rejections": set(), "causes": set()}
        self._tx_next_event_id = self._next_event_id

    def _put(self, table, name, key, value, row_key=None):
        """Change (value) or remove (_MISSING) one hot row; journalled inside a
        transaction, written at once outside. `row_key` names the row in
        `_write_hot` when it is not `key` (rule state: (rule, key))."""
        old = table.get(key, _MISSING)
        if value is _MISSING:
            if old is _MISSING:
                return
            del table[key]
        else:
            table[key] = value
        row_key = key if row_key is None else row_key
        if self._in_tx or self._in_batch:
            self._journal.append((table, key, old))
            self._dirty[name].add(row_key)
        else:
            self._write_hot(name, [row_key])

    def _undo_to(self, mark):
        journal = self._journal
        while len(journal) > mark:
            table, key, old = journal.pop()
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old

    def _insert_rows(self, head, rows):
        """`head` ("INSERT ... (cols) VALUES") for many rows, as few statements
        as SQLite's oldest parameter limit (999) allows: one statement is one
        step of the engine (and one release of the GIL), where `executemany`
        makes one per row."""
        if not rows:
            return
        width = len(rows[0])
        per = max(1, 999 // width)
        one = "(" + ",".join("?" * width) + ")"
        for i in range(0, len(rows), per):
            chunk = rows[i:i + per]
            sql = self._sql_cache.get((head, len(chunk)))
            if sql is None:
                sql = self._sql_cache[(head, len(chunk))] = head + ",".join([one] * len(chunk))
            self.db.execute(sql, [v for row in chunk for v in row])

    def _write_hot(self, name, keys):
        """Write the named hot rows from memory (a row gone from memory is deleted)."""
        if name == "causes":
            return  # derived from the alarms rows, which are written directly
        if name == "rejections":
            pending = self._rejections
            rows = [(reason, device_id) + pending.pop((reason, device_id))
                    for reason, device_id in keys]
            head, tail = _REJECTIONS_SQL
            for i in range(0, len(rows), 999 // 4):
                chunk = rows[i:i + 999 // 4]
                self.db.execute(head + ",".join(["(?,?,?,?)"] * len(chunk)) + tail,
                                [v for row in chunk for v in row])
            return
        if name == "rules":
            put, gone = [], []
            for rule, key in keys:
                text = self._rules.get(rule, {}).get(key)
                if text is None:
                    gone.append((rule, key))
                else:
                    put.append((rule, key, text))
            self._insert_rows("INSERT OR REPLACE INTO rule_state(rule, key, value) VALUES", put)
            if gone:
                self.db.executemany("DELETE FROM rule_state WHERE rule=? AND key=?", gone)
            return
        table, head, delete = _HOT_SQL[name]
        table = getattr(self, table)
        self._insert_rows(head, [(k,) + table[k] for k in keys if k in table])
        gone = [(k,) for k in keys if k not in table]
        if gone:
            self.db.executemany(delete, gone)

    def _flush(self):
        """Write what the open transaction changed in memory (before its COMMIT)."""
        if self._pending_events:
            self._insert_rows("INSERT INTO events(id, device_id, counter, type, data, device_time,"
                              " received_at, transport) VALUES", self._pending_events)
            self._pending_events = []
        for name, keys in self._dirty.items():
            if keys:
                self._write_hot(name, sorted(keys))
                keys.clear()

    def _write(self, sql, args=()):
        """A row written directly: a decision opens its SAVEPOINT first."""
        if self._in_decision and not self._savepoint_open:
            self.db.execute("SAVEPOINT decision")
            self._savepoint_open = True
        return self.db.execute(sql, args)

    @contextlib.contextmanager
    def batch(self):
        """One commit (one fsync) for several decisions: each `transaction()`
        inside it is a savepoint, so a failing one is undone alone, and nothing
        of the batch is durable before this block ends. The caller must not
        acknowledge anything applied inside it until the block has returned."""
        if self._in_tx or self._in_batch:
            raise StoreError("nested batch")
        self._in_batch = True
        try:
            with self._immediate():
                yield self
        finally:
            self._in_batch = False

    @contextlib.contextmanager
    def _immediate(self):
        """BEGIN IMMEDIATE … (hot state written) COMMIT, rolled back on any
        error, memory included; SQLite errors become StoreError."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError("cannot begin a transaction: %s" % exc) from exc
        self._tx_next_event_id = self._next_event_id
        try:
            yield
            self._flush()
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError("the event store failed: %s" % exc) from exc
        except BaseException:
            self._rollback()
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError("commit failed: %s" % exc) from exc
        self._journal.clear()
        if self._alarm_changed:
            self._tell_alarm_listeners()

    def _rollback(self):
        try:
            self.db.execute("ROLLBACK")
        finally:
            self._undo_to(0)
            self._pending_events = []
            self._next_event_id = self._tx_next_event_id
            self._alarm_changed = False
            for keys in self._dirty.values():
                keys.clear()

    @contextlib.contextmanager
    def _savepoint(self):
        mark = (len(self._journal), len(self._pending_events), self._next_event_id)
        self._in_tx = self._in_decision = True
        self._savepoint_open = False
        try:
            yield self
        except BaseException as exc:
            if self._savepoint_open:
                self.db.execute("ROLLBACK TO decision")
                self.db.execute("RELEASE decision")
            self._undo_to(mark[0])
            del self._pending_events[mark[1]:]
            self._next_event_id = mark[2]
            if isinstance(exc, sqlite3.Error):
                raise StoreError("the event store failed: %s" % exc) from exc
            raise
        else:
            if self._savepoint_open:
                self.db.execute("RELEASE decision")
        finally:
            self._in_tx = self._in_decision = self._savepoint_open = False

    @contextlib.contextmanager
    def transaction(self):
        if self._in_tx:
            raise StoreError("nested transaction")
        if self._in_batch:
            with self._savepoint() as tx:
                yield tx
            return
        self._in_tx = True
        try:
            with self._immediate():
                yield self
        finally:
            self._in_tx = False

    # ---- devices and events -------------------------------------------------
    def last_counter(self, device_id):
        row = self._counters.get(device_id)
        return row[0] if row else 0

    def count_rejection(self, reason, device_id, at):
        """One more rejection for (reason, device): counted in memory, added to
        its row before COMMIT (one statement per batch, not one per frame)."""
        if not (self._in_tx or self._in_batch):
            with self.transaction():
                return self.count_rejection(reason, device_id, at)
        key = (reason, device_id or "")
        old = self._rejections.get(key)
        self._put(self._rejections, "rejections", key, (old[0] + 1 if old else 1, at))

    def append_event(self, reading, received_at):
        """Record an accepted event and its device's counter; returns the event id."""
        self._put(self._counters, "counters", reading.device_id, (reading.counter, received_at))
        event_id = self._next_event_id
        row = (event_id, reading.device_id, reading.counter, reading.type,
               json.dumps(reading.values, sort_keys=True), reading.device_time, received_at,
               reading.transport)
        if self._in_tx or self._in_batch:
            self._pending_events.append(row)
            self._next_event_id = event_id + 1
        else:
            self.db.execute("INSERT INTO events(id, device_id, counter, type, data, device_time,"
                            " received_at, transport) VALUES(?,?,?,?,?,?,?,?)", row)
            self._next_event_id = event_id + 1
        return event_id

    def update_device_state(self, device_id, values, at, event_id):
        old = self._states.get(device_id)
        row = list(old) if old is not None else [None] * 6
        for key, col in _STATE_COLUMNS.items():
            if key in values:
                row[col] = int(values[key])
        row[4] = at
        row[5] = event_id
        self._put(self._states, "states", device_id, tuple(row))

    def device_state(self, device_id):
        row = self._states.get(device_id)
        if row is None:
            return None
        return dict(zip(_STATE_KEYS, row))

    def last_seen_all(self):
        """{device_id: when the hub last accepted a frame from it} (supervision)."""
        return {device_id: row[4] for device_id, row in self._states.items()}

    def _flushed(self):
        """Before an SQL read of the events table: write pending events (only
        between decisions; inside one its own rows would escape its savepoint)."""
        if self._pending_events:
            if self._in_decision:
                raise StoreError("events read by SQL inside a decision")
            self._flush()

    def events_after(self, event_id, limit=500):
        """Accepted events with id > `event_id`, oldest first: [(id, device, type,
        values, received_at)] (Home Assistant state publishing follows these)."""
        self._flushed()
        return [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in self.db.execute(
            "SELECT id, device_id, type, data, received_at FROM events WHERE id>? ORDER BY id"
            " LIMIT ?", (event_id, limit))]

    def last_event_id(self):
        return self._next_event_id - 1

    def has_event(self, device_id, counter):
        """Whether the event (device, counter) is stored (or pending in this transaction)."""
        for row in self._pending_events:
            if row[1] == device_id and row[2] == counter:
                return True
        return self.db.execute("SELECT 1 FROM events WHERE device_id=? AND counter=?",
                               (device_id, counter)).fetchone() is not None

    def event(self, event_id):
        pending = self._pending_events
        if pending and event_id >= pending[0][0]:
            for r in pending:
                if r[0] == event_id:
                    return {"device": r[1], "counter": r[2], "type": r[3],
                            "values": json.loads(r[4]), "device_time": r[5], "received_at": r[6]}
            return None
        row = self.db.execute(
            "SELECT device_id, counter, type, data, device_time, received_at FROM events WHERE id=?",
            (event_id,)).fetchone()
        if row is None:
            return None
        return {"device": row[0], "counter": row[1], "type": row[2], "values": json.loads(row[3]),
                "device_time": row[4], "received_at": row[5]}

    def events_since(self, event_id):
        """Accepted events with id > `event_id`, oldest first, as `events()`
        gives them plus their "id" (a reader that follows the log)."""
        self._flushed()
        return [{"id": r[0], "device": r[1], "counter": r[2], "type": r[3],
                 "values": json.loads(r[4]), "received_at": r[5]} for r in self.db.execute(
            "SELECT id, device_id, counter, type, data, received_at FROM events WHERE id>?"
            " ORDER BY id", (event_id,))]

    def events(self, device_id=None):
        self._flushed()
        q = "SELECT device_id, counter, type, data, received_at FROM events"
        args = ()
        if device_id is not None:
            q += " WHERE device_id=?"
            args = (device_id,)
        return [{"device": r[0], "counter": r[1], "type": r[2], "values": json.loads(r[3]),
                 "received_at": r[4]} for r in self.db.execute(q + " ORDER BY id", args)]

    def recent_events(self, device_id, limit=50):
        """A device's newest `limit` accepted events, newest first (as `events()`)."""
        self._flushed()
        rows = self.db.execute("SELECT device_id, counter, type, data, received_at FROM events"
                               " WHERE device_id=? ORDER BY id DESC LIMIT ?",
                               (device_id, int(limit))).fetchall()
        return [{"device": r[0], "counter": r[1], "type": r[2], "values": json.loads(r[3]),
                 "received_at": r[4]} for r in rows]

    def rejection_counts(self):
        out = {}
        for reason, n in self.db.execute("SELECT reason, SUM(count) FROM rejections GROUP BY reason"):
            out[reason] = n
        return out

    # ---- flats ---------------------------------------------------------------
    def flat_activity(self, flat_id):
        """(last activity, its event id, open inactivity alarm) of a flat."""
        return self._flats.get(flat_id, (None, None, None))

    def set_flat_activity(self, flat_id, at, event_id, clear_alarm=True):
        old = self._flats.get(flat_id)
        open_alarm = None if clear_alarm or old is None else old[2]
        self._put(self._flats, "flats", flat_id, (at, event_id, open_alarm))

    def set_flat_alarm(self, flat_id, alarm_id):
        old = self._flats.get(flat_id)
        if old is not None:
            self._put(self._flats, "flats", flat_id, (old[0], old[1], alarm_id))

    def all_flat_activity(self):
        return dict(self._flats)

    # ---- alarms and outbox ------------------------------------------------------
    def insert_alarm(self, doc, raised_at, topic, actor="rules", cause_key=None, priority=0):
        payload = json.dumps(doc, sort_keys=True)
        self._write(
            "INSERT INTO alarms(id, type, severity, state, flat_id, device_id, raised_at, seq, doc,"
            " cause_key, priority, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc["id"], doc["type"], doc["severity"], doc["state"], doc.get("flat"),
             doc.get("device"), raised_at, doc["seq"], payload, cause_key, priority, raised_at))
        self._write("INSERT INTO alarm_transitions(alarm_id, seq, state, at, actor, note) "
                    "VALUES(?,?,?,?,?,?)", (doc["id"], doc["seq"], doc["state"], raised_at,
                                                actor, None))
        self._write("INSERT INTO alarm_feed(alarm_id, seq) VALUES(?,?)", (doc["id"], doc["seq"]))
        self._outbox(doc, payload, topic, raised_at, priority)
        if cause_key is not None and doc["state"] not in _CLOSED:
            self._put(self._open_causes, "causes", cause_key,
                      self._open_causes.get(cause_key, ()) + (doc["id"],))
        self._alarm_written()

    def _outbox(self, doc, payload, topic, at, priority):
        for target in self.targets:
            self._write("INSERT INTO outbox(alarm_id, seq, topic, payload, created_at, priority,"
                        " target) VALUES(?,?,?,?,?,?,?)",
                            (doc["id"], doc["seq"], topic, payload, at, priority, target))

    def update_alarm(self, doc, at, actor, note, topic, escalation=None, also_topics=()):
        """Store the next version of an alarm, its transition and its outbox row
        (one more row per topic in `also_topics`, right after it: same order)."""
        payload = json.dumps(doc, sort_keys=True)
        row = self.db.execute("SELECT priority, cause_key FROM alarms WHERE id=?",
                              (doc["id"],)).fetchone()
        priority = row[0] if row else 0
        self._write(
            "UPDATE alarms SET state=?, severity=?, seq=?, doc=?, updated_at=?,"
            " escalation=COALESCE(?, escalation) WHERE id=?",
            (doc["state"], doc["severity"], doc["seq"], payload, at, escalation, doc["id"]))
        cause = row[1] if row else None
        if cause is not None and doc["state"] in _CLOSED:
            ids = tuple(i for i in self._open_causes.get(cause, ()) if i != doc["id"])
            self._put(self._open_causes, "causes", cause, ids if ids else _MISSING)
        self._write("INSERT INTO alarm_transitions(alarm_id, seq, state, at, actor, note) "
                    "VALUES(?,?,?,?,?,?)", (doc["id"], doc["seq"], doc["state"], at, actor,
                                                note))
        self._write("INSERT INTO alarm_feed(alarm_id, seq) VALUES(?,?)", (doc["id"], doc["seq"]))
        self._outbox(doc, payload, topic, at, priority)
        for extra in also_topics:
            self._outbox(doc, payload, extra, at, priority)
        self._alarm_written()

    def alarm(self, alarm_id):
        row = self.db.execute("SELECT doc FROM alarms WHERE id=?", (alarm_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def has_open_alarm(self, cause_key):
        """Whether `cause_key` has an alarm that is not closed (from memory)."""
        return cause_key in self._open_causes

    def alarm_feed_last(self):
        """The id of the newest alarm change (0 when there is none)."""
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM alarm_feed").fetchone()[0]

    def alarm_changes_after(self, after_id):
        """Alarms changed after feed id `after_id`, each once, as (its newest feed
        id, its current document), in the order of those ids."""
        return [(r[0], json.loads(r[1])) for r in self.db.execute(
            "SELECT f.last, a.doc FROM (SELECT alarm_id, MAX(id) AS last FROM alarm_feed"
            " WHERE id > ? GROUP BY alarm_id) f JOIN alarms a ON a.id = f.alarm_id"
            " ORDER BY f.last", (after_id,))]

    def alarm_snapshot(self, closed_limit):
        """What a console starting afresh needs: every open alarm and the
        `closed_limit` most recently changed closed ones, as (newest feed id,
        document), in the order of those ids."""
        return [(r[0], json.loads(r[1])) for r in self.db.execute(
            "WITH f AS (SELECT alarm_id, MAX(id) AS last FROM alarm_feed GROUP BY alarm_id),"
            " j AS (SELECT f.last, a.doc, a.state IN ('resolved','cancelled','false_alarm')"
            " AS closed FROM f JOIN alarms a ON a.id = f.alarm_id)"
            " SELECT last, doc FROM j WHERE NOT closed UNION ALL"
            " SELECT * FROM (SELECT last, doc FROM j WHERE closed ORDER BY last DESC LIMIT ?)"
            " ORDER BY last", (int(closed_limit),))]

    def open_alarm_for_cause(self, cause_key):
        if cause_key not in self._open_causes:
            return None
        row = self.db.execute(
            "SELECT doc FROM alarms WHERE cause_key=? AND state NOT IN "
            "('resolved','cancelled','false_alarm') ORDER BY raised_at DESC LIMIT 1",
            (cause_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def unacknowledged_alarms(self):
        """(doc, raised_at, escalation level) of open alarms nobody acknowledged yet."""
        return [(json.loads(r[0]), r[1], r[2]) for r in self.db.execute(
            "SELECT doc, raised_at, escalation FROM alarms WHERE state IN ('raised','dispatched')")]

    def command_seen(self, command_id):
        return self.db.execute("SELECT outcome FROM commands WHERE command_id=?",
                               (command_id,)).fetchone() is not None

    def record_command(self, command_id, alarm_id, at, outcome):
        self._write("INSERT OR IGNORE INTO commands(command_id, alarm_id, at, outcome) "
                    "VALUES(?,?,?,?)", (command_id, alarm_id, at, outcome))

    def transitions(self, alarm_id=None):
        q = "SELECT alarm_id, seq, state, at, actor, note FROM alarm_transitions"
        args = ()
        if alarm_id is not None:
            q += " WHERE alarm_id=?"
            args = (alarm_id,)
        keys = ("alarm_id", "seq", "state", "at", "actor", "note")
        return [dict(zip(keys, r)) for r in self.db.execute(q + " ORDER BY at, alarm_id, seq", args)]

    def audit(self, since=None, until=None):
        """Every stored transition with `since <= at < until`, oldest first, with
        the alarm's type, site location and current state (audit export)."""
        q = ("SELECT t.alarm_id, t.seq, t.state, t.at, t.actor, t.note, a.type, a.flat_id,"
             " a.device_id FROM alarm_transitions t JOIN alarms a ON a.id = t.alarm_id"
             " WHERE t.at >= ? AND t.at < ? ORDER BY t.at, t.alarm_id, t.seq")
        keys = ("alarm_id", "seq", "state", "at", "actor", "note", "type", "flat", "device")
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        return [dict(zip(keys, r)) for r in self.db.execute(q, (lo, hi))]

    def operations_counts(self):
        """Figures for the metrics endpoint: frames accepted (events are never
        deleted, so the highest id is their number), alarms by (state, type),
        escalations."""
        self._flushed()
        accepted = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        alarms = {(r[0], r[1]): r[2] for r in self.db.execute(
            "SELECT state, type, COUNT(*) FROM alarms GROUP BY state, type")}
        escalations = self.db.execute("SELECT COUNT(*) FROM alarm_transitions "
                                      "WHERE actor='escalation'").fetchone()[0]
        return {"accepted": accepted, "alarms": alarms, "escalations": escalations}

    # ---- rule state (hot: kept in memory, see the module doc) -------------------------
    def rule_get(self, rule, key, default=None):
        text = self._rules.get(rule, {}).get(key)
        return json.loads(text) if text is not None else default

    def _rule_table(self, rule):
        table = self._rules.get(rule)
        if table is None:
            table = self._rules[rule] = {}
        return table

    def rule_set(self, rule, key, value):
        self._put(self._rule_table(rule), "rules", key, json.dumps(value), (rule, key))

    def rule_delete(self, rule, key):
        self._put(self._rule_table(rule), "rules", key, _MISSING, (rule, key))

    def rule_fields(self, rule, fields):
        """{key: {field: value}} of a rule's state, only the named top-level fields
        that are set."""
        out = {}
        decoded = self._decoded  # (rule, key) -> (text, its value): decode a text once
        for key, text in self._rules.get(rule, {}).items():
            known = decoded.get((rule, key))
            if known is None or known[0] is not text:
                known = decoded[(rule, key)] = (text, json.loads(text))
            value = known[1]
            out[key] = ({f: value[f] for f in fields if value.get(f) is not None}
                        if isinstance(value, dict) else {})
        return out

    def rule_items(self, rule):
        return {key: json.loads(text) for key, text in self._rules.get(rule, {}).items()}

    def alarms(self):
        return [json.loads(r[0]) for r in self.db.execute("SELECT doc FROM alarms ORDER BY raised_at, id")]

    def outbox_head(self, limit=1):
        return self.db.execute("SELECT id, topic, payload FROM outbox ORDER BY priority DESC, id LIMIT ?",
                               (limit,)).fetchall()

    def outbox_depth(self, target=None):
        if target is None:
            return self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE target=?",
                               (target,)).fetchone()[0]

    def outbox_heads(self, target, limit):
        """The oldest waiting row of each alarm for `target`, fire first:
        [(row id, alarm id, seq, topic, payload, attempts)]. A later version of an
        alarm is never offered while an earlier one is still waiting."""
        return self.db.execute(
            "SELECT o.id, o.alarm_id, o.seq, o.topic, o.payload, o.attempts FROM outbox o"
            " JOIN (SELECT MIN(id) AS head FROM outbox WHERE target=? GROUP BY alarm_id) h"
            " ON o.id = h.head ORDER BY o.priority DESC, o.id LIMIT ?", (target, limit)).fetchall()

    def outbox_targets(self):
        """{target: waiting rows} over every target that has rows."""
        return dict(self.db.execute("SELECT target, COUNT(*) FROM outbox GROUP BY target"))

    def outbox_dead_letter(self, outbox_id, reason, at):
        """Move a row the target refused for good into `dead_letters` (kept, never dropped)."""
        self._write(
            "INSERT INTO dead_letters(target, alarm_id, seq, topic, payload, created_at, failed_at,"
            " attempts, reason) SELECT target, alarm_id, seq, topic, payload, created_at, ?,"
            " attempts + 1, ? FROM outbox WHERE id=?", (at, reason, outbox_id))
        self._write("DELETE FROM outbox WHERE id=?", (outbox_id,))

    def dead_letters(self, target=None):
        q = ("SELECT id, target, alarm_id, seq, payload, failed_at, attempts, reason "
             "FROM dead_letters")
        args = ()
        if target is not None:
            q += " WHERE target=?"
            args = (target,)
        keys = ("id", "target", "alarm_id", "seq", "payload", "failed_at", "attempts", "reason")
        return [dict(zip(keys, r)) for r in self.db.execute(q + " ORDER BY id", args)]

    def requeue_dead_letters(self, ids=None, target=None):
        """Put dead letters back in the outbox (attempts from 0), oldest first,
        behind what their alarm already has waiting; `ids` None: all (of
        `target`, if given). Returns (requeued ids, ids that are no dead letter).
        Call it in a transaction."""
        q = "SELECT id FROM dead_letters"
        args = []
        if target is not None:
            q += " WHERE target=?"
            args.append(target)
        present = [r[0] for r in self.db.execute(q + " ORDER BY id", args)]
        if ids is None:
            chosen, unknown = present, []
        else:
            have = set(present)
            chosen = sorted({i for i in ids if i in have})
            unknown = sorted({i for i in ids if i not in have})
        for dead_id in chosen:
            self._write(
                "INSERT INTO outbox(alarm_id, seq, topic, payload, created_at, attempts, priority,"
                " target) SELECT d.alarm_id, d.seq, d.topic, d.payload, d.created_at, 0,"
                " COALESCE(a.priority, 0), d.target FROM dead_letters d LEFT JOIN alarms a"
                " ON a.id = d.alarm_id WHERE d.id=?", (dead_id,))
            self._write("DELETE FROM dead_letters WHERE id=?", (dead_id,))
        return chosen, unknown

    def outbox_delivered(self, outbox_id):
        self._write("DELETE FROM outbox WHERE id=?", (outbox_id,))

    def outbox_attempt(self, outbox_id):
        self._write("UPDATE outbox SET attempts=attempts+1 WHERE id=?", (outbox_id,))

    # ---- rows of other components (hub/locks/book.py) ---------------------------
    def execute(self, sql, args=()):
        """Write one row of a component's own table, inside the open transaction
        (a decision's savepoint covers it)."""
        try:
            return self._write(sql, args)
        except sqlite3.Error as exc:
            raise StoreError("the event store failed: %s" % exc) from exc

    def query(self, sql, args=()):
        """Rows of a component's own table (sees the open transaction's writes)."""
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError("the event store failed: %s" % exc) from exc

    # ---- access log (face access decisions, enrollment changes) -------------------
    def append_access(self, kind, at, payload):
        """Append one entry; never updated or deleted. Returns its id."""
        try:
            cur = self._write("INSERT INTO access_log(kind, at, payload) VALUES(?,?,?)",
                                  (kind, at, json.dumps(payload, sort_keys=True, default=str)))
        except sqlite3.Error as exc:
            raise StoreError("cannot append to the access log: %s" % exc) from exc
        return cur.lastrowid

    def access_log(self, kind=None, limit=100):
        """The newest `limit` entries (optionally of one kind), newest first."""
        q = "SELECT id, kind, at, payload FROM access_log"
        args = []
        if kind is not None:
            q += " WHERE kind=?"
            args.append(kind)
        args.append(int(limit))
        rows = self.db.execute(q + " ORDER BY id DESC LIMIT ?", args).fetchall()
        return [{"id": r[0], "kind": r[1], "at": r[2], "payload": json.loads(r[3])} for r in rows]
