"""Accounts, roles, passwords, tokens, sessions, login throttling and the
Host/Origin checks of the HTTP API (hub/auth/), on a moved clock."""
import sqlite3

import argon2
import pytest

from hub import ConfigError
from hub.auth import AccountConflict, AccountInvalid, AccountNotFound, origin, passwords, roles
from hub.auth import throttle
from hub.auth.accounts import SESSION_IDLE_S, SESSION_MAX_AGE_S, AccountStore, path_for
from hub.web.http import parse_config

GOOD = "correct horse battery staple"


class Clock:
    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def now(self):
        return self.t


def _raw(store):
    """Every byte of the database and its write-ahead log."""
    from pathlib import Path
    return b"".join(p.read_bytes() for p in (Path(store.path), Path(store.path + "-wal"))
                    if p.exists())


@pytest.fixture
def store(tmp_path):
    s = AccountStore(path_for(tmp_path / "hub.db"), Clock())
    yield s
    s.close()


# ---- the role table --------------------------------------------------------------------
def test_the_role_table_is_consistent():
    assert roles.check_table() == []
    assert set(roles.ROLES) == set(roles.ROLE_PERMISSIONS) == set(roles.ROLE_TITLES)


PERSONAL = {"residents.read", "access_log.read", "faces.read", "registry.export"}
CHANGES = {"alarms.act", "forwarding.requeue", "faces.write", "site.write", "residents.write",
           "registry_devices.write", "registry.import"}


@pytest.mark.parametrize("role,may,may_not", [
    ("admin", set(roles.PERMISSIONS), set()),
    ("staff", {"alarms.act", "residents.write", "faces.write", "forwarding.requeue"},
     {"accounts.manage", "registry.import", "registry_devices.write"}),
    ("police_liaison", {"alarms.read", "alarms.act", "residents.read"},
     {"residents.write", "registry_devices.write", "faces.read", "access_log.read",
      "forwarding.requeue", "accounts.manage", "registry.export", "registry.import"}),
    ("installer", {"registry_devices.read", "registry_devices.write", "devices.read", "site.read"},
     {"residents.read", "residents.write", "alarms.act", "faces.read", "access_log.read",
      "registry.export", "registry.import", "accounts.manage"}),
    ("read_only", {"alarms.read", "devices.read", "site.read", "hub.metrics"},
     PERSONAL | CHANGES | {"accounts.manage"}),
])
def test_each_role_holds_what_it_needs_and_nothing_it_should_not(role, may, may_not):
    assert all(roles.allowed(role, p) for p in may), role
    assert not any(roles.allowed(role, p) for p in may_not), role


def test_only_admin_manages_accounts_and_imports_and_an_unknown_role_has_nothing():
    assert [r for r in roles.ROLES if roles.allowed(r, "accounts.manage")] == ["admin"]
    assert [r for r in roles.ROLES if roles.allowed(r, "registry.import")] == ["admin"]
    assert not any(roles.allowed("superuser", p) for p in roles.PERMISSIONS)
    assert roles.allowed("read_only", None)  # an open route
    with pytest.raises(KeyError):
        roles.allowed("admin", "no.such.permission")


# ---- passwords -------------------------------------------------------------------------
@pytest.mark.parametrize("password,message", [
    ("", "empty"), ("   ", "empty"), ("short1", "too short"),
    ("aaaaaaaaaaaaaaaa", "too few"), ("password1234", "common"),
    ("x" * 2000, "too long"), ("wang-lan-is-here-42", "account name"),
])
def test_weak_passwords_are_refused_with_the_reason(store, password, message):
    with pytest.raises(AccountInvalid, match=message):
        store.add("wang-lan", "staff", password)
    assert store.account("wang-lan") is None


def test_passwords_are_stored_as_argon2id_and_checked(store, tmp_path):
    store.add("li-wei", "staff", GOOD)
    (stored,) = sqlite3.connect(store.path).execute(
        "SELECT password_hash FROM accounts WHERE name='li-wei'").fetchone()
    assert stored.startswith("$argon2id$") and GOOD not in stored
    assert store.check_password("li-wei", GOOD)["role"] == "staff"
    assert store.check_password("li-wei", GOOD + "x") is None
    assert store.check_password("nobody", GOOD) is None


