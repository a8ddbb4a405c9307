"""The visits in the hub's store: registration, decisions, the pass, entries,
purge (docs/visitors.md).

Tables live in the hub's SQLite store (`hub/store.py`), each change in one
store transaction with its `visit_events` row (who did what when), so a
visit is never approved without the record of who approved it, and an alarm
or an upstream record is queued in the same transaction as the change that
caused it. The ID number, phone and plate are stored only sealed
(hub/visitors/pii.py) and, for matching, as keyed hashes; the purge deletes
the visit's row, its codes and its entries with `secure_delete` on, so the
sealed bytes are overwritten, not left in free pages, and truncates the WAL,
which still holds the rows' earlier versions.

Never logs a personal value; answers carry them masked unless the caller
holds `visitors.personal`.
"""
import datetime
import hashlib
import json
import logging
import secrets
import sqlite3
import uuid
import zoneinfo

from hub.alarms import documents
from hub.visitors import VisitConflict, VisitForbidden, VisitInvalid, VisitNotFound
from hub.visitors import fields, model, passcode, pii, qr

log = logging.getLogger("anju.hub.visitors")

SCHEMA = """
CREATE TABLE IF NOT EXISTS visits(
    id TEXT PRIMARY KEY, flat TEXT NOT NULL, state TEXT NOT NULL, name TEXT NOT NULL,
    phone_sealed BLOB NOT NULL, id_sealed BLOB NOT NULL, id_hash TEXT NOT NULL,
    plate_sealed BLOB, plate_hash TEXT, purpose TEXT NOT NULL,
    valid_from REAL NOT NULL, valid_until REAL NOT NULL, one_time INTEGER NOT NULL,
    entrances TEXT NOT NULL, flat_lock INTEGER NOT NULL, watch TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL, created_by TEXT NOT NULL, decided_at REAL, decided_by TEXT,
    auto INTEGER NOT NULL DEFAULT 0, note TEXT, purge_after REAL NOT NULL,
    overstay_noticed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS visits_flat ON visits(flat, created_at);
CREATE INDEX IF NOT EXISTS visits_id_hash ON visits(id_hash);
CREATE INDEX IF NOT EXISTS visits_plate_hash ON visits(plate_hash);
CREATE TABLE IF NOT EXISTS visit_events(
    id INTEGER PRIMARY KEY, visit_id TEXT NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS visit_events_visit ON visit_events(visit_id, id);
CREATE TABLE IF NOT EXISTS visit_codes(
    visit_id TEXT NOT NULL, device_id TEXT NOT NULL, digits TEXT NOT NULL,
    valid_from REAL NOT NULL, valid_until REAL NOT NULL, one_time INTEGER NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY(visit_id, device_id));
CREATE INDEX IF NOT EXISTS visit_codes_device ON visit_codes(device_id, state);
CREATE TABLE IF NOT EXISTS visit_entries(
    id INTEGER PRIMARY KEY, visit_id TEXT NOT NULL, at REAL NOT NULL, entrance TEXT NOT NULL,
    reader TEXT NOT NULL, credential TEXT NOT NULL, direction TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS visit_entries_visit ON visit_entries(visit_id, id);
CREATE TABLE IF NOT EXISTS visitor_watch(
    kind TEXT NOT NULL, hash TEXT NOT NULL, note TEXT, added_at REAL NOT NULL,
    added_by TEXT NOT NULL, PRIMARY KEY(kind, hash));
CREATE TABLE IF NOT EXISTS visitor_watch_log(
    id INTEGER PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    kind TEXT NOT NULL, note TEXT);
CREATE TABLE IF NOT EXISTS visitor_tokens(
    token_hash TEXT PRIMARY KEY, flat TEXT NOT NULL, created_at REAL NOT NULL,
    created_by TEXT NOT NULL, revoked_at REAL);
"""
TOKEN_PREFIX = "avr_"
VISIT_SCHEMA = "anju.visit/1"
COLUMNS = ("id", "flat", "state", "name", "phone_sealed", "id_sealed", "id_hash", "plate_sealed",
           "plate_hash", "purpose", "valid_from", "valid_until", "one_time", "entrances",
           "flat_lock", "watch", "created_at", "created_by", "decided_at", "decided_by", "auto",
           "note", "purge_after", "overstay_noticed")


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def entrances_of(site, settings):
    """Every entrance the site names: lock entrances, face entrances, readers."""
    names = {d.entrance for d in site.devices.values() if getattr(d, "entrance", None)}
    face = getattr(site, "face", None) or {}
    for e in face.get("entrances", []) or []:
        if isinstance(e, dict) and isinstance(e.get("id"), str):
            names.add(e["id"])
    names.update(r.entrance for r in settings.readers.values())
    return names


