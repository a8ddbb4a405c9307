"""Login, logout, sessions, password change and the account list of the
HTTP API (docs/http_api.md, "Authentication"), mounted on `HubApi` by
`mount(api, accounts, clock)`.

A person logs in with `POST /api/login` and gets a session cookie
(`HttpOnly`, `SameSite=Strict`, `Secure` over TLS or when configured) and a
CSRF token that every later change must carry in `X-CSRF-Token`; the
property-office console builds its pages on this. Machines use API tokens
(`anju users token add`), which need no CSRF token. Failed logins are rate
limited per account and per client address (hub/auth/throttle.py): 429 with
`Retry-After`. Every login, failure and logout is in the account audit.

Password checks are argon2 (CPU-bound): these handlers run in the server's
executor. Never logs or returns a password, a session id's hash or a token.
"""
import math
import threading

from hub import StoreError
from hub.auth import AccountInvalid, accounts as accounts_db, roles, throttle
from hub.web.http import EXECUTOR, HttpError, Route

SESSION_COOKIE = "anju_session"


def mount(api, accounts, clock):
    routes = AuthRoutes(accounts, clock)
    api.routes.extend([
        Route("POST", r"^/api/login$", routes.login, None, EXECUTOR),
        Route("POST", r"^/api/logout$", routes.logout, "self", EXECUTOR),
        Route("GET", r"^/api/session$", routes.session, "self", EXECUTOR),
        Route("POST", r"^/api/password$", routes.password, "self", EXECUTOR),
        Route("GET", r"^/api/accounts$", routes.list, "accounts.manage", EXECUTOR),
        Route("GET", r"^/api/accounts/audit$", routes.audit, "accounts.manage", EXECUTOR),
    ])
    return routes


def _text(doc, key, limit=1024):
    value = doc.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise HttpError(400, "bad_request", "'%s' must be a non-empty string of at most %d "
                                            "characters" % (key, limit))
    return value


class AuthRoutes:
    def __init__(self, accounts, clock):
        self.accounts, self.clock = accounts, clock
        self._throttle = {}
        self._lock = threading.Lock()

    def _store(self, fn, *args):
        try:
            return fn(*args)
        except StoreError as exc:
            raise HttpError(503, "store_unavailable", str(exc)) from exc

    def login(self, req):
        """{"account", "password"} -> 200 {"account", "role", "csrf_token", "expires_at"}
        and the session cookie; 401 for a wrong pair, 429 while locked out."""
        doc = req.json()
        name, password = _text(doc, "account", 64), _text(doc, "password")
        found = self._check(req, name, password, "login")
        if found is None:
            self._store(self.accounts.record, name, "login", name, "failed", req.address, None)
            raise HttpError(401, "login_failed", "unknown account or wrong password")
        session_id, csrf, expires = self._store(self.accounts.open_session, found["name"],
                                                req.address)
        self._store(self.accounts.record, found["name"], "login", found["name"], "ok",
                    req.address, None)
        req.cookies.append((SESSION_COOKIE, session_id, int(accounts_db.SESSION_MAX_AGE_S)))
        return 200, {"account": found["name"], "role": found["role"], "csrf_token": csrf,
                     "expires_at": expires, "idle_timeout_s": accounts_db.SESSION_IDLE_S}

    def _check(self, req, name, password, action):
        """The account if `password` is its password, else None; 429 while the
        account or the address is locked out (hub/auth/throttle.py)."""
        with self._lock:
            wait = throttle.retry_after(self._throttle, name, req.address, self.clock.now())
        if wait > 0:
            self._store(self.accounts.record, name, action, name, "locked_out", req.address, None)
            raise HttpError(429, "too_many_attempts", "too many failed attempts; try again in "
                            "%d s" % math.ceil(wait), {"Retry-After": str(math.ceil(wait))})
        found = self._store(self.accounts.check_password, name, password)
        with self._lock:
            if found is None:
                throttle.failed(self._throttle, name, req.address, self.clock.now())
            else:
                throttle.succeeded(self._throttle, name)
        return found

    def logout(self, req):
        principal = req.principal
        if principal.via == "session":
            self._store(self.accounts.close_session, principal.session_hash)
        req.cookies.append((SESSION_COOKIE, None, None))
        return 200, {"logged_out": principal.account}

    def session(self, req):
        p = req.principal
        # the console shows only the actions the role may take
        return 200, {"account": p.account, "role": p.role, "via": p.via,
                     "permissions": sorted(roles.ROLE_PERMISSIONS.get(p.role, ()))}

    def password(self, req):
        """{"current", "new"}: the caller's own password; every session of the
        account ends (log in again)."""
        doc = req.json()
        current, new = _text(doc, "current"), _text(doc, "new")
        account = req.principal.account
        if self._check(req, account, current, "password_change") is None:
            self._store(self.accounts.record, account, "password_change", account, "failed",
                        req.address, None)
            raise HttpError(403, "wrong_password", "the current password is wrong")
        try:
            self._store(self.accounts.set_password, account, new, account)
        except AccountInvalid as exc:
            raise HttpError(400, "weak_password", str(exc)) from exc
        req.cookies.append((SESSION_COOKIE, None, None))
        return 200, {"account": account, "password_changed": True}

    def list(self, req):
        return 200, {"accounts": self._store(self.accounts.accounts),
                     "tokens": self._store(self.accounts.tokens)}

    def audit(self, req):
        return 200, {"entries": self._store(self.accounts.audit, req.limit(), req.arg("account"))}