def test_a_hash_with_old_parameters_is_replaced_at_the_next_login(store):
    store.add("li-wei", "staff", GOOD)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(GOOD)
    store.db.execute("UPDATE accounts SET password_hash=? WHERE name='li-wei'", (weak,))
    assert store.check_password("li-wei", GOOD) is not None
    (now,) = store.db.execute("SELECT password_hash FROM accounts WHERE name='li-wei'").fetchone()
    assert now != weak and not passwords.verify(now, GOOD)[1]
    assert store.check_password("li-wei", GOOD) is not None


# ---- accounts --------------------------------------------------------------------------
def test_names_roles_and_the_last_admin(store):
    with pytest.raises(AccountInvalid, match="account name"):
        store.add("Root Admin", "admin", GOOD)
    with pytest.raises(AccountInvalid, match="allowed roles"):
        store.add("root", "superuser", GOOD)
    store.add("root", "admin", GOOD)
    with pytest.raises(AccountConflict, match="exists"):
        store.add("root", "staff", None)
    with pytest.raises(AccountConflict, match="only admin"):
        store.remove("root")
    store.add("second", "admin", None)
    store.remove("root")
    with pytest.raises(AccountNotFound):
        store.remove("root")
    assert [a["name"] for a in store.accounts()] == ["second"]
    actions = [(e["account"], e["action"], e["target"]) for e in store.audit()]
    assert actions == [("cli", "account_removed", "root"), ("cli", "account_added", "second"),
                       ("cli", "account_added", "root")]


# ---- tokens ----------------------------------------------------------------------------
def test_tokens_are_random_stored_hashed_and_revocable(store):
    store.add("police-platform", "police_liaison", None)
    token_id, token = store.add_token("police-platform", "city platform")
    other_id, other = store.add_token("police-platform")
    assert token != other and len(token) > 40
    raw = _raw(store)
    assert token.encode() not in raw and token[5:].encode() not in raw
    who = store.by_token(token)
    assert (who.account, who.role, who.via) == ("police-platform", "police_liaison", "token")
    assert store.by_token(token + "x") is None and store.by_token("Bearer") is None
    assert store.revoke_token(token_id) is True
    assert store.by_token(token) is None and store.by_token(other) is not None
    assert store.revoke_token(token_id) is False
    with pytest.raises(AccountNotFound):
        store.revoke_token("nope")
    store.add("root", "admin", None)
    store.remove("police-platform")
    assert store.by_token(other) is None
    assert all(t["account"] != "police-platform" for t in store.tokens())


def test_a_token_only_account_cannot_log_in(store):
    store.add("backup", "read_only", None)
    assert store.check_password("backup", "") is None
    assert store.check_password("backup", GOOD) is None


