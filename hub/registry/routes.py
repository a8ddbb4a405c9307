"""HTTP routes of the site registry (docs/registry.md, docs/http_api.md),
mounted on the hub's `HubApi` by `mount(api, hub)` when the hub runs in
registry mode.

Each change runs as one callback on the hub's loop thread (through the API's
`LoopBridge`): read, change, validate with `parse_site`, commit, then
`hub.reload_site(site)`, so the running hub switches between two events and
no event sees half a configuration. Answers never carry keys.

Errors: 400 invalid (the validator's message names the field, and the body's
`field` gives its key alone, for a form to mark it), 404 unknown id, 409 id
taken or still in use (`field` "id" when the id is taken), 415 unknown import content type, 503 when
the store does not answer. This module must never log a request body.
"""
import re

from hub import ConfigError, StoreError
from hub.auth.roles import REGISTRY_KINDS
from hub.config import yamlfile
from hub.web.http import EXECUTOR, LOOP, HttpError, Route
from hub.registry.db import KINDS, RegistryConflict, RegistryInvalid, RegistryNotFound

ACTOR_HEADER = "X-Anju-Actor"
_KIND = "(?P<kind>%s)" % "|".join(KINDS)
# parse_site and the registry name a field as `key 'from'`, `missing key 'name'`
# or `unknown key 'colour'` (hub/config/site.py); the first one is the culprit
_FIELD = re.compile(r"\bkey '([A-Za-z_][A-Za-z0-9_.]{0,63})'")


def invalid_field(message):
    """The key an error message of the validator names first, or None (pure)."""
    found = _FIELD.search(message or "")
    return found.group(1) if found else None


def _field(field):
    return {"field": field} if field else None


def _read(params):
    return REGISTRY_KINDS[params["kind"]][0]


def _write(params):
    return REGISTRY_KINDS[params["kind"]][1]


def mount(api, hub):
    """Each collection needs its own permission (hub/auth/roles.py): an
    installer changes devices, never residents; the whole-site export and
    import need their own."""
    routes = RegistryRoutes(hub, api.bridge)
    one = r"^/api/registry/%s/(?P<id>[^/]+)$" % _KIND
    api.routes.extend([
        Route("GET", r"^/api/registry$", routes.export, "registry.export", EXECUTOR),
        Route("GET", r"^/api/registry/audit$", routes.audit, "registry.audit", LOOP),
        Route("POST", r"^/api/registry/import$", routes.import_, "registry.import", EXECUTOR),
        Route("GET", r"^/api/registry/%s$" % _KIND, routes.list, _read, EXECUTOR),
        Route("POST", r"^/api/registry/%s$" % _KIND, routes.add, _write, EXECUTOR),
        Route("GET", one, routes.get, _read, EXECUTOR),
        Route("POST", one, routes.add, _write, EXECUTOR),
        Route("PUT", one, routes.update, _write, EXECUTOR),
        Route("DELETE", one, routes.remove, _write, EXECUTOR),
    ])
    return routes


def _actor(req):
    """The account, and the name the client gave (`X-Anju-Actor`) after it."""
    headers = getattr(req, "headers", None)
    named = headers.get(ACTOR_HEADER) if headers is not None else None
    actor = "http:%s" % (req.account or "?")
    return "%s (%s)" % (actor, named[:64]) if named else actor


def _content_type(req):
    headers = getattr(req, "headers", None)
    ctype = (headers.get("Content-Type") if headers is not None else None) or ""
    ctype = ctype.split(";")[0].strip().lower()
    return {"application/yaml": "yaml", "application/x-yaml": "yaml", "text/yaml": "yaml",
            "text/x-yaml": "yaml", "text/csv": "csv", "application/json": "json"}.get(ctype, ctype)


