"""The hub's OTA records, in their own SQLite file beside the hub's store
(`<store>.ota.db`): the releases the operator published (their checked bytes),
each device's target (release, window, progress) and what each device last
reported it runs. Written from the OTA component's MQTT thread and read by
the HTTP API, so every access holds one lock. A report is stored (committed)
before the hub acknowledges it to the device.
"""
import json
import sqlite3
import threading

from hub.ota import release as ota_release

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases(id TEXT PRIMARY KEY, app TEXT, version TEXT,
    blob BLOB, allow_downgrade INTEGER, added_at REAL);
CREATE TABLE IF NOT EXISTS release_files(release_id TEXT, idx INTEGER, path TEXT, data BLOB,
    PRIMARY KEY(release_id, idx));
CREATE TABLE IF NOT EXISTS targets(device TEXT PRIMARY KEY, release_id TEXT, version TEXT,
    window TEXT, state TEXT, percent INTEGER, detail TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS firmware(device TEXT PRIMARY KEY, version TEXT, slot TEXT,
    trial INTEGER, status TEXT, percent INTEGER, failures TEXT, counter INTEGER, at REAL);
CREATE TABLE IF NOT EXISTS failed_versions(device TEXT, version TEXT, reason TEXT, at REAL,
    PRIMARY KEY(device, version));
"""


def path_for(store_path):
    return str(store_path) + ".ota.db"


class _Stored:
    """A release read back from the book (what the server serves)."""
    __slots__ = ("id", "app", "version", "blob", "rid", "data")

    def __init__(self, rid_hex, app, version, blob, data):
        self.id = rid_hex
        self.app = app
        self.version = version
        self.blob = blob
        self.rid = bytes.fromhex(rid_hex)
        self.data = data


class OtaBook:
    def __init__(self, path):
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._releases = {}  # id -> _Stored (cached: chunks are served from memory)

    def close(self):
        with self._lock:
            self._db.close()

    def _tx(self, fn):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    def _q(self, sql, args=()):
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- releases ----------------------------------------------------------------
    def add_release(self, rel: ota_release.Release, at):
        def go(db):
            db.execute("INSERT OR IGNORE INTO releases VALUES(?,?,?,?,?,?)",
                       (rel.id, rel.app, rel.version, rel.blob, int(rel.allow_downgrade), at))
            for i, ((path, _size), data) in enumerate(zip(rel.files, rel.data)):
                db.execute("INSERT OR IGNORE INTO release_files VALUES(?,?,?,?)",
                           (rel.id, i, path, data))
        self._tx(go)

    def release(self, rid_hex):
        cached = self._releases.get(rid_hex)
        if cached is not None:
            return cached
        rows = self._q("SELECT app, version, blob FROM releases WHERE id=?", (rid_hex,))
        if not rows:
            return None
        data = [r[0] for r in self._q("SELECT data FROM release_files WHERE release_id=? "
                                      "ORDER BY idx", (rid_hex,))]
        app, version, blob = rows[0]
        rel = self._releases[rid_hex] = _Stored(rid_hex, app, version, bytes(blob),
                                                [bytes(d) for d in data])
        return rel

    def releases(self):
        return [{"id": r[0], "app": r[1], "version": r[2], "allow_downgrade": bool(r[3]),
                 "added_at": r[4]}
                for r in self._q("SELECT id, app, version, allow_downgrade, added_at "
                                 "FROM releases ORDER BY added_at")]

    # ---- targets -------------------------------------------------------------------
    def set_targets(self, devices, rid_hex, version, window, at):
        def go(db):
            for did in devices:
                db.execute("INSERT OR REPLACE INTO targets VALUES(?,?,?,?,?,?,?,?)",
                           (did, rid_hex, version, window, "waiting", 0, None, at))
        self._tx(go)

    def target(self, device):
        rows = self._q("SELECT release_id, version, window, state, percent, detail, updated_at "
                       "FROM targets WHERE device=?", (device,))
        if not rows:
            return None
        r = rows[0]
        return {"release": r[0], "version": r[1], "window": r[2], "state": r[3],
                "percent": r[4], "detail": r[5], "updated_at": r[6]}

    def set_target_state(self, device, state, percent=None, detail=None, at=None):
        self._tx(lambda db: db.execute(
            "UPDATE targets SET state=?, percent=COALESCE(?, percent), detail=COALESCE(?, detail),"
            " updated_at=COALESCE(?, updated_at) WHERE device=?",
            (state, percent, detail, at, device)))

    # ---- what devices run ---------------------------------------------------------
    def last_report_counter(self, device):
        rows = self._q("SELECT counter FROM firmware WHERE device=?", (device,))
        return rows[0][0] if rows else 0

    def store_report(self, device, counter, report, at):
        """False (and nothing stored) when `counter` is not above the last
        report's: a replay or a re-delivery."""
        def go(db):
            row = db.execute("SELECT counter FROM firmware WHERE device=?", (device,)).fetchone()
            if row is not None and counter <= row[0]:
                return False
            db.execute("INSERT OR REPLACE INTO firmware VALUES(?,?,?,?,?,?,?,?,?)",
                       (device, report["version"], report["slot"], int(report["trial"]),
                        report["status"], report["percent"], json.dumps(report["failures"]),
                        counter, at))
            for f in report["failures"]:
                db.execute("INSERT OR IGNORE INTO failed_versions VALUES(?,?,?,?)",
                           (device, f["version"], f["reason"], at))
            return True
        return self._tx(go)

    def firmware(self, device):
        rows = self._q("SELECT version, slot, trial, status, percent, at, failures FROM firmware "
                       "WHERE device=?", (device,))
        if not rows:
            return None
        r = rows[0]
        fails = [{"version": v, "reason": why, "at": at} for v, why, at in self._q(
            "SELECT version, reason, at FROM failed_versions WHERE device=? ORDER BY at",
            (device,))]
        return {"version": r[0], "slot": r[1], "trial": bool(r[2]), "status": r[3],
                "percent": r[4], "reported_at": r[5], "unreported_failures": json.loads(r[6]),
                "failed_updates": fails}

    def failed_version(self, device, version):
        return bool(self._q("SELECT 1 FROM failed_versions WHERE device=? AND version=?",
                            (device, version)))