class VisitorBook:
    """The visitor service over the hub's store. `alarms` is the hub's
    AlarmBook; `upstream_prefix` the topic prefix of the platform's documents;
    `clock` the injected clock.

    `revoke_lock_code(device_id, digits, actor)` is where a revoked pass's
    lock codes leave the hub: it is called after the revocation is stored,
    once per (lock, code) in `pending_code_revocations()`, and once the lock
    command is queued the caller marks it done with `code_revocation_sent`.
    Unset (None), the codes stay listed as pending (and stop at the end of
    their window on the lock itself)."""

    def __init__(self, store, site, settings, keys, alarms, clock,
                 upstream_prefix="anju/upstream", full_id_targets=()):
        self.store, self.site, self.settings, self.keys = store, site, settings, keys
        self.alarms, self.clock = alarms, clock
        self.topic = "%s/%s/visits" % (upstream_prefix, site.site_id)
        self.full_id_targets = tuple(full_id_targets)
        self.revoke_lock_code = None
        # after a commit: on_approved(visit view) when a pass starts,
        # on_closed(visit id) when it ends (refused, revoked, expired, purged);
        # the face enrolment follows them (hub/visitors/component.py)
        self.on_approved = None
        self.on_closed = None
        with store.transaction() as tx:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    tx.execute(stmt)
        store.db.execute("PRAGMA secure_delete=ON")

    # ---- reading ------------------------------------------------------------
    def _row(self, visit_id):
        rows = self.store.query("SELECT %s FROM visits WHERE id=?" % ", ".join(COLUMNS),
                                (visit_id,))
        return dict(zip(COLUMNS, rows[0])) if rows else None

    def _visit(self, visit_id, flat=None):
        row = self._row(visit_id)
        if row is None or (flat is not None and row["flat"] != flat):
            raise VisitNotFound("no visit %s" % visit_id)
        return row

    @staticmethod
    def _decision_view(row):
        return {"state": row["state"], "valid_from": row["valid_from"],
                "valid_until": row["valid_until"], "one_time": bool(row["one_time"]),
                "entrances": json.loads(row["entrances"])}

    def view(self, row, personal=False):
        """The visit as an answer; personal fields masked unless `personal`."""
        opened = {
            "id_number": self.keys.open(row["id"], "id_number", row["id_sealed"]),
            "phone": self.keys.open(row["id"], "phone", row["phone_sealed"]),
            "plate": (self.keys.open(row["id"], "plate", row["plate_sealed"])
                      if row["plate_sealed"] is not None else None),
            "name": row["name"],
        }
        if not personal:
            opened = {k: pii.mask(k, v) for k, v in opened.items()}
        return dict(opened, id=row["id"], flat=row["flat"], state=row["state"],
                    purpose=row["purpose"], valid_from=row["valid_from"],
                    valid_until=row["valid_until"], one_time=bool(row["one_time"]),
                    entrances=json.loads(row["entrances"]), flat_lock=bool(row["flat_lock"]),
                    watch=json.loads(row["watch"]), created_at=row["created_at"],
                    created_by=row["created_by"], decided_at=row["decided_at"],
                    decided_by=row["decided_by"], auto_approved=bool(row["auto"]),
                    note=row["note"], purge_after=row["purge_after"], masked=not personal)

    def show(self, visit_id, personal=False, flat=None, viewer=None):
        """One visit with its history and entries; a read in full (`personal`)
        is itself recorded in the history, naming `viewer`."""
        row = self._visit(visit_id, flat)
        doc = self.view(row, personal)
        if personal and viewer is not None:
            with self.store.transaction() as tx:
                self._event(tx, visit_id, self.clock.now(), viewer, "personal_data_read", None)
        doc["history"] = [{"at": r[0], "actor": r[1], "action": r[2], "detail": r[3]}
                          for r in self.store.query(
                              "SELECT at, actor, action, detail FROM visit_events "
                              "WHERE visit_id=? ORDER BY id", (visit_id,))]
        doc["entries"] = self.entries(visit_id)
        return doc

    def list(self, flat=None, state=None, personal=False, limit=100, viewer=None):
        """Visits, newest first; a list in full (`personal`) is recorded in
        each listed visit's history, naming `viewer`."""
        q, args = "SELECT %s FROM visits" % ", ".join(COLUMNS), []
        where = []
        if flat is not None:
            where.append("flat=?")
            args.append(flat)
        if state is not None:
            if state not in model.STATES:
                raise VisitInvalid("state", "must be one of %s" % ", ".join(model.STATES))
            where.append("state=?")
            args.append(state)
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY created_at DESC, id LIMIT ?"
        args.append(int(limit))
        visits = [self.view(dict(zip(COLUMNS, r)), personal) for r in self.store.query(q, args)]
        if personal and viewer is not None and visits:
            with self.store.transaction() as tx:
                for v in visits:
                    self._event(tx, v["id"], self.clock.now(), viewer, "personal_data_read",
                                "list")
        return visits

    def entries(self, visit_id):
        return [{"at": r[0], "entrance": r[1], "reader": r[2], "credential": r[3],
                 "direction": r[4]}
                for r in self.store.query("SELECT at, entrance, reader, credential, direction "
                                          "FROM visit_entries WHERE visit_id=? ORDER BY id",
                                          (visit_id,))]

    # ---- resident tokens -----------------------------------------------------
    def resident_token(self, flat, actor):
        """A new token for `flat` (shown once; only its hash is stored)."""
        if not isinstance(flat, str) or flat not in self.site.flats:
            raise VisitInvalid("flat", "no flat %r in this site" % (flat,))
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.transaction() as tx:
            tx.execute("INSERT INTO visitor_tokens(token_hash, flat, created_at, created_by) "
                       "VALUES(?,?,?,?)", (token_hash(token), flat, self.clock.now(), actor))
        log.info("resident token issued", extra={"flat": flat, "actor": actor})
        return token

    def flat_of_token(self, token):
        """The flat a resident token is bound to, or None (unknown or revoked)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            return None
        rows = self.store.query("SELECT flat, revoked_at FROM visitor_tokens WHERE token_hash=?",
                                (token_hash(token),))
        if not rows or rows[0][1] is not None:
            return None
        return rows[0][0]

    def revoke_resident_tokens(self, flat, actor):
        with self.store.transaction() as tx:
            cur = tx.execute("UPDATE visitor_tokens SET revoked_at=? WHERE flat=? AND "
                             "revoked_at IS NULL", (self.clock.now(), flat))
        log.info("resident tokens revoked", extra={"flat": flat, "count": cur.rowcount,
                                                   "actor": actor})
        return cur.rowcount

    # ---- watch list ----------------------------------------------------------
    def watch_add(self, kind, value, actor, note=None):
        """Put an ID number (`id`) or a plate (`plate`) on the visitor watch list;
        only its keyed hash is stored. Visits not yet over that it hits are
        flagged at once (an approved one loses its pass, with an alarm).
        Returns the ids of the visits flagged."""
        now = self.clock.now()
        if kind == "id":
            value = fields.id_number(value, self._today(now), "value")
        elif kind == "plate":
            value = fields.plate(value, "value")
        else:
            raise VisitInvalid("kind", "must be id or plate")
        h = self.keys.match_hash(kind, value)
        column = "id_hash" if kind == "id" else "plate_hash"
        reason = model.watch_hits(h, h, {(kind, h)})[0]
        flagged, passes = [], False
        with self.store.transaction() as tx:
            note = fields.text(note, "note", required=False, limit=200)
            tx.execute("INSERT OR REPLACE INTO visitor_watch(kind, hash, note, added_at, added_by)"
                       " VALUES(?,?,?,?,?)", (kind, h, note, now, actor))
            tx.execute("INSERT INTO visitor_watch_log(at, actor, action, kind, note) "
                       "VALUES(?,?,'added',?,?)", (now, actor, kind, note))
            for r in tx.query("SELECT %s FROM visits WHERE %s=? AND state IN ('requested', "
                              "'approved') AND valid_until>?" % (", ".join(COLUMNS), column),
                              (h, now)):
                row = dict(zip(COLUMNS, r))
                watch = sorted(set(json.loads(row["watch"])) | {kind})
                tx.execute("UPDATE visits SET state='flagged', watch=? WHERE id=?",
                           (json.dumps(watch), row["id"]))
                if row["state"] == "approved":
                    passes = True
                    tx.execute("UPDATE visit_codes SET state='revoke_pending' WHERE visit_id=? "
                               "AND state='live'", (row["id"],))
                self._event(tx, row["id"], now, actor, "flagged",
                            "put on the watch list after %s" % row["state"])
                self._watch_alarm(tx, row, [reason], now)
                flagged.append(row["id"])
        if passes:
            self.send_code_revocations(actor)
        if self.on_closed is not None:
            for visit_id in flagged:
                self.on_closed(visit_id)
        return flagged

    def watch_list(self):
        """The watch list as a clerk may see it: kind, note, who put it there
        and when, and its `ref` (what `watch_remove` takes). The values are
        not kept, only their keyed hashes, so they cannot be shown."""
        rows = self.store.query("SELECT rowid, kind, note, added_at, added_by FROM visitor_watch "
                                "ORDER BY added_at DESC, rowid DESC")
        return [{"ref": r[0], "kind": r[1], "note": r[2], "added_at": r[3], "added_by": r[4]}
                for r in rows]

    def watch_remove(self, ref, actor, note=None):
        """Take an entry off the watch list by its `ref`; recorded with who and
        why. Visits it flagged stay flagged: a clerk decides them."""
        if isinstance(ref, bool) or not isinstance(ref, int) or ref < 1:
            raise VisitInvalid("ref", "must be the positive whole number the watch list shows")
        note = fields.text(note, "note", required=False, limit=200)
        with self.store.transaction() as tx:
            row = tx.query("SELECT kind FROM visitor_watch WHERE rowid=?", (ref,))
            if not row:
                raise VisitNotFound("no watch-list entry %d" % ref)
            tx.execute("DELETE FROM visitor_watch WHERE rowid=?", (ref,))
            tx.execute("INSERT INTO visitor_watch_log(at, actor, action, kind, note) "
                       "VALUES(?,?,'removed',?,?)", (self.clock.now(), actor, row[0][0], note))
        log.info("watch-list entry removed", extra={"ref": ref, "kind": row[0][0], "actor": actor})
        return {"ref": ref, "kind": row[0][0], "listed": False}

    def _watched(self):
        return {(r[0], r[1]) for r in self.store.query("SELECT kind, hash FROM visitor_watch")}

    # ---- registration and decisions -----------------------------------------
    def _today(self, now):
        tz = zoneinfo.ZoneInfo(self.site.timezone or "UTC")
        return datetime.datetime.fromtimestamp(now, tz).date()

    def register(self, body, actor, flat=None, face_hit=None):
        """A new visit from a registration body; `flat` set = a resident
        token's flat (the body's flat must be it); `face_hit` the watch-list
        person the visitor's photo matched (hub/visitors/component.py), or
        None. Returns the visit's view (masked)."""
        now = self.clock.now()
        if flat is not None and isinstance(body, dict) and body.get("flat") != flat:
            raise VisitForbidden("this token registers visits for flat %s only" % flat)
        v = fields.registration(body, self.site.flats, entrances_of(self.site, self.settings),
                                now, self._today(now))
        visit_id = uuid.uuid4().hex
        id_hash = self.keys.match_hash("id", v["id_number"])
        plate_hash = self.keys.match_hash("plate", v["plate"]) if v["plate"] else None
        hits = model.watch_hits(id_hash, plate_hash, self._watched(), face_hit)
        history = [{"flat": r[0], "id_hash": r[1], "approved_at": r[2], "auto": bool(r[3])}
                   for r in self.store.query(
                       "SELECT flat, id_hash, decided_at, auto FROM visits WHERE id_hash=? AND "
                       "decided_at IS NOT NULL AND state IN ('approved', 'revoked', 'expired')",
                       (id_hash,))]
        auto = not hits and model.repeat_visitor(history, v["flat"], id_hash, now,
                                                 self.settings.auto_visits,
                                                 self.settings.auto_within_s)
        state = "flagged" if hits else ("approved" if auto else "requested")
        row = {
            "id": visit_id, "flat": v["flat"], "state": state, "name": v["name"],
            "phone_sealed": self.keys.seal(visit_id, "phone", v["phone"]),
            "id_sealed": self.keys.seal(visit_id, "id_number", v["id_number"]),
            "id_hash": id_hash,
            "plate_sealed": self.keys.seal(visit_id, "plate", v["plate"]) if v["plate"] else None,
            "plate_hash": plate_hash, "purpose": v["purpose"], "valid_from": v["valid_from"],
            "valid_until": v["valid_until"], "one_time": int(v["one_time"]),
            "entrances": json.dumps(v["entrances"]), "flat_lock": int(v["flat_lock"]),
            "watch": json.dumps([k for k, _ in hits]), "created_at": now, "created_by": actor,
            "decided_at": now if auto else None, "decided_by": "auto:repeat_visitor" if auto
            else None, "auto": int(auto), "note": None,
            "purge_after": v["valid_until"] + self.settings.retention_s,
            "overstay_noticed": 0}
        with self.store.transaction() as tx:
            tx.execute("INSERT INTO visits(%s) VALUES(%s)" % (", ".join(COLUMNS),
                                                              ",".join("?" * len(COLUMNS))),
                       tuple(row[c] for c in COLUMNS))
            self._event(tx, visit_id, now, actor, "registered", None)
            if hits:
                self._event(tx, visit_id, now, "watch_list", "flagged",
                            ", ".join(k for k, _ in hits))
                self._watch_alarm(tx, row, hits, now)
            if auto:
                self._event(tx, visit_id, now, "auto:repeat_visitor", "approved",
                            "approved by a clerk %d times within %d days"
                            % (self.settings.auto_visits, self.settings.auto_within_s // 86400))
                self._approved(tx, row, now)
        log.info("visit registered", extra={"visit": visit_id, "flat": v["flat"], "state": state,
                                            "actor": actor})
        view = self.view(self._row(visit_id))
        if auto and self.on_approved is not None:
            self.on_approved(view)
        return view

    def decide(self, visit_id, action, actor, note=None, flat=None):
        """approve / refuse / revoke; `flat` set = a resident token's flat."""
        now = self.clock.now()
        note = fields.text(note, "note", required=False, limit=200)
        with self.store.transaction() as tx:
            row = self._visit(visit_id, flat)
            target = model.next_state(row["state"], action, by_resident=flat is not None,
                                      note=note)
            if action == "approve" and row["valid_until"] <= now:
                raise VisitConflict("the visit's window has already ended")
            tx.execute("UPDATE visits SET state=?, decided_at=COALESCE(?, decided_at), "
                       "decided_by=COALESCE(?, decided_by), note=COALESCE(?, note) WHERE id=?",
                       (target, now if action in ("approve", "refuse") else None,
                        actor if action in ("approve", "refuse") else None, note, visit_id))
            self._event(tx, visit_id, now, actor, target, note)
            row = dict(row, state=target, decided_at=now, decided_by=actor)
            if target == "approved":
                self._approved(tx, row, now)
            elif target == "revoked":
                tx.execute("UPDATE visit_codes SET state='revoke_pending' WHERE visit_id=? "
                           "AND state='live'", (visit_id,))
        log.info("visit %s" % target, extra={"visit": visit_id, "actor": actor})
        if target == "revoked":
            self.send_code_revocations(actor)
        view = self.view(self._row(visit_id))
        if target == "approved" and self.on_approved is not None:
            self.on_approved(view)
        elif target in model.CLOSED and self.on_closed is not None:
            self.on_closed(visit_id)
        return view

    def _event(self, tx, visit_id, at, actor, action, detail):
        tx.execute("INSERT INTO visit_events(visit_id, at, actor, action, detail) "
                   "VALUES(?,?,?,?,?)", (visit_id, at, actor, action, detail))

    def _watch_alarm(self, tx, row, hits, now):
        flat = self.site.flats.get(row["flat"])
        doc = documents.generic(
            self.site, "visitor_watchlist", "high",
            {"building": flat.building if flat else None, "flat": row["flat"]},
            {"visit": row["id"], "hits": [k for k, _ in hits],
             "reasons": [r for _, r in hits], "valid_from": documents.iso(row["valid_from"]),
             "valid_until": documents.iso(row["valid_until"])}, now)
        self.alarms.raise_alarm(tx, "visitor_watchlist:%s" % row["id"], doc, now,
                                actor="visitors")

    # ---- the pass -------------------------------------------------------------
    def _locks_for(self, row):
        entrances = set(json.loads(row["entrances"]))
        locks = [d for d in self.site.devices.values()
                 if d.kind == "smart_lock" and getattr(d, "entrance", None) in entrances]
        if row["flat_lock"]:
            locks += [d for d in self.site.devices.values()
                      if d.kind == "smart_lock" and d.flat == row["flat"]]
        return sorted(locks, key=lambda d: d.id)

    def _approved(self, tx, row, now):
        """Make the pass: a code per lock covered; then the upstream record."""
        for dev in self._locks_for(row):
            if dev.frame_key is None:
                self._event(tx, row["id"], now, "visitors", "no_code",
                            "lock %s has no frame key" % dev.id)
                continue
            taken = [r[0] for r in tx.query(
                "SELECT digits FROM visit_codes WHERE device_id=? AND state='live' AND "
                "valid_until>?", (dev.id, now))]
            try:
                code = passcode.make(dev.frame_key, max(row["valid_from"], now),
                                     row["valid_until"], bool(row["one_time"]), now, taken=taken)
            except passcode.CodeError as exc:
                raise VisitInvalid(exc.field, "no lock code for %s: %s" % (dev.id, exc)) from exc
            tx.execute("INSERT OR REPLACE INTO visit_codes(visit_id, device_id, digits, "
                       "valid_from, valid_until, one_time, state) VALUES(?,?,?,?,?,?,'live')",
                       (row["id"], dev.id, code.digits, code.valid_from, code.valid_until,
                        int(code.one_time)))
        self._upstream(tx, row, now)

    def pass_of(self, visit_id, flat=None):
        """The pass as carried: codes per lock with the window each code holds,
        the QR token, the plate's window. Only for an approved visit."""
        row = self._visit(visit_id, flat)
        if row["state"] != "approved":
            raise VisitConflict("a %s visit has no pass" % row["state"])
        codes = [{"device": r[0], "digits": r[1], "valid_from": r[2], "valid_until": r[3],
                  "one_time": bool(r[4])}
                 for r in self.store.query("SELECT device_id, digits, valid_from, valid_until, "
                                           "one_time FROM visit_codes WHERE visit_id=? AND "
                                           "state='live' ORDER BY device_id", (visit_id,))]
        token = qr.make(self.keys.qr_key, self.site.site_id, visit_id, row["valid_from"],
                        row["valid_until"], bool(row["one_time"]))
        return {"visit": visit_id, "valid_from": row["valid_from"],
                "valid_until": row["valid_until"], "one_time": bool(row["one_time"]),
                "entrances": json.loads(row["entrances"]), "codes": codes,
                "qr": token, "plate": row["plate_hash"] is not None}

    # ---- lock codes of revoked passes -------------------------------------------
    def pending_code_revocations(self):
        return [{"visit": r[0], "device": r[1], "digits": r[2]}
                for r in self.store.query("SELECT visit_id, device_id, digits FROM visit_codes "
                                          "WHERE state='revoke_pending' ORDER BY visit_id, "
                                          "device_id")]

    def code_revocation_sent(self, visit_id, device_id):
        with self.store.transaction() as tx:
            tx.execute("UPDATE visit_codes SET state='revoked' WHERE visit_id=? AND "
                       "device_id=? AND state='revoke_pending'", (visit_id, device_id))

    def send_code_revocations(self, actor="hub:visitors"):
        """Hand every pending lock-code revocation to the lock's command
        (HubService.revoke_visitor_code, wired by the service): after a
        revocation is stored, and at start for any a stopped hub left. A
        code the lock cannot be told about any more (its window has ended,
        or the lock left the site) needs nothing: it is marked done too;
        any other failure leaves it pending for the next call."""
        if self.revoke_lock_code is None:
            return
        from hub.locks import LockError
        for item in self.pending_code_revocations():
            try:
                self.revoke_lock_code(item["device"], item["digits"], actor)
            except LockError as exc:
                log.info("visit %s: code at %s needs no revocation (%s)",
                          item["visit"], item["device"], exc)
            except Exception:  # noqa: BLE001 - kept pending, tried again
                log.exception("visit %s: revoking its code at %s failed; kept pending",
                               item["visit"], item["device"])
                continue
            self.code_revocation_sent(item["visit"], item["device"])

    # ---- upstream ---------------------------------------------------------------
    def upstream_document(self, row, now, full_id):
        """The platform's record of an approved visit: a stable id, the host
        flat, the visitor (ID number masked unless `full_id`), the window."""
        id_number = self.keys.open(row["id"], "id_number", row["id_sealed"])
        plate = (self.keys.open(row["id"], "plate", row["plate_sealed"])
                 if row["plate_sealed"] is not None else None)
        flat = self.site.flats.get(row["flat"])
        return {"schema": VISIT_SCHEMA, "id": "visit-%s" % row["id"], "seq": 1,
                "type": "visit", "site": self.site.site_id,
                "building": flat.building if flat else None, "flat": row["flat"],
                "visitor": {"name": row["name"],
                            "id_number": id_number if full_id else pii.mask("id_number",
                                                                            id_number),
                            "plate": plate},
                "purpose": row["purpose"], "valid_from": documents.iso(row["valid_from"]),
                "valid_until": documents.iso(row["valid_until"]),
                "one_time": bool(row["one_time"]), "entrances": json.loads(row["entrances"]),
                "approved_at": documents.iso(row["decided_at"] or now),
                "approved_by": row["decided_by"] or "?", "created_at": documents.iso(now)}

    def _upstream(self, tx, row, now):
        # One outbox row per target, queued with the approval (idempotent id;
        # a visit approved again after a refusal is not possible: refused is closed).
        for target in self.store.targets:
            doc = self.upstream_document(row, now, target in self.full_id_targets)
            tx.execute("INSERT INTO outbox(alarm_id, seq, topic, payload, created_at, priority,"
                       " target) VALUES(?,?,?,?,?,?,?)",
                       (doc["id"], 1, self.topic, json.dumps(doc, sort_keys=True,
                                                             ensure_ascii=False), now, 0, target))

    # ---- gates and barriers -------------------------------------------------------
    def _spent(self, visit_id, credential):
        return bool(self.store.query("SELECT 1 FROM visit_entries WHERE visit_id=? AND "
                                     "credential=? AND direction='in' LIMIT 1",
                                     (visit_id, credential)))

    def _entered(self, visit_id):
        return bool(self.store.query("SELECT 1 FROM visit_entries WHERE visit_id=? AND "
                                     "direction='in' LIMIT 1", (visit_id,)))

    def admit_qr(self, reader, token, direction="in"):
        """A QR scanned at `reader` (settings.Reader): (open?, reason, visit id)."""
        now = self.clock.now()
        try:
            visit_id, _, _, _ = qr.read(self.keys.qr_key, self.site.site_id, token)
        except qr.QrInvalid as exc:
            self._attempt("visitor_qr_refused", reader, now, {"reason": "invalid",
                                                              "detail": str(exc)})
            return False, "invalid", None
        row = self._row(visit_id)
        return self._admit(reader, row, "qr", direction, now)

    def admit_plate(self, reader, plate, direction="in"):
        """A plate reported by a barrier: (open?, reason, visit id)."""
        now = self.clock.now()
        try:
            value = fields.plate(plate)
        except VisitInvalid:
            self._attempt("visitor_plate_refused", reader, now, {"reason": "malformed"})
            return False, "malformed", None
        h = self.keys.match_hash("plate", value)
        if direction == "in" and ("plate", h) in self._watched():
            self._watched_at_barrier(reader, h, now)
        rows = self.store.query("SELECT %s FROM visits WHERE plate_hash=? AND state IN "
                                "('approved', 'revoked', 'expired', 'flagged') ORDER BY "
                                "created_at DESC" % ", ".join(COLUMNS), (h,))
        best = None
        for r in rows:
            r = dict(zip(COLUMNS, r))
            ok, _ = model.admit(self._decision_view(r), "plate", reader.entrance, now,
                                direction == "in" and self._spent(r["id"], "plate"))
            if ok:
                best = r
                break
            best = best or r
        if best is None:
            # unknown plates are visitor attempts, logged with the plate's
            # hash only (the reader knows the plate; the log need not)
            self._attempt("visitor_plate_unknown", reader, now, {"plate_hash": h})
            return False, "unknown", None
        return self._admit(reader, best, "plate", direction, now)

    def _watched_at_barrier(self, reader, plate_hash, now):
        """A watch-listed plate at a barrier, visit or not: an alarm (one open
        per plate and entrance), the barrier stays shut unless a pass says
        otherwise (a flagged visit has none)."""
        doc = documents.generic(self.site, "visitor_watchlist", "high",
                                {"entrance": reader.entrance, "device": reader.id},
                                {"hits": ["plate"], "reasons": ["number plate on the watch "
                                                                "list at the barrier"],
                                 "reader": reader.id}, now)
        with self.store.transaction() as tx:
            self.alarms.raise_alarm(tx, "visitor_watchlist:%s:%s" % (reader.entrance,
                                                                     plate_hash[:16]),
                                    doc, now, actor="visitors")

    def _admit(self, reader, row, credential, direction, now):
        view = self._decision_view(row) if row is not None else None
        spent = direction == "in" and row is not None and self._spent(row["id"], credential)
        ok, reason = model.admit(view, credential, reader.entrance, now, spent)
        if direction == "out" and not ok and row is not None and self._entered(row["id"]):
            ok, reason = True, "ok"  # leaving is never refused to a visitor who came in
        visit_id = row["id"] if row is not None else None
        with self.store.transaction() as tx:
            if ok:
                tx.execute("INSERT INTO visit_entries(visit_id, at, entrance, reader, credential,"
                           " direction) VALUES(?,?,?,?,?,?)",
                           (visit_id, now, reader.entrance, reader.id, credential, direction))
            tx.append_access("visitor_entry" if ok else "visitor_refused", now,
                             {"visit": visit_id, "entrance": reader.entrance,
                              "reader": reader.id, "credential": credential,
                              "direction": direction, "reason": reason})
        return ok, reason, visit_id

    def record_lock_entry(self, tx, device, code, at):
        """A lock opened for a visitor code (its ACCESS frame, in that frame's
        transaction): the entry goes to the visit whose code at this lock it
        is (credential `code`, direction `in`; a lock reports no exits). A
        code the hub no longer knows (its visit purged) records nothing."""
        # a code's valid_from is its start slot's (passcode.Code), as the frame's
        for visit_id, digits in tx.query(
                "SELECT visit_id, digits FROM visit_codes WHERE device_id=? AND valid_from=?",
                (device.id, code["valid_from"])):
            if passcode.parse(digits)[0] == code["check"]:
                tx.execute("INSERT INTO visit_entries(visit_id, at, entrance, reader, credential,"
                           " direction) VALUES(?,?,?,?,?,?)",
                           (visit_id, at, device.entrance or device.flat or "", device.id,
                            "code", "in"))
                return visit_id
        return None

    def _attempt(self, kind, reader, now, payload):
        with self.store.transaction() as tx:
            tx.append_access(kind, now, dict(payload, reader=reader.id,
                                             entrance=reader.entrance))

    # ---- time: expiry, overstay, purge ----------------------------------------------
    def tick(self):
        """Expire passes whose window ended, raise overstay notices, purge
        what is past retention. Returns what it did (counts)."""
        now = self.clock.now()
        done = {"expired": 0, "overstay": 0, "purged": 0}
        closed = []
        with self.store.transaction() as tx:
            for (visit_id,) in tx.query("SELECT id FROM visits WHERE state='approved' AND "
                                        "valid_until<=?", (now,)):
                tx.execute("UPDATE visits SET state='expired' WHERE id=?", (visit_id,))
                tx.execute("UPDATE visit_codes SET state='expired' WHERE visit_id=? AND "
                           "state='live'", (visit_id,))
                self._event(tx, visit_id, now, "clock", "expired", None)
                done["expired"] += 1
                closed.append(visit_id)
            for r in tx.query("SELECT %s FROM visits WHERE overstay_noticed=0 AND valid_until<=?"
                              % ", ".join(COLUMNS), (now - self.settings.overstay_s,)):
                row = dict(zip(COLUMNS, r))
                moves = self.entries(row["id"])
                # a lock reports entries only: who came in by a code alone is
                # not judged (no exit could ever be seen)
                entered = [m["at"] for m in moves if m["direction"] == "in"
                           and m["credential"] != "code"]
                exited = bool(entered) and any(m["direction"] == "out" and m["at"] >= entered[-1]
                                               for m in moves)
                if model.overstayed(entered[-1] if entered else None, exited,
                                    row["valid_until"], now, self.settings.overstay_s):
                    self._overstay(tx, row, entered[-1], now)
                    done["overstay"] += 1
                else:
                    # checked once: no entry after the window can follow, so
                    # this visit never overstays (2 = judged, no notice)
                    tx.execute("UPDATE visits SET overstay_noticed=2 WHERE id=?", (row["id"],))
            gone = [r[0] for r in tx.query("SELECT id FROM visits WHERE purge_after<=?", (now,))]
            for visit_id in gone:
                for table in ("visit_codes", "visit_entries"):
                    tx.execute("DELETE FROM %s WHERE visit_id=?" % table, (visit_id,))
                tx.execute("DELETE FROM visits WHERE id=?", (visit_id,))
                self._event(tx, visit_id, now, "clock", "purged",
                            "personal data deleted after the retention period")
            done["purged"] = len(gone)
            closed.extend(gone)
        if self.on_closed is not None:
            for visit_id in closed:
                self.on_closed(visit_id)
        if gone:
            self._truncate_wal()
            log.info("visits purged", extra={"count": len(gone)})
        return done

    def _truncate_wal(self):
        # The purged rows' earlier versions are still frames of the WAL until
        # it restarts: copy it back and cut it to zero now (purges are rare).
        try:
            busy, _, _ = self.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("WAL not truncated after a purge", extra={"error": str(exc)})
            return
        if busy:
            log.warning("WAL not truncated after a purge (a reader held it); it is "
                        "overwritten when it restarts")

    def _overstay(self, tx, row, entered_at, now):
        tx.execute("UPDATE visits SET overstay_noticed=1 WHERE id=?", (row["id"],))
        self._event(tx, row["id"], now, "clock", "overstay", None)
        flat = self.site.flats.get(row["flat"])
        doc = documents.generic(
            self.site, "visitor_overstay", "low",
            {"building": flat.building if flat else None, "flat": row["flat"]},
            {"visit": row["id"], "entered_at": documents.iso(entered_at),
             "valid_until": documents.iso(row["valid_until"])}, now)
        self.alarms.raise_alarm(tx, "visitor_overstay:%s" % row["id"], doc, now,
                                actor="visitors")

    def next_deadline(self):
        """When `tick` next has something to do (None: nothing scheduled)."""
        rows = self.store.query(
            "SELECT MIN(t) FROM (SELECT MIN(valid_until) AS t FROM visits WHERE state='approved'"
            " UNION ALL SELECT MIN(valid_until)+? FROM visits WHERE overstay_noticed=0"
            " UNION ALL SELECT MIN(purge_after) FROM visits)", (self.settings.overstay_s,))
        return rows[0][0] if rows else None
