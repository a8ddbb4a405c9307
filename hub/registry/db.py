"""The site registry: site → buildings → flats → residents, and devices, kept
in the hub's SQLite database and changed one validated step at a time
(docs/registry.md).

Storage: the canonical site document (the site-file format, as JSON) in
`registry_doc` with a version number; device keys sealed with the KEK
(hub/registry/kek.py) in `registry_keys`, never in the document; one `registry_audit`
row per change (who, when, what; never a key). Every change is made on a copy
of the document, validated with `hub.config.parse_site` (the one validator)
and only then written, with the version bump and the audit row, in one
transaction: an invalid change leaves everything as it was.

Exceptions::

    hub.HubError
    └── RegistryError
        ├── RegistryInvalid    the change would make the site invalid (HTTP 400)
        ├── RegistryNotFound   no such building/flat/resident/device (404)
        └── RegistryConflict   the id exists, or the entity is still in use (409)
    hub.registry.kek.KekError  the KEK file cannot be used, or does not fit this registry

This module must never write a key into the document, an audit row, a log
line or an error message, and never store a document `parse_site` refused.
"""
import copy
import datetime
import json
import logging
import sqlite3

from hub import ConfigError, HubError, StoreError
from hub.registry import kek
from hub.config import yamlfile
from hub.config.site import parse_site

log = logging.getLogger("anju.hub.registry")

KINDS = ("buildings", "flats", "residents", "devices")
SINGULAR = {"buildings": "building", "flats": "flat", "residents": "resident", "devices": "device"}
KEY_NAMES = ("frame_key", "bind_key")
KEK_CHECK = b"anju-registry-kek-check"

SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_doc(
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, doc TEXT NOT NULL,
    updated_at REAL NOT NULL, kek_check BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS registry_keys(
    device_id TEXT NOT NULL, name TEXT NOT NULL, sealed BLOB NOT NULL,
    PRIMARY KEY (device_id, name));
CREATE TABLE IF NOT EXISTS registry_audit(
    id INTEGER PRIMARY KEY, version INTEGER NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL);
"""


class RegistryError(HubError):
    """Root of the registry's errors."""


class RegistryInvalid(RegistryError, ConfigError):
    """The change would make the site invalid; the message names the field."""


class RegistryNotFound(RegistryError):
    """No such entity."""


class RegistryConflict(RegistryError):
    """The id is taken, or the entity is still in use."""


# ---- documents ---------------------------------------------------------------------
class PathNode(yamlfile.Node):
    """A mapping that locates itself by its path in the registry document
    (`registry devices[door-101]`), so parse_site's errors name the field."""

    def __init__(self, path):
        yamlfile.Node.__init__(self)
        self.path = path
        self.file = path

    def where(self, key=None):
        return self.path


def to_nodes(value, path="registry"):
    """Plain dicts → PathNodes for parse_site; Nodes (from a YAML or CSV
    file) are kept as they are, because they already know their file and line."""
    if isinstance(value, yamlfile.Node):
        return value
    if isinstance(value, dict):
        node = PathNode(path)
        for k, v in value.items():
            child = "%s %s" % (path, k) if path == "registry" else "%s.%s" % (path, k)
            node[k] = to_nodes(v, child)
        return node
    if isinstance(value, list):
        return [to_nodes(v, "%s[%s]" % (path, v.get("id", i) if isinstance(v, dict) else i))
                for i, v in enumerate(value)]
    return value


def plain(value):
    """A JSON-safe copy: Nodes to dicts, dates to ISO text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def _id(entity):
    return str(entity.get("id")) if isinstance(entity, dict) else None


def _buildings(doc):
    return [b for b in (doc.get("buildings") or []) if isinstance(b, dict)]


def _flats(doc):
    for b in _buildings(doc):
        for f in b.get("flats") or []:
            if isinstance(f, dict):
                yield b, f


def _residents(doc):
    for b, f in _flats(doc):
        for r in f.get("residents") or []:
            if isinstance(r, dict):
                yield b, f, r


def _devices(doc):
    return [d for d in (doc.get("devices") or []) if isinstance(d, dict)]


def find(doc, kind, eid):
    """(entity, container list, parents) or None."""
    if kind == "buildings":
        for b in _buildings(doc):
            if _id(b) == eid:
                return b, doc["buildings"], ()
    elif kind == "flats":
        for b, f in _flats(doc):
            if _id(f) == eid:
                return f, b["flats"], (b,)
    elif kind == "residents":
        for b, f, r in _residents(doc):
            if _id(r) == eid:
                return r, f["residents"], (b, f)
    elif kind == "devices":
        for d in _devices(doc):
            if _id(d) == eid:
                return d, doc["devices"], ()
    return None


def view(doc, keys, kind, entity, parents):
    """What the API shows of an entity: its fields, its place, never its keys."""
    out = {k: v for k, v in plain(entity).items() if k not in KEY_NAMES}
    if kind == "buildings":
        out["flats"] = [_id(f) for f in entity.get("flats") or [] if isinstance(f, dict)]
    elif kind == "flats":
        out["building"] = _id(parents[0])
        out["residents"] = [_id(r) for r in entity.get("residents") or [] if isinstance(r, dict)]
    elif kind == "residents":
        out["building"], out["flat"] = _id(parents[0]), _id(parents[1])
    elif kind == "devices":
        out["keys"] = sorted(keys.get(_id(entity), {}))
    return out


# ---- the registry ------------------------------------------------------------------
class Registry:
    """The registry in one SQLite database. Use it from one thread at a time
    (the hub calls it on its loop thread)."""

    def __init__(self, db_path, keybox, clock):
        self.path = str(db_path)
        self.keybox = keybox
        self.clock = clock
        self.guard = None        # callable(site) run before a change is written; may raise
        self.hub_section = None  # replaces the stored `hub:` section in site() (the file's)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                      timeout=5.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError("%s: cannot open the registry: %s" % (self.path, exc)) from exc
        row = self.db.execute("SELECT kek_check FROM registry_doc WHERE id = 1").fetchone()
        if row is not None:
            try:
                self.keybox.open(row[0], KEK_CHECK, "the registry's KEK check value")
            except kek.KekError:
                self.db.close()
                raise

    @classmethod
    def open(cls, db_path, kek_file, clock):
        """Open with the KEK from `kek_file`; KekError when it cannot be used.
        `kek_file` is kept: the visitor service seals with the same KEK."""
        reg = cls(db_path, kek.KeyBox(kek.load(kek_file)), clock)
        reg.kek_file = str(kek_file)
        return reg

    def close(self):
        self.db.close()

    # ---- reading -------------------------------------------------------------------
    def is_empty(self):
        return self._row() is None

    def version(self):
        row = self._row()
        return row[0] if row else 0

    def _row(self):
        return self.db.execute("SELECT version, doc FROM registry_doc WHERE id = 1").fetchone()

    def _load(self):
        """(version, document, {device: {key name: hex}}) as stored."""
        row = self._row()
        if row is None:
            return 0, None, {}
        doc = json.loads(row[1])
        site_id = str((doc.get("site") or {}).get("id"))
        keys = {}
        for did, name, sealed in self.db.execute(
                "SELECT device_id, name, sealed FROM registry_keys ORDER BY device_id, name"):
            raw = self.keybox.open(sealed, kek.aad(site_id, did, name),
                                   "the %s of device %s" % (name, did))
            keys.setdefault(did, {})[name] = raw.hex()
        return row[0], doc, keys

    def _need(self):
        version, doc, keys = self._load()
        if doc is None:
            raise RegistryNotFound("the registry is empty; import a site file first")
        return version, doc, keys

    def document(self, with_keys=False):
        """The site document (plain JSON types); keys only when asked."""
        _, doc, keys = self._need()
        if with_keys:
            _inject_keys(doc, keys)
        return doc

    def site(self):
        """The SiteConfig the hub runs with."""
        _, doc, keys = self._need()
        site = self._validate(doc, keys)
        if self.hub_section is not None:
            site.hub = self.hub_section
        return site

    def list(self, kind):
        _check_kind(kind)
        _, doc, keys = self._need()
        out = []
        for eid in _ids(doc, kind):
            entity, _, parents = find(doc, kind, eid)
            out.append(view(doc, keys, kind, entity, parents))
        return out

    def get(self, kind, eid):
        _check_kind(kind)
        _, doc, keys = self._need()
        hit = find(doc, kind, str(eid))
        if hit is None:
            raise RegistryNotFound("no %s '%s'" % (SINGULAR[kind], eid))
        return view(doc, keys, kind, hit[0], hit[2])

    def audit(self, limit=100):
        rows = self.db.execute("SELECT version, at, actor, action, target, detail FROM registry_audit "
                               "ORDER BY id DESC LIMIT ?", (int(limit),)).fetchall()
        return [{"version": v, "at": at, "actor": actor, "action": action, "target": target,
                 "detail": json.loads(detail)} for v, at, actor, action, target, detail in rows]

    # ---- changes ---------------------------------------------------------------------
    def add(self, kind, body, actor):
        _check_kind(kind)
        body = _body(body)
        eid = body.get("id")
        if eid is None or eid == "":
            raise RegistryInvalid("%s: key 'id' is required" % SINGULAR[kind])
        eid = str(eid)

        def change(doc, keys):
            if find(doc, kind, eid) is not None:
                raise RegistryConflict("%s '%s' already exists" % (SINGULAR[kind], eid))
            if kind in ("buildings", "devices"):
                _children(doc, kind).append(body)
            else:
                parent_kind, key, children = (("buildings", "building", "flats") if kind == "flats"
                                              else ("flats", "flat", "residents"))
                parent = _parent(doc, body, parent_kind, key, SINGULAR[kind])
                _children(parent, children).append(body)
            return doc

        return self._commit(change, "add", kind, eid, actor, sorted(body))

    def update(self, kind, eid, body, actor):
        _check_kind(kind)
        body = _body(body)
        eid = str(eid)
        if "id" in body and str(body.pop("id")) != eid:
            raise RegistryInvalid("%s '%s': key 'id': ids cannot be changed; remove the %s and "
                                  "add it again" % (SINGULAR[kind], eid, SINGULAR[kind]))
        children = {"buildings": "flats", "flats": "residents"}.get(kind)
        if kind == "devices":
            body.pop("keys", None)  # shown by GET, not a field

        def change(doc, keys):
            hit = find(doc, kind, eid)
            if hit is None:
                raise RegistryNotFound("no %s '%s'" % (SINGULAR[kind], eid))
            entity, container, parents = hit
            if children in body:
                # what GET shows (the ids) may come back unchanged; anything else is refused
                if body.pop(children) != [_id(c) for c in entity.get(children) or []]:
                    raise RegistryInvalid("%s '%s': key '%s': change them through "
                                          "/api/registry/%s" % (SINGULAR[kind], eid, children,
                                                                children))
            move_to = None
            if kind == "flats" and "building" in body:
                move_to = ("buildings", "building", "flats")
            elif kind == "residents":
                if "building" in body and str(body.pop("building")) != _id(parents[0]):
                    raise RegistryInvalid("resident '%s': key 'building': move a resident by "
                                          "its 'flat'" % eid)
                if "flat" in body:
                    move_to = ("flats", "flat", "residents")
            if move_to is not None:
                parent = _parent(doc, body, move_to[0], move_to[1], SINGULAR[kind])
                container.remove(entity)
                _children(parent, move_to[2]).append(entity)
            for key, value in body.items():
                if value is None:
                    entity.pop(key, None)
                else:
                    entity[key] = value
            if kind == "devices":
                for name in KEY_NAMES:
                    if name in body and body[name] is None:
                        entity[name] = None  # tells _commit to drop the stored key
            return doc

        return self._commit(change, "update", kind, eid, actor, sorted(body))

    def remove(self, kind, eid, actor):
        _check_kind(kind)
        eid = str(eid)

        def change(doc, keys):
            hit = find(doc, kind, eid)
            if hit is None:
                raise RegistryNotFound("no %s '%s'" % (SINGULAR[kind], eid))
            entity, container, _ = hit
            if kind == "buildings" and entity.get("flats"):
                raise RegistryConflict("building '%s' still has flats %s; remove or move them first"
                                       % (eid, [_id(f) for f in entity["flats"]]))
            if kind == "flats":
                if entity.get("residents"):
                    raise RegistryConflict("flat '%s' still has residents %s; remove or move them "
                                           "first" % (eid, [_id(r) for r in entity["residents"]]))
                users = [_id(d) for d in _devices(doc) if str(d.get("flat")) == eid]
                if users:
                    raise RegistryConflict("flat '%s' still has devices %s; remove or move them "
                                           "first" % (eid, users))
            container.remove(entity)
            return doc

        return self._commit(change, "remove", kind, eid, actor, [])

    def import_document(self, new_doc, actor, source="document"):
        """Replace the whole site. Devices given without keys keep the keys
        stored for the same site and device id."""
        if not isinstance(new_doc, dict):
            raise RegistryInvalid("%s: a site document must be a mapping" % source)
        new_doc = to_nodes(new_doc)

        def change(doc, keys):
            old_site = str(((doc or {}).get("site") or {}).get("id"))
            new_site = new_doc.get("site")
            if not isinstance(new_site, dict) or str(new_site.get("id")) != old_site:
                keys.clear()
            return new_doc

        return self._commit(change, "import", "site", source, actor, [])

    def import_csv(self, files, actor):
        """Replace residents (and the buildings and flats they name) and/or
        devices from `{"residents.csv": text, "devices.csv": text}`."""
        from hub.registry import csvfile as registry_csv
        try:
            parsed = registry_csv.parse_files(files)
        except ConfigError as exc:
            raise RegistryInvalid(str(exc)) from exc

        def change(doc, keys):
            if doc is None:
                raise RegistryInvalid("the registry is empty: import the site's YAML file first "
                                      "(the CSV files do not carry the site id and settings)")
            try:
                return registry_csv.merge(doc, parsed)
            except ConfigError as exc:
                raise RegistryInvalid(str(exc)) from exc

        return self._commit(change, "import", "site", "+".join(sorted(files)), actor, [])

    # ---- the one write path ------------------------------------------------------------
    def _commit(self, change, action, kind, target, actor, fields):
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError("registry: cannot begin a transaction: %s" % exc) from exc
        try:
            version, doc, keys = self._load()
            if doc is None and action != "import":
                raise RegistryNotFound("the registry is empty; import a site file first")
            doc = change(doc, keys)  # a fresh copy from the database
            _take_keys(doc, keys)
            site = self._validate(doc, keys)
            if self.guard is not None:
                self.guard(site)
            self._write(version + 1, doc, site)
            detail = {"kind": kind, "fields": [f for f in fields]}
            self.db.execute("INSERT INTO registry_audit(version, at, actor, action, target, detail) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (version + 1, self.clock.now(), str(actor), action,
                             "%s %s" % (SINGULAR.get(kind, kind), target), json.dumps(detail)))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.db.execute("ROLLBACK")
            raise StoreError("registry: commit failed: %s" % exc) from exc
        log.info("registry changed", extra={"version": version + 1, "action": action,
                                            "target": "%s %s" % (SINGULAR.get(kind, kind), target),
                                            "actor": str(actor)})
        if self.hub_section is not None:
            site.hub = self.hub_section
        return version + 1, site

    def _validate(self, doc, keys):
        full = _inject_keys(doc, keys)
        try:
            return parse_site(to_nodes(full))
        except RegistryError:
            raise
        except ConfigError as exc:
            raise RegistryInvalid(str(exc)) from exc
        finally:
            _strip_keys(doc)

    def _write(self, version, doc, site):
        stored = plain(doc)
        _strip_keys(stored)
        now = self.clock.now()
        check = self.keybox.seal(KEK_CHECK, KEK_CHECK)
        self.db.execute("INSERT INTO registry_doc(id, version, doc, updated_at, kek_check) "
                        "VALUES (1, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
                        "doc = excluded.doc, updated_at = excluded.updated_at",
                        (version, json.dumps(stored, sort_keys=False), now, check))
        self.db.execute("DELETE FROM registry_keys")
        for dev in site.devices.values():
            for name in KEY_NAMES:
                raw = getattr(dev, name)
                if raw is not None:
                    self.db.execute("INSERT INTO registry_keys(device_id, name, sealed) VALUES (?, ?, ?)",
                                    (dev.id, name,
                                     self.keybox.seal(raw, kek.aad(site.site_id, dev.id, name))))


def _check_kind(kind):
    if kind not in KINDS:
        raise RegistryNotFound("no registry collection '%s'; known: %s" % (kind, ", ".join(KINDS)))


def _ids(doc, kind):
    if kind == "buildings":
        return [_id(b) for b in _buildings(doc)]
    if kind == "flats":
        return [_id(f) for _, f in _flats(doc)]
    if kind == "residents":
        return [_id(r) for _, _, r in _residents(doc)]
    return [_id(d) for d in _devices(doc)]


def _body(body):
    if not isinstance(body, dict):
        raise RegistryInvalid("the request body must be a mapping of fields")
    return copy.deepcopy(dict(body))


def _children(node, key):
    """node[key] as a list to append to (a YAML `flats:` left empty is None)."""
    if not isinstance(node.get(key), list):
        node[key] = []
    return node[key]


def _parent(doc, body, parent_kind, key, what):
    if key not in body or body[key] in (None, ""):
        raise RegistryInvalid("%s: key '%s' is required (the %s it belongs to)" % (what, key, key))
    pid = str(body.pop(key))
    hit = find(doc, parent_kind, pid)
    if hit is None:
        raise RegistryInvalid("%s: key '%s': no %s '%s' in this site" % (what, key, key, pid))
    return hit[0]


def _take_keys(doc, keys):
    """Move key fields from the document's devices into `keys`; drop the keys
    of devices that are gone. A key field set to None removes that key."""
    present = set()
    for d in _devices(doc or {}):
        did = _id(d)
        present.add(did)
        for name in KEY_NAMES:
            if name in d:
                value = d.pop(name)
                if value is None:
                    keys.get(did, {}).pop(name, None)
                else:
                    keys.setdefault(did, {})[name] = value
    for did in list(keys):
        if did not in present:
            del keys[did]


def _inject_keys(doc, keys):
    for d in _devices(doc or {}):
        for name, value in keys.get(_id(d), {}).items():
            d[name] = value
    return doc


def _strip_keys(doc):
    for d in _devices(doc or {}):
        for name in KEY_NAMES:
            d.pop(name, None)


def open_for_hub(site_file, db_path, clock, kek_file=None):
    """Registry mode at hub start: (registry, site). The site file is imported
    when the registry is empty; afterwards the registry is the source of truth
    and only the file's `hub:` section (how to start) is taken from the file."""
    node = yamlfile.load(site_file)
    file_site = parse_site(node)
    kek_file = kek_file or file_site.hub.get("kek_file") or kek.DEFAULT_KEK_FILE
    reg = Registry.open(db_path, kek_file, clock)
    try:
        if reg.is_empty():
            reg.import_document(node, "bootstrap", source=str(site_file))
            log.info("registry created from the site file", extra={"file": str(site_file)})
        reg.hub_section = file_site.hub
        if not file_site.hub.get("http"):
            log.warning("registry mode without hub.http: the running hub cannot be changed; "
                        "stop it and use `anju registry --db --kek`")
        return reg, reg.site()
    except HubError:
        reg.close()
        raise
