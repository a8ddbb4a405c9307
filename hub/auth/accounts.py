"""The accounts database: accounts with roles, API tokens, sessions and the
account audit, in SQLite beside the hub's event store.

Its own file (`hub-accounts.db` next to `hub.db`, see `path_for`), so the
HTTP API's writes (sessions, audit rows) never take the write lock of the
database the alarm ingest commits to; WAL, like the store. One connection,
shared by the server's worker threads under a lock; the `anju users` command
line opens the same file while the hub runs (SQLite serialises the writers).

Secrets are random and stored only as hashes: passwords as argon2id
(hub/auth/passwords.py); API tokens, session ids and CSRF tokens as SHA-256.
A token is 256 random bits, so unlike a password it cannot be guessed from a
fast hash: SHA-256 is enough, and lets a request's token be found by an
index lookup rather than by trying every stored hash. There is no default
account: the first admin is created with `anju users add NAME --role admin`.
"""
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
from pathlib import Path

from hub import StoreError
from hub.auth import AccountConflict, AccountInvalid, AccountNotFound, passwords, roles

TOKEN_PREFIX = "anju_"
SESSION_MAX_AGE_S = 12 * 3600.0   # a session ends 12 h after login at the latest
SESSION_IDLE_S = 30 * 60.0        # ... or after 30 min without a request
_TOUCH_EVERY_S = 30.0             # last_seen is written at most this often per session
MAX_LABEL = 200
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts(
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT,
    created_at REAL NOT NULL, password_changed_at REAL);
