"""HTTP routes for operating smart locks (docs/http_api.md "Smart locks"),
mounted on the hub's `HubApi` by `mount(api, hub)`.

Every change is stored as a pending command in one transaction on the hub's
loop (hub/locks/book.py) and answered 202 with its pending state; the lock's
CMD_RESULT confirms it later (`GET .../credentials` shows `pending`, `active`,
`failed`). A PIN, a card UID or a phone key is read from the request body,
turned into what the lock stores, and never logged, stored in clear or
returned.
"""
from hub import StoreError
from hub.locks import LockError, book
from hub.web.http import LOOP, HttpError, Route

LOCK_EVENTS = ("access", "forced", "lock_alarm", "local_change")
ONE = r"^/api/locks/(?P<id>[^/]+)"


def mount(api, hub):
    routes = LockRoutes(hub)
    api.routes.extend([
        Route("GET", r"^/api/locks$", routes.list, "devices.read", LOOP),
        Route("GET", ONE + "$", routes.status, "devices.read", LOOP),
        Route("POST", ONE + "/actions$", routes.action, "locks.operate", LOOP),
        Route("GET", ONE + "/users$", routes.users, "locks.read", LOOP),
        Route("GET", ONE + "/credentials$", routes.credentials, "locks.read", LOOP),
        Route("POST", ONE + "/credentials$", routes.add_credential, "locks.credentials", LOOP),
        Route("DELETE", ONE + "/credentials/(?P<cred>[^/]+)$", routes.remove_credential,
              "locks.credentials", LOOP),
        Route("GET", ONE + "/log$", routes.log, "access_log.read", LOOP),
        Route("POST", ONE + "/visitor-revocations$", routes.revoke_visitor_code,
              "locks.credentials", LOOP),
    ])
    return routes


def _hex(value, what):
    if not isinstance(value, str) or not value:
        raise HttpError(400, "bad_request", "%s must be a hex string" % what)
    try:
        return bytes.fromhex(value.replace(":", ""))
    except ValueError as exc:
        raise HttpError(400, "bad_request", "%s must be a hex string" % what) from exc


def _secret(doc):
    """(kind, secret) from the body; the error names the field, never its value."""
    kind = doc.get("kind")
    if kind == "card":
        return kind, _hex(doc.get("card_uid"), "card_uid")
    if kind == "pin":
        pin = doc.get("pin")
        if not isinstance(pin, str):
            raise HttpError(400, "bad_request", "pin must be a string of 4-8 digits")
        return kind, pin
    if kind == "phone":
        return kind, _hex(doc.get("phone_key"), "phone_key")
    if kind == "fingerprint":
        template = doc.get("template")
        if isinstance(template, bool) or not isinstance(template, int):
            raise HttpError(400, "bad_request", "template must be the module's slot id")
        return kind, template
    raise HttpError(400, "bad_request", "kind must be card, pin, phone or fingerprint")