# ---- sessions --------------------------------------------------------------------------
def test_sessions_expire_when_idle_and_at_their_maximum_age(store):
    clock = store.clock
    store.add("li-wei", "staff", GOOD)
    sid, csrf, expires = store.open_session("li-wei")
    assert expires == clock.t + SESSION_MAX_AGE_S
    who = store.by_session(sid)
    assert who.account == "li-wei" and who.csrf_ok(csrf) and not who.csrf_ok(csrf + "x")
    assert not who.csrf_ok(None) and not who.csrf_ok("")
    clock.t += SESSION_IDLE_S - 1
    assert store.by_session(sid) is not None      # a request restarts the idle time
    clock.t += SESSION_IDLE_S - 1
    assert store.by_session(sid) is not None
    clock.t += SESSION_IDLE_S
    assert store.by_session(sid) is None          # idle too long
    sid, _, _ = store.open_session("li-wei")
    for _ in range(int(SESSION_MAX_AGE_S // (SESSION_IDLE_S / 2)) + 1):
        clock.t += SESSION_IDLE_S / 2
        store.by_session(sid)
    assert store.by_session(sid) is None          # busy, but past its maximum age
    raw = _raw(store)
    assert sid.encode() not in raw


def test_a_password_change_ends_every_session(store):
    store.add("li-wei", "staff", GOOD)
    sid, _, _ = store.open_session("li-wei")
    store.set_password("li-wei", GOOD + " again")
    assert store.by_session(sid) is None
    assert store.check_password("li-wei", GOOD) is None


# ---- login throttling ------------------------------------------------------------------
def test_failed_logins_lock_the_account_then_the_window_passes():
    state, now = {}, 1000.0
    limit, window = throttle.LIMITS["account"]
    for i in range(limit):
        assert throttle.retry_after(state, "li-wei", "10.0.0.1", now + i) == 0
        throttle.failed(state, "li-wei", "10.0.0.1", now + i)
    wait = throttle.retry_after(state, "li-wei", "10.0.0.2", now + limit)
    assert wait == pytest.approx(window - limit)   # another address: still the account
    assert throttle.retry_after(state, "wang-lan", "10.0.0.3", now + limit) == 0
    assert throttle.retry_after(state, "li-wei", "10.0.0.2", now + window + 1) == 0


def test_one_address_guessing_many_accounts_is_limited():
    state, now = {}, 0.0
    limit, _ = throttle.LIMITS["address"]
    for i in range(limit):
        throttle.failed(state, "user%d" % i, "10.9.9.9", now)
    assert throttle.retry_after(state, "someone-else", "10.9.9.9", now) > 0
    throttle.succeeded(state, "someone-else")     # a success clears the account, not the address
    assert throttle.retry_after(state, "someone-else", "10.9.9.9", now) > 0
    assert throttle.retry_after(state, "someone-else", "10.1.1.1", now) == 0


# ---- Host and Origin -------------------------------------------------------------------
ALLOWED = ("127.0.0.1", "localhost", "hub.sunrise.lan")


@pytest.mark.parametrize("host,ok", [
    ("127.0.0.1:8080", True), ("localhost", True), ("HUB.sunrise.lan:443", True),
    ("evil.example", False), ("127.0.0.1.evil.example", False), ("", False), (None, False),
    ("127.0.0.1:80x", False), ("user@127.0.0.1", False), ("[::1]:8080", False),
])
def test_host_header(host, ok):
    assert origin.host_allowed(host, ALLOWED) is ok


@pytest.mark.parametrize("origin_value,host,scheme,ok", [
    (None, "127.0.0.1:8080", "http", True),
    ("http://127.0.0.1:8080", "127.0.0.1:8080", "http", True),
    ("https://hub.sunrise.lan", "hub.sunrise.lan", "https", True),
    ("http://evil.example", "127.0.0.1:8080", "http", False),
    ("null", "127.0.0.1:8080", "http", False),
    ("http://localhost:8080", "127.0.0.1:8080", "http", False),    # another name: another origin
    ("http://127.0.0.1:9999", "127.0.0.1:8080", "http", False),
    ("http://hub.sunrise.lan", "hub.sunrise.lan", "https", False),  # scheme differs
])
def test_origin_header(origin_value, host, scheme, ok):
    assert origin.origin_allowed(origin_value, host, ALLOWED, scheme) is ok


@pytest.mark.parametrize("section,message", [
    ({"host": "0.0.0.0"}, "allowed_hosts: the API listens on all interfaces"),
    ({"allowed_hosts": []}, "non-empty list"),
    ({"allowed_hosts": "hub.lan"}, "non-empty list"),
    ({"allowed_hosts": ["hub.lan:8080"]}, r"allowed_hosts\[0\]"),
    ({"allowed_hosts": ["*"]}, "no wildcard"),
    ({"allowed_hosts": [3]}, r"allowed_hosts\[0\]"),
    ({"secure_cookies": "yes"}, "secure_cookies: expected true or false"),
    ({"body_timeout_s": 0}, "body_timeout_s"),
    ({"backlog": 0}, "backlog"),
])
def test_http_config_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(section)


def test_http_config_on_all_interfaces_with_its_names():
    cfg = parse_config({"host": "0.0.0.0", "allowed_hosts": ["hub.sunrise.lan", "192.168.1.20",
                                                             "::1"]})
    assert cfg["allowed_hosts"] == ("hub.sunrise.lan", "192.168.1.20", "::1")