class RegistryRoutes:
    def __init__(self, hub, bridge):
        self.hub, self.bridge = hub, bridge

    @property
    def registry(self):
        return self.hub.registry

    def _run(self, fn, *args):
        try:
            return self.bridge.call(fn, *args)
        except RegistryInvalid as exc:
            raise HttpError(400, "invalid", str(exc),
                            extra=_field(invalid_field(str(exc)))) from exc
        except RegistryNotFound as exc:
            raise HttpError(404, "not_found", str(exc)) from exc
        except RegistryConflict as exc:
            taken = "id" if str(exc).endswith("already exists") else None
            raise HttpError(409, "conflict", str(exc), extra=_field(taken)) from exc
        except ConfigError as exc:  # the KEK does not open a stored key
            raise HttpError(500, "registry_unusable", str(exc)) from exc
        except StoreError as exc:
            raise HttpError(503, "store_unavailable", str(exc)) from exc

    def _change(self, method, *args):
        """Change, then swap the running configuration; both on the loop thread."""
        def run():
            version, site = method(*args)
            self.hub.reload_site(site)
            return version
        return self._run(run)

    # ---- reading ---------------------------------------------------------------------
    def export(self, req):
        """JSON by default; `?format=yaml`, or `?format=csv&file=devices.csv|residents.csv`."""
        fmt = req.arg("format", "json")
        doc = self._run(self.registry.document)
        if fmt == "json":
            return 200, {"version": self._run(self.registry.version), "site": doc}
        from hub.web import http
        raw_body = getattr(http, "RawBody", None)
        if fmt not in ("yaml", "csv") or raw_body is None:
            raise HttpError(400, "bad_request", "format must be json, yaml or csv")
        if fmt == "yaml":
            import yaml
            return 200, raw_body("application/yaml; charset=utf-8",
                                 yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
                                 "site.yaml")
        from hub.registry import csvfile as registry_csv
        name = req.arg("file", "residents.csv")
        files = registry_csv.export(doc)
        if name not in files:
            raise HttpError(400, "bad_request", "file must be residents.csv or devices.csv")
        return 200, raw_body("text/csv; charset=utf-8", files[name], name)

    def audit(self, req):
        return 200, {"entries": self._run(self.registry.audit, req.limit())}

    def list(self, req):
        kind = req.params["kind"]
        return 200, {kind: self._run(self.registry.list, kind)}

    def get(self, req):
        return 200, self._run(self.registry.get, req.params["kind"], req.params["id"])

    # ---- changes ---------------------------------------------------------------------
    def add(self, req):
        kind, body = req.params["kind"], req.json()
        if "id" in req.params:
            if "id" in body and str(body["id"]) != req.params["id"]:
                raise HttpError(400, "invalid", "the id in the body differs from the URL's")
            body["id"] = req.params["id"]
        version = self._change(self.registry.add, kind, body, _actor(req))
        return 201, {"version": version, kind[:-1]: self._run(self.registry.get, kind,
                                                              str(body.get("id")))}

    def update(self, req):
        kind, eid = req.params["kind"], req.params["id"]
        version = self._change(self.registry.update, kind, eid, req.json(), _actor(req))
        return 200, {"version": version, kind[:-1]: self._run(self.registry.get, kind, eid)}

    def remove(self, req):
        kind, eid = req.params["kind"], req.params["id"]
        version = self._change(self.registry.remove, kind, eid, _actor(req))
        return 200, {"version": version, "removed": {"kind": kind[:-1], "id": eid}}

    def import_(self, req):
        fmt = _content_type(req)
        body = req._body or b""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HttpError(400, "invalid", "the body is not UTF-8 text") from exc
        actor = _actor(req)
        if fmt == "yaml":
            source = (req.arg("source") or "request body")[:200]
            try:
                doc = yamlfile.loads(text, source)
            except ConfigError as exc:
                raise HttpError(400, "invalid", str(exc)) from exc
            version = self._change(self.registry.import_document, doc, actor, source)
        elif fmt == "csv":
            name = req.arg("file") or ("devices.csv" if "device_id" in text.split("\n", 1)[0]
                                       else "residents.csv")
            version = self._change(self.registry.import_csv, {name: text}, actor)
        elif fmt == "json":
            doc = req.json()
            if isinstance(doc.get("csv"), dict):
                version = self._change(self.registry.import_csv, doc["csv"], actor)
            else:
                version = self._change(self.registry.import_document, doc, actor, "request body")
        else:
            raise HttpError(415, "unsupported_media_type",
                            "send the site as application/yaml, text/csv or application/json; "
                            "got %r" % (fmt or "no content type"))
        return 200, {"version": version}