class LockRoutes:
    def __init__(self, hub):
        self.hub = hub

    @property
    def site(self):
        return self.hub.site

    def _lock(self, req):
        dev = self.site.devices.get(req.params["id"])
        if dev is None or dev.kind != "smart_lock":
            raise HttpError(404, "unknown_lock", "no smart lock %s" % req.params["id"])
        return dev

    def _change(self, fn):
        """`fn(tx)` in one transaction; then wake the sender."""
        try:
            with self.hub.store.transaction() as tx:
                out = fn(tx)
        except LockError as exc:
            raise HttpError(400, "bad_request", str(exc)) from exc
        except StoreError as exc:
            raise HttpError(503, "store_unavailable", str(exc)) from exc
        sender = getattr(self.hub, "lock_sender", None)
        if sender is not None:
            sender.wake()
        return out

    def _doc(self, dev):
        store = self.hub.store
        return {"device": dev.id, "flat": dev.flat, "entrance": dev.entrance,
                "state": book.lock_state(store, dev.id),
                "pending": [{k: c[k] for k in ("counter", "command", "state", "requested_at")}
                            for c in book.commands(store, dev.id, open_only=True)]}

    def list(self, req):
        locks = [d for d in self.site.devices.values() if d.kind == "smart_lock"]
        return 200, {"locks": [self._doc(d) for d in sorted(locks, key=lambda d: d.id)]}

    def status(self, req):
        return 200, self._doc(self._lock(req))

    def action(self, req):
        dev = self._lock(req)
        doc = req.json()
        action = doc.get("action")
        if action not in ("lock", "unlock"):
            raise HttpError(400, "bad_request", "action must be lock or unlock")
        who = doc.get("who")
        if who is not None and not isinstance(who, str):
            raise HttpError(400, "bad_request", "who must be a credential id")
        by = "http:%s" % (req.account or "?")
        cmd = self._change(lambda tx: book.lock_ctl(tx, self.site, dev.id, action,
                                                    self.hub.clock.now(), by, who=who))
        return 202, {"command": cmd}

    def users(self, req):
        dev = self._lock(req)
        creds = book.credentials(self.hub.store, dev.id)
        out = []
        for user in book.users(self.hub.store, dev.id):
            if user["state"] == "removed":
                continue
            user["credentials"] = [c for c in creds if c["user"] == user["user"]]
            out.append(user)
        return 200, {"device": dev.id, "users": out}

    def credentials(self, req):
        dev = self._lock(req)
        return 200, {"device": dev.id, "credentials": book.credentials(self.hub.store, dev.id)}

    def add_credential(self, req):
        dev = self._lock(req)
        doc = req.json()
        resident = doc.get("resident")
        if not isinstance(resident, str) or not resident:
            raise HttpError(400, "bad_request", "resident must be a resident id")
        kind, secret = _secret(doc)
        user_type = doc.get("user_type", "unrestricted")
        if user_type not in book.USER_TYPES:
            raise HttpError(400, "bad_request",
                            "user_type must be one of %s" % ", ".join(book.USER_TYPES))
        schedule = doc.get("schedule")
        if schedule is not None and not isinstance(schedule, dict):
            raise HttpError(400, "bad_request", "schedule must be an object")
        by = "http:%s" % (req.account or "?")
        rec, cmds = self._change(lambda tx: book.add_credential(
            tx, self.site, dev.id, resident, kind, secret, self.hub.clock.now(), by, user_type,
            schedule))
        return 202, {"credential": rec, "commands": cmds}

    def remove_credential(self, req):
        dev = self._lock(req)
        by = "http:%s" % (req.account or "?")
        if book.credential(self.hub.store, dev.id, req.params["cred"]) is None:
            raise HttpError(404, "unknown_credential", "lock %s has no credential %s"
                            % (dev.id, req.params["cred"]))
        rec, cmd = self._change(lambda tx: book.remove_credential(
            tx, self.site, dev.id, req.params["cred"], self.hub.clock.now(), by))
        return 202, {"credential": rec, "command": cmd}

    def revoke_visitor_code(self, req):
        """{"digits": "<the ten digits>"}: the lock blocks that visitor code
        until its window ends; 202 with the revocation (requested, then
        confirmed) and its command."""
        dev = self._lock(req)
        digits = req.json().get("digits")
        if not isinstance(digits, str):
            raise HttpError(400, "bad_request", "digits must be the visitor code's ten digits")
        by = "http:%s" % (req.account or "?")
        rec, cmd = self._change(lambda tx: book.revoke_visitor_code(
            tx, self.site, dev.id, digits, self.hub.clock.now(), by))
        return 202, {"revocation": rec, "command": cmd}

    def log(self, req):
        dev = self._lock(req)
        limit = req.limit()
        events = [e for e in self.hub.store.events(dev.id) if e["type"] in LOCK_EVENTS]
        return 200, {"device": dev.id, "entries": list(reversed(events[-limit:]))}
