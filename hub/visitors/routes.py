"""HTTP routes of the visitor service (docs/http_api.md "Visitors",
docs/visitors.md), mounted on the hub's `HubApi` by `mount(api, hub)`.

Two kinds of caller:

- the property office's accounts (sessions or API tokens, hub/auth/roles.py):
  `/api/visitors/...`, each route with its permission;
- a resident, with a token bound to one flat (`anju visitors resident-token`):
  `/api/resident/visits...`. These routes are open to the server (no
  account) and check the token themselves (`Authorization: Bearer avr_...`);
  a token registers, sees and withdraws visits of its own flat only, and a
  visit of another flat is answered as if it did not exist (404).

Handlers run in the server's executor and reach the store through the API's
`LoopBridge`; a photo is checked against the face watch list there, before
the visit is stored. Errors: 400 `invalid` (with `field`, the key the caller
should change), 401 no or unknown resident token, 403 forbidden, 404 unknown
visit, 409 the visit's state does not allow it, 503 the store did not answer.
Never logs a request body.
"""
from hub import StoreError
from hub.visitors import VisitConflict, VisitForbidden, VisitInvalid, VisitNotFound
from hub.web.http import EXECUTOR, HttpError, Route, _b64

_ID = r"(?P<id>[0-9a-f]{32})"
ACTIONS = ("approve", "refuse", "revoke")


def mount(api, hub):
    routes = VisitorRoutes(hub, api.bridge)
    api.routes.extend([
        Route("GET", r"^/api/visitors/visits$", routes.list, "visitors.read", EXECUTOR),
        Route("POST", r"^/api/visitors/visits$", routes.register, "visitors.register", EXECUTOR),
        Route("GET", r"^/api/visitors/visits/%s$" % _ID, routes.show, "visitors.read", EXECUTOR),
        Route("GET", r"^/api/visitors/visits/%s/pass$" % _ID, routes.pass_, "visitors.register",
              EXECUTOR),
        Route("POST", r"^/api/visitors/visits/%s/(?P<action>approve|refuse|revoke)$" % _ID,
              routes.decide, "visitors.approve", EXECUTOR),
        Route("GET", r"^/api/visitors/watch$", routes.watch_list, "visitors.watch", EXECUTOR),
        Route("POST", r"^/api/visitors/watch$", routes.watch, "visitors.watch", EXECUTOR),
        Route("DELETE", r"^/api/visitors/watch/(?P<ref>[0-9]{1,12})$", routes.watch_remove,
              "visitors.watch", EXECUTOR),
        Route("POST", r"^/api/visitors/resident-tokens$", routes.resident_token,
              "visitors.register", EXECUTOR),
        Route("POST", r"^/api/visitors/resident-tokens/revoke$", routes.revoke_resident_tokens,
              "visitors.register", EXECUTOR),
        # resident routes: the token is checked by the handler (see above)
        Route("GET", r"^/api/resident/visits$", routes.resident_list, None, EXECUTOR),
        Route("POST", r"^/api/resident/visits$", routes.resident_register, None, EXECUTOR),
        Route("GET", r"^/api/resident/visits/%s$" % _ID, routes.resident_show, None, EXECUTOR),
        Route("GET", r"^/api/resident/visits/%s/pass$" % _ID, routes.resident_pass, None,
              EXECUTOR),
        Route("POST", r"^/api/resident/visits/%s/revoke$" % _ID, routes.resident_revoke, None,
              EXECUTOR),
    ])
    return routes


