"""``anju registry ...``: the site registry from the command line (docs/registry.md),
and ``anju keys kek --out FILE``.

Two ways to reach the registry:
  --hub URL            the running hub's HTTP API (default http://127.0.0.1:8080);
                       changes apply to the running hub at once; the API token
                       comes from --token-file or $ANJU_TOKEN (host_tools/hubauth.py)
  --db DB --kek FILE   the database directly, for a hub that is not running
                       (a running hub would only see the change after a restart)

Exit codes: 0 done, 1 refused by the registry (conflict, not found), 2 invalid input
(the message names the field, or the CSV file, row and column). Never prints a
key except for `export --with-keys`, which needs --db and --kek.
"""
import argparse
import getpass
import http.client
import json
import sys
import urllib.parse
from pathlib import Path

import yaml

from hub import ConfigError, HubError

DEFAULT_HUB = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0


class CliError(Exception):
    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


# ---- backends ---------------------------------------------------------------------------
class HttpBackend:
    """The hub's /api/registry routes."""

    def __init__(self, url, auth=None):
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.auth = auth or {}

    def _call(self, method, path, body=None, content_type="application/json"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        headers = {"X-Anju-Actor": "cli:%s" % getpass.getuser(), **self.auth}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            raise CliError("hub at %s:%d: %s" % (self.host, self.port, exc), 1) from exc
        finally:
            conn.close()
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise CliError("hub answered %d with a body that is not JSON" % resp.status, 1) from exc
        if resp.status >= 400:
            raise CliError("%s (HTTP %d)" % (doc.get("detail") or doc.get("error"), resp.status),
                           2 if resp.status == 400 else 1)
        return doc

    def document(self, with_keys=False):
        if with_keys:
            raise CliError("--with-keys needs --db and --kek: the hub's API never hands out keys")
        return self._call("GET", "/api/registry")["site"]

    def import_yaml(self, text, source):
        path = "/api/registry/import?source=%s" % urllib.parse.quote(source)
        return self._call("POST", path, text.encode(), "application/yaml")["version"]

    def import_csv(self, files):
        return self._call("POST", "/api/registry/import", {"csv": files})["version"]

    def add(self, kind, body):
        return self._call("POST", "/api/registry/%s" % kind, body)

    def update(self, kind, eid, body):
        return self._call("PUT", "/api/registry/%s/%s" % (kind, urllib.parse.quote(eid)), body)

    def remove(self, kind, eid):
        return self._call("DELETE", "/api/registry/%s/%s" % (kind, urllib.parse.quote(eid)))

    def show(self, kind, eid):
        if eid is None:
            return self._call("GET", "/api/registry/%s" % kind)
        return self._call("GET", "/api/registry/%s/%s" % (kind, urllib.parse.quote(eid)))

    def close(self):
        pass


class DbBackend:
    """The registry tables of a hub database, opened with the KEK."""

    def __init__(self, db, kek_file):
        from hub.clock import SystemClock
        from hub.registry.db import Registry
        self.reg = Registry.open(db, kek_file, SystemClock())
        self.actor = "cli:%s" % getpass.getuser()

    def document(self, with_keys=False):
        return self.reg.document(with_keys=with_keys)

    def import_yaml(self, text, source):
        from hub.config import yamlfile
        return self.reg.import_document(yamlfile.loads(text, source), self.actor, source)[0]

    def import_csv(self, files):
        return self.reg.import_csv(files, self.actor)[0]

    def add(self, kind, body):
        version, _ = self.reg.add(kind, body, self.actor)
        return {"version": version, kind[:-1]: self.reg.get(kind, str(body["id"]))}

    def update(self, kind, eid, body):
        version, _ = self.reg.update(kind, eid, body, self.actor)
        return {"version": version, kind[:-1]: self.reg.get(kind, eid)}

    def remove(self, kind, eid):
        version, _ = self.reg.remove(kind, eid, self.actor)
        return {"version": version, "removed": {"kind": kind[:-1], "id": eid}}

    def show(self, kind, eid):
        return self.reg.list(kind) if eid is None else self.reg.get(kind, eid)

    def close(self):
        self.reg.close()


def _backend(args):
    if args.db or args.kek:
        if not (args.db and args.kek):
            raise CliError("--db and --kek go together")
        if args.hub:
            raise CliError("choose --hub or --db/--kek, not both")
        return DbBackend(args.db, args.kek)
    from host_tools import hubauth
    try:
        auth = hubauth.headers(args.token_file)
    except hubauth.TokenError as exc:
        raise CliError(str(exc)) from exc
    return HttpBackend(args.hub or DEFAULT_HUB, auth)


# ---- commands ---------------------------------------------------------------------------
def _fields(pairs):
    """key=value arguments; values read as YAML scalars (true, 12h, [a, b]); key=null removes."""
    body = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError("'%s': expected key=value" % pair)
        try:
            body[key] = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError as exc:
            raise CliError("'%s': the value is not valid: %s" % (pair, exc)) from exc
        if isinstance(body[key], (int, float)) and not isinstance(body[key], bool) and key in (
                "id", "flat", "building", "entrance", "phone", "name"):
            body[key] = value  # ids and phone numbers stay text
    return body


def _kind(word):
    kind = word if word.endswith("s") else word + "s"
    if kind not in ("buildings", "flats", "residents", "devices"):
        raise CliError("unknown kind '%s'; one of building, flat, resident, device" % word)
    return kind


def cmd_import(backend, args):
    paths = [Path(p) for p in args.files]
    try:
        if all(p.suffix.lower() == ".csv" for p in paths):
            version = backend.import_csv({p.name: p.read_text(encoding="utf-8") for p in paths})
        elif len(paths) == 1:
            version = backend.import_yaml(paths[0].read_text(encoding="utf-8"), str(paths[0]))
        else:
            raise CliError("give one YAML site file, or residents.csv and/or devices.csv")
    except OSError as exc:
        raise CliError("%s: %s" % (exc.filename, exc.strerror)) from exc
    print("imported: registry version %d" % version)
    return 0


def cmd_export(backend, args):
    doc = backend.document(with_keys=args.with_keys)
    if args.format == "yaml":
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        if args.out:
            _write(Path(args.out), text, args.with_keys)
        else:
            sys.stdout.write(text)
        return 0
    from hub.registry import csvfile as registry_csv
    files = registry_csv.export(doc, with_keys=args.with_keys)
    if not args.out:
        for name, text in files.items():
            sys.stdout.write("# %s\n%s" % (name, text))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        _write(out / name, text, args.with_keys)
    return 0


def _write(path, text, secret):
    import os
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s%s" % (path, " (with keys, mode 0600)" if secret else ""), file=sys.stderr)


def cmd_add(backend, args):
    body = _fields(args.fields)
    body["id"] = args.id
    print(json.dumps(backend.add(_kind(args.kind), body), indent=2))
    return 0


def cmd_update(backend, args):
    print(json.dumps(backend.update(_kind(args.kind), args.id, _fields(args.fields)), indent=2))
    return 0


def cmd_remove(backend, args):
    print(json.dumps(backend.remove(_kind(args.kind), args.id), indent=2))
    return 0


def cmd_show(backend, args):
    print(json.dumps(backend.show(_kind(args.kind), args.id), indent=2))
    return 0


def _run(fn):
    def run(args):
        from hub.registry.db import RegistryInvalid
        try:
            backend = _backend(args)
            try:
                return fn(backend, args)
            finally:
                backend.close()
        except CliError as exc:
            print("anju: error: %s" % exc, file=sys.stderr)
            return exc.code
        except (RegistryInvalid, ConfigError) as exc:
            print("anju: error: %s" % exc, file=sys.stderr)
            return 2
        except HubError as exc:
            print("anju: error: %s" % exc, file=sys.stderr)
            return 1
    return run


def cmd_kek(args):
    from hub.registry import kek
    try:
        path = kek.create(args.out)
    except kek.KekError as exc:
        print("anju: error: %s" % exc, file=sys.stderr)
        return 2
    print("wrote a new 32-byte KEK to %s (mode 0600); keep a copy offline: without it the "
          "registry's device keys cannot be read" % path)
    return 0


def register_kek(keys_subparsers):
    """`anju keys kek --out FILE`."""
    p = keys_subparsers.add_parser("kek", help="create the registry's key-encryption key file")
    p.add_argument("--out", required=True, help="where to write it (e.g. /etc/anju/kek)")
    p.set_defaults(func=cmd_kek)


def register(subparsers) -> argparse.ArgumentParser:
    reg = subparsers.add_parser("registry", help="the site registry: import, export, add, remove")
    reg.add_argument("--hub", help="the hub's HTTP API (default %s)" % DEFAULT_HUB)
    reg.add_argument("--db", help="the hub's database, when the hub is not running")
    reg.add_argument("--kek", help="the KEK file (with --db)")
    from host_tools import hubauth
    hubauth.add_argument(reg)
    sub = reg.add_subparsers(dest="registry_cmd", required=True)
    p = sub.add_parser("import", help="replace the site from a YAML file or CSV files")
    p.add_argument("files", nargs="+", help="SITE.yaml, or residents.csv and/or devices.csv")
    p.set_defaults(func=_run(cmd_import))
    p = sub.add_parser("export", help="the site as YAML or CSV (no keys unless --with-keys)")
    p.add_argument("--format", choices=("yaml", "csv"), default="yaml")
    p.add_argument("--out", help="file (yaml) or folder (csv); default stdout")
    p.add_argument("--with-keys", action="store_true", help="include device keys (needs --db/--kek)")
    p.set_defaults(func=_run(cmd_export))
    for name, fn, helptext in (("add", cmd_add, "add a building, flat, resident or device"),
                               ("update", cmd_update, "change fields (key=null removes one)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("kind", help="building, flat, resident or device")
        p.add_argument("id")
        p.add_argument("fields", nargs="*", help="key=value (flat=b1-101 kind=door_sensor ...)")
        p.set_defaults(func=_run(fn))
    p = sub.add_parser("remove", help="remove a building, flat, resident or device")
    p.add_argument("kind")
    p.add_argument("id")
    p.set_defaults(func=_run(cmd_remove))
    p = sub.add_parser("show", help="list a kind, or show one entry")
    p.add_argument("kind")
    p.add_argument("id", nargs="?")
    p.set_defaults(func=_run(cmd_show))
    return reg