CREATE TABLE IF NOT EXISTS api_tokens(
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    label TEXT, created_at REAL NOT NULL, last_used_at REAL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS sessions(
    hash TEXT PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    csrf_hash TEXT NOT NULL, created_at REAL NOT NULL, last_seen REAL NOT NULL,
    expires_at REAL NOT NULL, address TEXT);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions(account);
CREATE TABLE IF NOT EXISTS auth_audit(
    id INTEGER PRIMARY KEY, at REAL NOT NULL, account TEXT, action TEXT NOT NULL,
    target TEXT, outcome TEXT NOT NULL, address TEXT, detail TEXT);
"""


def path_for(db_path):
    """The accounts database that goes with the hub database `db_path`."""
    p = Path(db_path)
    return p.with_name(p.stem + "-accounts.db")


def _sha256(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Principal:
    """Who a request is: the account, its role, and how it proved it."""

    def __init__(self, account, role, via, session_hash=None, csrf_hash=None, token_id=None):
        self.account, self.role, self.via = account, role, via
        self.session_hash, self.csrf_hash, self.token_id = session_hash, csrf_hash, token_id

    def may(self, permission):
        return roles.allowed(self.role, permission)

    def csrf_ok(self, presented):
        if self.via != "session":
            return True
        if not presented:
            return False
        return hmac.compare_digest(_sha256(presented), self.csrf_hash)


class AccountStore:
    def __init__(self, path, clock):
        self.path, self.clock = str(path), clock
        self._lock = threading.Lock()
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                      timeout=5.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError("%s: cannot open the accounts database: %s" % (self.path, exc)) from exc

    def close(self):
        with self._lock:
            self.db.close()

    def _q(self, sql, args=()):
        with self._lock:
            try:
                return self.db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError("accounts database: %s" % exc) from exc

    def _tx(self, statements):
        """Run [(sql, args)] in one transaction."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, args in statements:
                        self.db.execute(sql, args)
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as exc:
                raise AccountConflict(str(exc)) from exc
            except sqlite3.Error as exc:
                raise StoreError("accounts database: %s" % exc) from exc

    # ---- accounts ---------------------------------------------------------------------
    @staticmethod
    def check_name(name):
        if not isinstance(name, str) or not _NAME.match(name):
            raise AccountInvalid("account name %r: use 1-64 lowercase letters, digits, '.', '_' "
                                 "or '-', starting with a letter or digit" % (name,))
        return name

    @staticmethod
    def check_role(role):
        if role not in roles.ROLES:
            raise AccountInvalid("role %r: allowed roles are %s" % (role, ", ".join(roles.ROLES)))
        return role

    def account(self, name):
        rows = self._q("SELECT name, role, password_hash IS NOT NULL, created_at, "
                       "password_changed_at FROM accounts WHERE name=?", (name,))
        if not rows:
            return None
        n, role, has_pw, created, changed = rows[0]
        return {"name": n, "role": role, "password": bool(has_pw), "created_at": created,
                "password_changed_at": changed}

    def accounts(self):
        return [self.account(r[0]) for r in self._q("SELECT name FROM accounts ORDER BY name")]

    def add(self, name, role, password=None, actor="cli"):
        """A new account; `password=None` makes a machine account (tokens only)."""
        self.check_name(name)
        self.check_role(role)
        digest = None
        if password is not None:
            passwords.check_policy(password, name)
            digest = passwords.hash_password(password)
        if self.account(name) is not None:
            raise AccountConflict("account %s exists already" % name)
        now = self.clock.now()
        self._tx([("INSERT INTO accounts(name, role, password_hash, created_at, "
                   "password_changed_at) VALUES (?, ?, ?, ?, ?)",
                   (name, role, digest, now, now if digest else None)),
                  self._audit_sql(actor, "account_added", name, "ok", None, {"role": role})])
        return self.account(name)

    def _require(self, name):
        found = self.account(name)
        if found is None:
            raise AccountNotFound("no account %s" % name)
        return found

    def _admins(self):
        return [r[0] for r in self._q("SELECT name FROM accounts WHERE role='admin'")]

    def remove(self, name, actor="cli"):
        found = self._require(name)
        if found["role"] == "admin" and self._admins() == [name]:
            raise AccountConflict("%s is the only admin; add another admin first" % name)
        self._tx([("DELETE FROM api_tokens WHERE account=?", (name,)),
                  ("DELETE FROM sessions WHERE account=?", (name,)),
                  ("DELETE FROM accounts WHERE name=?", (name,)),
                  self._audit_sql(actor, "account_removed", name, "ok", None, None)])

    def set_password(self, name, password, actor="cli"):
        """Replace the password; every session of the account ends."""
        self._require(name)
        passwords.check_policy(password, name)
        digest = passwords.hash_password(password)
        self._tx([("UPDATE accounts SET password_hash=?, password_changed_at=? WHERE name=?",
                   (digest, self.clock.now(), name)),
                  ("DELETE FROM sessions WHERE account=?", (name,)),
                  self._audit_sql(actor, "password_changed", name, "ok", None, None)])

    def check_password(self, name, password):
        """The account dict when `password` is its password, else None. CPU-bound
        (argon2): call it off the event loop. Rehashes when the parameters moved."""
        rows = self._q("SELECT password_hash FROM accounts WHERE name=?", (name,)) \
            if isinstance(name, str) else []
        if not rows or rows[0][0] is None or not isinstance(password, str) \
                or len(password) > passwords.MAX_LENGTH:
            passwords.burn(password if isinstance(password, str) else "")
            return None
        ok, rehash = passwords.verify(rows[0][0], password)
        if not ok:
            return None
        if rehash:
            self._tx([("UPDATE accounts SET password_hash=? WHERE name=? AND password_hash=?",
                       (passwords.hash_password(password), name, rows[0][0]))])
        return self.account(name)

    # ---- API tokens -------------------------------------------------------------------
    def add_token(self, name, label=None, actor="cli"):
        """(token id, the token): the token is shown this once and stored as a hash."""
        self._require(name)
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
            raise AccountInvalid("a token label is text of at most %d characters" % MAX_LABEL)
        token_id = secrets.token_hex(4)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._tx([("INSERT INTO api_tokens(id, hash, account, label, created_at) "
                   "VALUES (?, ?, ?, ?, ?)", (token_id, _sha256(token), name, label,
                                              self.clock.now())),
                  self._audit_sql(actor, "token_added", name, "ok", None,
                                  {"token_id": token_id, "label": label})])
        return token_id, token

    def tokens(self, name=None):
        sql = ("SELECT id, account, label, created_at, last_used_at, revoked_at FROM api_tokens"
               + (" WHERE account=?" if name else "") + " ORDER BY created_at, id")
        return [dict(zip(("id", "account", "label", "created_at", "last_used_at", "revoked_at"), r))
                for r in self._q(sql, (name,) if name else ())]

    def revoke_token(self, token_id, actor="cli"):
        rows = self._q("SELECT account, revoked_at FROM api_tokens WHERE id=?", (token_id,))
        if not rows:
            raise AccountNotFound("no token %s" % token_id)
        if rows[0][1] is not None:
            return False
        self._tx([("UPDATE api_tokens SET revoked_at=? WHERE id=?", (self.clock.now(), token_id)),
                  self._audit_sql(actor, "token_revoked", rows[0][0], "ok", None,
                                  {"token_id": token_id})])
        return True

    def by_token(self, token):
        """The Principal of a live API token, or None."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        rows = self._q("SELECT t.id, t.account, a.role, t.last_used_at FROM api_tokens t "
                       "JOIN accounts a ON a.name = t.account "
                       "WHERE t.hash=? AND t.revoked_at IS NULL", (_sha256(token),))
        if not rows:
            return None
        token_id, account, role, last_used = rows[0]
        now = self.clock.now()
        if last_used is None or now - last_used >= _TOUCH_EVERY_S:
            self._tx([("UPDATE api_tokens SET last_used_at=? WHERE id=?", (now, token_id))])
        return Principal(account, role, "token", token_id=token_id)

    # ---- sessions ---------------------------------------------------------------------
    def open_session(self, name, address=None):
        """(session id, CSRF token, expires_at) for a logged-in person."""
        self._require(name)
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + SESSION_MAX_AGE_S
        self._tx([("DELETE FROM sessions WHERE expires_at <= ? OR last_seen <= ?",
                   (now, now - SESSION_IDLE_S)),
                  ("INSERT INTO sessions(hash, account, csrf_hash, created_at, last_seen, "
                   "expires_at, address) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (_sha256(session_id), name, _sha256(csrf), now, now, expires, address))])
        return session_id, csrf, expires

    def by_session(self, session_id):
        """The Principal of a live session (its idle time restarts), or None."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 200:
            return None
        digest = _sha256(session_id)
        rows = self._q("SELECT s.account, a.role, s.csrf_hash, s.last_seen, s.expires_at "
                       "FROM sessions s JOIN accounts a ON a.name = s.account WHERE s.hash=?",
                       (digest,))
        if not rows:
            return None
        account, role, csrf_hash, last_seen, expires = rows[0]
        now = self.clock.now()
        if now >= expires or now - last_seen >= SESSION_IDLE_S:
            self._tx([("DELETE FROM sessions WHERE hash=?", (digest,))])
            return None
        if now - last_seen >= _TOUCH_EVERY_S:
            self._tx([("UPDATE sessions SET last_seen=? WHERE hash=?", (now, digest))])
        return Principal(account, role, "session", session_hash=digest, csrf_hash=csrf_hash)

    def close_session(self, session_hash):
        self._tx([("DELETE FROM sessions WHERE hash=?", (session_hash,))])

    # ---- audit ------------------------------------------------------------------------
    def _audit_sql(self, account, action, target, outcome, address, detail):
        return ("INSERT INTO auth_audit(at, account, action, target, outcome, address, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.clock.now(), account, action, target, outcome, address,
                 json.dumps(detail, sort_keys=True) if detail is not None else None))

    def record(self, account, action, target=None, outcome="ok", address=None, detail=None):
        """One audit row: who (`account`, None when unknown) did what to what."""
        self._tx([self._audit_sql(account, action, target, outcome, address, detail)])

    def audit(self, limit=100, account=None):
        sql = ("SELECT id, at, account, action, target, outcome, address, detail FROM auth_audit"
               + (" WHERE account=?" if account else "") + " ORDER BY id DESC LIMIT ?")
        rows = self._q(sql, ((account,) if account else ()) + (int(limit),))
        keys = ("id", "at", "account", "action", "target", "outcome", "address", "detail")
        out = []
        for r in rows:
            doc = dict(zip(keys, r))
            doc["detail"] = json.loads(doc["detail"]) if doc["detail"] else None
            out.append(doc)
        return out