class VisitorRoutes:
    def __init__(self, hub, bridge):
        self.hub, self.bridge = hub, bridge

    @property
    def service(self):
        return self.hub.visitors

    def _call(self, fn, *args, **kw):
        try:
            return self.bridge.call(lambda: fn(*args, **kw))
        except VisitInvalid as exc:
            raise HttpError(400, "invalid", str(exc), extra={"field": exc.field}) from exc
        except VisitForbidden as exc:
            raise HttpError(403, "forbidden", str(exc)) from exc
        except VisitNotFound as exc:
            raise HttpError(404, "unknown_visit", str(exc)) from exc
        except VisitConflict as exc:
            raise HttpError(409, "conflict", str(exc)) from exc
        except StoreError as exc:
            raise HttpError(503, "store_unavailable", str(exc)) from exc

    def _changed(self):
        self.bridge.call(self.service.changed)

    def _face_hit(self, doc):
        """(the photo's bytes or None, the watch-list person it matches or None)."""
        photo = doc.pop("photo", None)
        if photo is None:
            return None, None
        check = self.service.face_watch
        if check is None:
            raise HttpError(400, "invalid", "photo: face access is not configured on this hub",
                            extra={"field": "photo"})
        photo = _b64(photo, "photo")
        try:
            return photo, check(photo)
        except VisitInvalid as exc:
            extra = {"field": exc.field}
            if getattr(exc, "reason", None):
                extra["reason"] = exc.reason
            raise HttpError(400, "invalid", str(exc), extra=extra) from exc

    def _registered(self, visit, photo):
        if photo is not None:
            visit["face"] = self.service.enrol_face(visit, photo)
        self._changed()
        return 201, visit

    @staticmethod
    def _actor(req):
        return "http:%s" % (req.account or "?")

    # ---- the property office --------------------------------------------------
    @staticmethod
    def _personal(req):
        want = req.arg("personal") == "1"
        if want and not req.principal.may("visitors.personal"):
            raise HttpError(403, "forbidden", "role %s may not see visitors' personal data "
                                              "(permission visitors.personal)" % req.principal.role)
        return want

    def list(self, req):
        want = self._personal(req)
        visits = self._call(self.service.book.list, req.arg("flat"), req.arg("state"), want,
                            req.limit(), self._actor(req) if want else None)
        return 200, {"visits": visits}

    def show(self, req):
        want = self._personal(req)
        doc = self._call(self.service.book.show, req.params["id"], want, None,
                         self._actor(req) if want else None)
        return 200, doc

    def register(self, req):
        doc = req.json()
        photo, hit = self._face_hit(doc)
        visit = self._call(self.service.book.register, doc, self._actor(req), None, hit)
        return self._registered(visit, photo)

    def pass_(self, req):
        return 200, self._call(self.service.book.pass_of, req.params["id"])

    def decide(self, req):
        doc = req.json() if req._body else {}
        visit = self._call(self.service.book.decide, req.params["id"], req.params["action"],
                           self._actor(req), doc.get("note"))
        self._changed()
        return 200, visit

    def watch(self, req):
        doc = req.json()
        flagged = self._call(self.service.book.watch_add, doc.get("kind"), doc.get("value"),
                             self._actor(req), doc.get("note"))
        self._changed()
        return 201, {"kind": doc.get("kind"), "listed": True, "flagged": flagged}

    def watch_list(self, req):
        return 200, {"entries": self._call(self.service.book.watch_list)}

    def watch_remove(self, req):
        doc = req.json() if req._body else {}
        try:
            gone = self._call(self.service.book.watch_remove, int(req.params["ref"]),
                              self._actor(req), doc.get("note"))
        except HttpError as exc:
            if exc.status == 404:
                raise HttpError(404, "unknown_watch_entry", exc.detail) from exc
            raise
        self._changed()
        return 200, gone

    def resident_token(self, req):
        doc = req.json()
        token = self._call(self.service.book.resident_token, doc.get("flat"), self._actor(req))
        return 201, {"flat": doc.get("flat"), "token": token}

    def revoke_resident_tokens(self, req):
        doc = req.json()
        flat = doc.get("flat")
        if not isinstance(flat, str) or flat not in self.hub.site.flats:
            raise HttpError(400, "invalid", "flat: no flat %r in this site" % (flat,),
                            extra={"field": "flat"})
        n = self._call(self.service.book.revoke_resident_tokens, flat, self._actor(req))
        return 200, {"flat": flat, "revoked": n}

    # ---- residents ---------------------------------------------------------------
    def _flat(self, req):
        auth = (req.headers.get("Authorization") or "")
        scheme, _, token = auth.partition(" ")
        flat = None
        if scheme.lower() == "bearer":
            flat = self._call(self.service.book.flat_of_token, token.strip())
        if flat is None:
            raise HttpError(401, "unauthorized", "send a resident token: Authorization: Bearer "
                                                 "avr_...", {"WWW-Authenticate":
                                                             'Bearer realm="anju-resident"'})
        return flat

    def resident_list(self, req):
        flat = self._flat(req)
        return 200, {"flat": flat, "visits": self._call(self.service.book.list, flat,
                                                        req.arg("state"), False, req.limit())}

    def resident_register(self, req):
        flat = self._flat(req)
        doc = req.json()
        photo, hit = self._face_hit(doc)
        visit = self._call(self.service.book.register, doc, "resident:%s" % flat, flat, hit)
        return self._registered(visit, photo)

    def resident_show(self, req):
        flat = self._flat(req)
        return 200, self._call(self.service.book.show, req.params["id"], False, flat)

    def resident_pass(self, req):
        flat = self._flat(req)
        return 200, self._call(self.service.book.pass_of, req.params["id"], flat)

    def resident_revoke(self, req):
        flat = self._flat(req)
        visit = self._call(self.service.book.decide, req.params["id"], "revoke",
                           "resident:%s" % flat, None, flat)
        self._changed()
        return 200, visit
