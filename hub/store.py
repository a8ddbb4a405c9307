"""The hub's event store: SQLite in WAL mode, one transaction per decision.

An accepted event, the state it changes, any alarm it raises and that alarm's
outbox entry are committed together, before the broker is acknowledged, so a
crash at any point leaves either all of it or none of it. The per-device
counter here is the replay protection that survives restarts.

Never stores keys. Never deletes events or access-log entries (append-only logs).
"""
import contextlib
import json
import sqlite3

from hub import StoreError

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
        except sqlite3.Error as exc:
            raise StoreError("%s: cannot open the event store: %s" % (self.path, exc)) from exc
        self._in_tx = False
        self._in_batch = False
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

    def close(self):
        self.db.close()

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
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; SQLite errors
        become StoreError."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError("cannot begin a transaction: %s" % exc) from exc
        try:
            yield
        except sqlite3.Error as exc:
            self.db.execute("ROLLBACK")
            raise StoreError("the event store failed: %s" % exc) from exc
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.db.execute("ROLLBACK")
            raise StoreError("commit failed: %s" % exc) from exc

    @contextlib.contextmanager
    def _savepoint(self):
        self.db.execute("SAVEPOINT decision")
        self._in_tx = True
        try:
            yield self
        except BaseException as exc:
            self.db.execute("ROLLBACK TO decision")
            self.db.execute("RELEASE decision")
            if isinstance(exc, sqlite3.Error):
                raise StoreError("the event store failed: %s" % exc) from exc
            raise
        else:
            self.db.execute("RELEASE decision")
        finally:
            self._in_tx = False

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
        row = self.db.execute("SELECT last_counter FROM counters WHERE device_id=?",
                              (device_id,)).fetchone()
        return row[0] if row else 0

    def count_rejection(self, reason, device_id, at):
        self.db.execute(
            "INSERT INTO rejections(reason, device_id, count, last_at) VALUES(?,?,1,?) "
            "ON CONFLICT(reason, device_id) DO UPDATE SET count=count+1, last_at=excluded.last_at",
            (reason, device_id or "", at))

    def append_event(self, reading, received_at):
        self.db.execute(
            "INSERT INTO counters(device_id, last_counter, updated_at) VALUES(?,?,?) "
            "ON CONFLICT(device_id) DO UPDATE SET last_counter=excluded.last_counter, "
            "updated_at=excluded.updated_at", (reading.device_id, reading.counter, received_at))
        cur = self.db.execute(
            "INSERT INTO events(device_id, counter, type, data, device_time, received_at, transport)"
            " VALUES(?,?,?,?,?,?,?)",
            (reading.device_id, reading.counter, reading.type,
             json.dumps(reading.values, sort_keys=True), reading.device_time, received_at,
             reading.transport))
        return cur.lastrowid

    def update_device_state(self, device_id, values, at, event_id):
        cols = {"open": "door_open", "case_open": "case_open", "percent": "battery_percent",
                "battery_low": "battery_low"}
        self.db.execute("INSERT OR IGNORE INTO device_state(device_id) VALUES(?)", (device_id,))
        sets = ["last_seen=?", "last_event_id=?"]
        args = [at, event_id]
        for key, col in cols.items():
            if key in values:
                sets.append("%s=?" % col)
                args.append(int(values[key]))
        args.append(device_id)
        self.db.execute("UPDATE device_state SET %s WHERE device_id=?" % ", ".join(sets), args)

    def device_state(self, device_id):
        row = self.db.execute(
            "SELECT door_open, case_open, battery_percent, battery_low, last_seen "
            "FROM device_state WHERE device_id=?", (device_id,)).fetchone()
        if row is None:
            return None
        keys = ("door_open", "case_open", "battery_percent", "battery_low", "last_seen")
        return dict(zip(keys, row))

    def last_seen_all(self):
        """{device_id: when the hub last accepted a frame from it} (supervision)."""
        return dict(self.db.execute("SELECT device_id, last_seen FROM device_state"))

    def events_after(self, event_id, limit=500):
        """Accepted events with id > `event_id`, oldest first: [(id, device, type,
        values, received_at)] (Home Assistant state publishing follows these)."""
        return [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in self.db.execute(
            "SELECT id, device_id, type, data, received_at FROM events WHERE id>? ORDER BY id"
            " LIMIT ?", (event_id, limit))]

    def last_event_id(self):
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]

    def event(self, event_id):
        row = self.db.execute(
            "SELECT device_id, counter, type, data, device_time, received_at FROM events WHERE id=?",
            (event_id,)).fetchone()
        if row is None:
            return None
        return {"device": row[0], "counter": row[1], "type": row[2], "values": json.loads(row[3]),
                "device_time": row[4], "received_at": row[5]}

    def events(self, device_id=None):
        q = "SELECT device_id, counter, type, data, received_at FROM events"
        args = ()
        if device_id is not None:
            q += " WHERE device_id=?"
            args = (device_id,)
        return [{"device": r[0], "counter": r[1], "type": r[2], "values": json.loads(r[3]),
                 "received_at": r[4]} for r in self.db.execute(q + " ORDER BY id", args)]

    def rejection_counts(self):
        out = {}
        for reason, n in self.db.execute("SELECT reason, SUM(count) FROM rejections GROUP BY reason"):
            out[reason] = n
        return out

    # ---- flats ---------------------------------------------------------------
    def flat_activity(self, flat_id):
        row = self.db.execute("SELECT last_activity, last_event_id, open_alarm FROM flat_activity "
                              "WHERE flat_id=?", (flat_id,)).fetchone()
        return row if row else (None, None, None)

    def set_flat_activity(self, flat_id, at, event_id, clear_alarm=True):
        self.db.execute(
            "INSERT INTO flat_activity(flat_id, last_activity, last_event_id, open_alarm) "
            "VALUES(?,?,?,NULL) ON CONFLICT(flat_id) DO UPDATE SET last_activity=excluded.last_activity,"
            " last_event_id=excluded.last_event_id" + (", open_alarm=NULL" if clear_alarm else ""),
            (flat_id, at, event_id))

    def set_flat_alarm(self, flat_id, alarm_id):
        self.db.execute("UPDATE flat_activity SET open_alarm=? WHERE flat_id=?", (alarm_id, flat_id))

    def all_flat_activity(self):
        return {r[0]: (r[1], r[2], r[3]) for r in
                self.db.execute("SELECT flat_id, last_activity, last_event_id, open_alarm "
                                "FROM flat_activity")}

    # ---- alarms and outbox ------------------------------------------------------
    def insert_alarm(self, doc, raised_at, topic, actor="rules", cause_key=None, priority=0):
        payload = json.dumps(doc, sort_keys=True)
        self.db.execute(
            "INSERT INTO alarms(id, type, severity, state, flat_id, device_id, raised_at, seq, doc,"
            " cause_key, priority, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc["id"], doc["type"], doc["severity"], doc["state"], doc.get("flat"),
             doc.get("device"), raised_at, doc["seq"], payload, cause_key, priority, raised_at))
        self.db.execute("INSERT INTO alarm_transitions(alarm_id, seq, state, at, actor, note) "
                        "VALUES(?,?,?,?,?,?)", (doc["id"], doc["seq"], doc["state"], raised_at,
                                                actor, None))
        self._outbox(doc, payload, topic, raised_at, priority)

    def _outbox(self, doc, payload, topic, at, priority):
        for target in self.targets:
            self.db.execute("INSERT INTO outbox(alarm_id, seq, topic, payload, created_at, priority,"
                            " target) VALUES(?,?,?,?,?,?,?)",
                            (doc["id"], doc["seq"], topic, payload, at, priority, target))

    def update_alarm(self, doc, at, actor, note, topic, escalation=None, also_topics=()):
        """Store the next version of an alarm, its transition and its outbox row
        (one more row per topic in `also_topics`, right after it: same order)."""
        payload = json.dumps(doc, sort_keys=True)
        row = self.db.execute("SELECT priority FROM alarms WHERE id=?", (doc["id"],)).fetchone()
        priority = row[0] if row else 0
        self.db.execute(
            "UPDATE alarms SET state=?, severity=?, seq=?, doc=?, updated_at=?,"
            " escalation=COALESCE(?, escalation) WHERE id=?",
            (doc["state"], doc["severity"], doc["seq"], payload, at, escalation, doc["id"]))
        self.db.execute("INSERT INTO alarm_transitions(alarm_id, seq, state, at, actor, note) "
                        "VALUES(?,?,?,?,?,?)", (doc["id"], doc["seq"], doc["state"], at, actor,
                                                note))
        self._outbox(doc, payload, topic, at, priority)
        for extra in also_topics:
            self._outbox(doc, payload, extra, at, priority)

    def alarm(self, alarm_id):
        row = self.db.execute("SELECT doc FROM alarms WHERE id=?", (alarm_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def open_alarm_for_cause(self, cause_key):
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
        self.db.execute("INSERT OR IGNORE INTO commands(command_id, alarm_id, at, outcome) "
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
        accepted = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        alarms = {(r[0], r[1]): r[2] for r in self.db.execute(
            "SELECT state, type, COUNT(*) FROM alarms GROUP BY state, type")}
        escalations = self.db.execute("SELECT COUNT(*) FROM alarm_transitions "
                                      "WHERE actor='escalation'").fetchone()[0]
        return {"accepted": accepted, "alarms": alarms, "escalations": escalations}

    # ---- rule state ------------------------------------------------------------------
    def rule_get(self, rule, key, default=None):
        row = self.db.execute("SELECT value FROM rule_state WHERE rule=? AND key=?",
                              (rule, key)).fetchone()
        return json.loads(row[0]) if row else default

    def rule_set(self, rule, key, value):
        self.db.execute("INSERT INTO rule_state(rule, key, value) VALUES(?,?,?) ON CONFLICT(rule, key)"
                        " DO UPDATE SET value=excluded.value", (rule, key, json.dumps(value)))

    def rule_delete(self, rule, key):
        self.db.execute("DELETE FROM rule_state WHERE rule=? AND key=?", (rule, key))

    def rule_fields(self, rule, fields):
        """{key: {field: value}} of a rule's state, only the named top-level fields
        (extracted by SQLite: no JSON decoding in Python on the hot path)."""
        cols = ", ".join("json_extract(value, '$.%s')" % f for f in fields)
        out = {}
        for row in self.db.execute("SELECT key, %s FROM rule_state WHERE rule=?" % cols, (rule,)):
            out[row[0]] = {f: v for f, v in zip(fields, row[1:]) if v is not None}
        return out

    def rule_items(self, rule):
        return {r[0]: json.loads(r[1]) for r in
                self.db.execute("SELECT key, value FROM rule_state WHERE rule=?", (rule,))}

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
        self.db.execute(
            "INSERT INTO dead_letters(target, alarm_id, seq, topic, payload, created_at, failed_at,"
            " attempts, reason) SELECT target, alarm_id, seq, topic, payload, created_at, ?,"
            " attempts + 1, ? FROM outbox WHERE id=?", (at, reason, outbox_id))
        self.db.execute("DELETE FROM outbox WHERE id=?", (outbox_id,))

    def dead_letters(self, target=None):
        q = ("SELECT id, target, alarm_id, seq, payload, failed_at, attempts, reason "
             "FROM dead_letters")
        args = ()
        if target is not None:
            q += " WHERE target=?"
            args = (target,)
        keys = ("id", "target", "alarm_id", "seq", "payload", "failed_at", "attempts", "reason")
        return [dict(zip(keys, r)) for r in self.db.execute(q + " ORDER BY id", args)]

    def outbox_delivered(self, outbox_id):
        self.db.execute("DELETE FROM outbox WHERE id=?", (outbox_id,))

    def outbox_attempt(self, outbox_id):
        self.db.execute("UPDATE outbox SET attempts=attempts+1 WHERE id=?", (outbox_id,))

    # ---- access log (face access decisions, enrollment changes) -------------------
    def append_access(self, kind, at, payload):
        """Append one entry; never updated or deleted. Returns its id."""
        try:
            cur = self.db.execute("INSERT INTO access_log(kind, at, payload) VALUES(?,?,?)",
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
