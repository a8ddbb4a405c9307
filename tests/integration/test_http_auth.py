"""The HTTP API refuses what it must (docs/http_api.md, "Authentication" and
"Limits"), against a running hub in registry mode: the real aiohttp server on
a loopback port, real clients (aiohttp, raw sockets), real brokers, frames
from the firmware encoder.

Each test reproduces an attack on the API as it was without authentication:
unauthenticated and cross-site changes, a door sensor's key replaced and then
frames forged with it, deep JSON, slow bodies, a burst of connections.
"""
import asyncio
import json
import re
import sqlite3

import aiohttp
import pytest

from hub.auth import roles
from hub.auth.accounts import path_for
from hub.clock import SystemClock
from hub.registry import kek
from hub.registry.db import KINDS, open_for_hub
from hub.service import HubService
from tests.authkit import bearer
from tests.integration.hubkit import door_frame, publish_frame, wait_for

pytestmark = pytest.mark.broker

KEY = bytes(range(1, 33))
ATTACKER_KEY = bytes(range(100, 132))
GOOD = "correct horse battery staple"
SITE = """
site: {id: sunrise}
hub: {registry: true}
buildings:
  - id: b1
    flats:
      - id: b1-101
        inactivity: 12h
        residents: [{id: r-101, name: Wang Lan, phone: "+86 138 0000 0101", lives_alone: true}]
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt,
     frame_key: %s}
""" % KEY.hex()


class Rig:
    def __init__(self, hub, broker, session, db):
        self.hub, self.broker, self.http, self.db = hub, broker, session, db
        self.base = "http://127.0.0.1:%d" % hub.http.port

    async def call(self, method, path, role="admin", **kwargs):
        headers = dict(bearer(self.hub, role)) if role else {}
        headers.update(kwargs.pop("headers", {}))
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as r:
            if r.content_type == "text/event-stream":  # the live alarm stream never ends
                return r.status, "", r
            text = await r.text()
            return r.status, (json.loads(text) if r.content_type == "application/json" else text), r

    def publish(self, counter, key, device="door-101"):
        publish_frame(self.broker, device, door_frame(counter, key=key, device=device))


@pytest.fixture
async def rig(tmp_path, make_broker):
    site_broker, upstream = make_broker("site"), make_broker("upstream")
    (tmp_path / "site.yaml").write_text(SITE)
    reg, site = open_for_hub(tmp_path / "site.yaml", tmp_path / "hub.db", SystemClock(),
                             kek.create(tmp_path / "kek"))
    hub = HubService(site, tmp_path / "hub.db", SystemClock(),
                     {"host": site_broker.host, "port": site_broker.port},
                     {"host": upstream.host, "port": upstream.port}, registry=reg,
                     http={"port": 0, "body_timeout_s": 1.0})
    await hub.start(connect_timeout=10)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        yield Rig(hub, site_broker, session, tmp_path / "hub.db")
    finally:
        await session.close()
        await hub.stop()
        reg.close()


def concrete_routes(hub):
    """(method, path, permission) for every route, with made-up ids (nothing exists)."""
    out = []
    for route in hub.http.api.routes:
        pattern = route.regex.pattern.strip("^$")
        kinds = KINDS if "(?P<kind>" in pattern else [None]
        for kind in kinds:
            path = re.sub(r"\(\?P<kind>[^)]*\)", kind or "", pattern)
            path = re.sub(r"\(\?P<id>[^)]*\)", "nobody", path)
            params = {"kind": kind, "id": "nobody"} if kind else {"id": "nobody"}
            out.append((route.method, path, route.permission_for(params)))
    return out


# ---- who may ---------------------------------------------------------------------------
async def test_every_route_but_health_and_login_needs_credentials(rig):
    routes = concrete_routes(rig.hub)
    open_routes = sorted(p for m, p, perm in routes if perm is None)
    # the console's files (hub/console/files.py: no data, only GET) are open too
    assert open_routes == ["/", "/api/login", "/console/(?P<path>.+)", "/health"]
    for method, path, perm in routes:
        if perm is None:
            continue
        status, body, resp = await rig.call(method, path, role=None,
                                            data=b'{"all": true}',
                                            headers={"Content-Type": "application/json"})
        assert (status, body["error"]) == (401, "unauthorized"), (method, path)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = await rig.call("GET", "/api/registry/residents", role=None,
                                  headers={"Authorization": "Bearer anju_not-a-token"})
    assert status == 401
    assert rig.hub.registry.version() == 1 and rig.hub.store.alarms() == []


@pytest.mark.parametrize("role", ["admin", "staff", "police_liaison", "installer", "read_only"])
async def test_each_role_gets_exactly_its_routes(rig, role):
    from hub.auth import roles
    for method, path, perm in concrete_routes(rig.hub):
        status, body, _ = await rig.call(method, path, role=role)
        if roles.allowed(role, perm):
            assert status not in (401, 403), (role, method, path, body)
        else:
            assert (status, body["error"]) == (403, "forbidden"), (role, method, path)
    assert rig.hub.registry.version() == 1  # made-up ids and empty bodies change nothing


async def test_the_installer_changes_devices_and_cannot_see_residents(rig):
    status, body, _ = await rig.call("GET", "/api/registry/residents", role="installer")
    assert status == 403 and "Wang Lan" not in json.dumps(body)
    status, body, _ = await rig.call("GET", "/api/registry", role="installer")
    assert status == 403
    status, body, _ = await rig.call("GET", "/api/registry/residents", role="read_only")
    assert status == 403
    status, body, _ = await rig.call("GET", "/api/registry/residents", role="police_liaison")
    assert status == 200 and body["residents"][0]["name"] == "Wang Lan"
    status, body, _ = await rig.call("PUT", "/api/registry/flats/b1-101", role="installer",
                                     json={"inactivity": None})
    assert status == 403
    status, body, _ = await rig.call("PUT", "/api/registry/devices/door-101", role="installer",
                                     json={"board": "esp32c3"})
    assert status == 200
    audit = rig.hub.registry.audit(1)[0]
    assert audit["actor"] == "http:test-installer"


# ---- cross-site requests and CSRF --------------------------------------------------------
async def login(rig, account="root", role="admin"):
    if rig.hub.accounts.account(account) is None:
        await asyncio.to_thread(rig.hub.accounts.add, account, role, GOOD)
    status, body, resp = await rig.call("POST", "/api/login", role=None,
                                        json={"account": account, "password": GOOD})
    assert status == 200, body
    return body, resp


async def test_a_cross_site_post_changes_nothing_and_forged_frames_stay_rejected(rig):
    session, _ = await login(rig)  # the admin's browser holds a live session cookie
    evil_csv = ("device_id,kind,board,flat,transport,frame_key\n"
                "door-101,door_sensor,esp32c3,b1-101,mqtt,%s\n" % ATTACKER_KEY.hex())
    attempts = [
        ({"Host": "evil.example", "Origin": "http://evil.example"}, 403, "bad_host"),
        ({"Origin": "http://evil.example"}, 403, "bad_origin"),
        ({"Origin": "null"}, 403, "bad_origin"),
        ({"Sec-Fetch-Site": "cross-site"}, 403, "bad_origin"),
        ({}, 403, "csrf"),  # same origin, the cookie, but no CSRF token
    ]
    for headers, status, error in attempts:
        for path in ("/api/registry/import?format=csv", "/api/registry/devices/door-101"):
            got, body, _ = await rig.call("POST", path, role=None, data=evil_csv.encode(),
                                          headers={"Content-Type": "text/plain", **headers})
            assert (got, body["error"]) == (status, error), (headers, path)
    got, refused, _ = await rig.call("PUT", "/api/registry/devices/door-101", role=None,
                                     json={"frame_key": ATTACKER_KEY.hex()},
                                     headers={"Origin": "http://evil.example"})
    assert got == 403
    # even with the CSRF token, an upload is taken only with its own content type
    got, refused, _ = await rig.call("POST", "/api/registry/import?format=csv", role=None,
                                     data=evil_csv.encode(),
                                     headers={"Content-Type": "text/plain",
                                              "X-CSRF-Token": session["csrf_token"]})
    assert (got, refused["error"]) == (415, "unsupported_media_type")
    # nothing changed: the registry, the running site, the key
    assert rig.hub.registry.version() == 1
    assert rig.hub.site.devices["door-101"].frame_key == KEY
    # a frame forged with the attacker's key is still rejected; the real key still works
    await asyncio.to_thread(rig.publish, 1, ATTACKER_KEY)
    await wait_for(lambda: sum(rig.hub.store.rejection_counts().values()) >= 1)
    assert rig.hub.store.events() == []
    await asyncio.to_thread(rig.publish, 2, KEY)
    await wait_for(lambda: len(rig.hub.store.events()) == 1)


async def test_a_session_change_needs_the_csrf_token_and_a_token_does_not(rig):
    body, resp = await login(rig, "li-wei", "staff")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert GOOD not in json.dumps(body) and body["role"] == "staff"
    csrf = body["csrf_token"]
    from tests.integration.hubkit import raise_alarm
    alarm = raise_alarm(rig.hub, "tamper:door-101")
    path = "/api/alarms/%s/actions" % alarm["id"]
    status, got, _ = await rig.call("GET", "/api/alarms", role=None)
    assert status == 200 and got["total"] == 1           # reads need no CSRF token
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        status, got, _ = await rig.call("POST", path, role=None, json={"action": "acknowledge"},
                                        headers=headers)
        assert (status, got["error"]) == (403, "csrf")
    assert rig.hub.store.alarm(alarm["id"])["state"] == "raised"
    status, got, _ = await rig.call("POST", path, role=None, json={"action": "acknowledge"},
                                    headers={"X-CSRF-Token": csrf})
    assert (status, got["outcome"]) == (200, "applied")
    assert rig.hub.store.transitions(alarm["id"])[-1]["actor"] == "li-wei"
    # a token needs no CSRF token (no browser sends it on its own)
    status, got, _ = await rig.call("POST", path, role="staff", json={"action": "resolve"})
    assert (status, got["outcome"]) == (200, "applied")
    # logout ends the session
    status, _, _ = await rig.call("POST", "/api/logout", role=None, headers={"X-CSRF-Token": csrf})
    assert status == 200
    status, got, _ = await rig.call("GET", "/api/alarms", role=None,
                                    headers={"Cookie": cookie.split(";")[0]})
    assert (status, got["error"]) == (401, "session_expired")


# ---- logins, tokens, audit ---------------------------------------------------------------
async def test_failed_logins_are_rate_limited_and_audited(rig):
    await asyncio.to_thread(rig.hub.accounts.add, "li-wei", "staff", GOOD)
    for _ in range(5):
        status, body, _ = await rig.call("POST", "/api/login", role=None,
                                         json={"account": "li-wei", "password": "guess-" * 3})
        assert (status, body["error"]) == (401, "login_failed")
    status, body, resp = await rig.call("POST", "/api/login", role=None,
                                        json={"account": "li-wei", "password": GOOD})
    assert (status, body["error"]) == (429, "too_many_attempts")
    assert 0 < int(resp.headers["Retry-After"]) <= 900
    rows = [(e["account"], e["action"], e["outcome"]) for e in rig.hub.accounts.audit(10)]
    assert rows[0] == ("li-wei", "login", "locked_out")
    assert rows[1:6] == [("li-wei", "login", "failed")] * 5
    status, body, _ = await rig.call("POST", "/api/login", role=None, data=b"account=li-wei",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415


async def test_a_revoked_token_is_refused_at_once(rig, capsys):
    from host_tools.cli import main
    await asyncio.to_thread(rig.hub.accounts.add, "police-platform", "police_liaison", None)
    token_id, token = rig.hub.accounts.add_token("police-platform", "city")
    auth = {"Authorization": "Bearer " + token}
    status, _, _ = await rig.call("GET", "/api/alarms", role=None, headers=auth)
    assert status == 200
    assert rig.hub.accounts.path == str(path_for(rig.db))
    code = await asyncio.to_thread(main, ["users", "--db", str(rig.db), "token", "revoke", token_id])
    assert code == 0 and "revoked" in capsys.readouterr().out
    status, body, _ = await rig.call("GET", "/api/alarms", role=None, headers=auth)
    assert (status, body["error"]) == (401, "unauthorized")


async def test_every_change_is_audited_with_its_account(rig):
    from tests.integration.hubkit import raise_alarm
    alarm = raise_alarm(rig.hub, "tamper:door-101")
    status, _, _ = await rig.call("POST", "/api/alarms/%s/actions" % alarm["id"],
                                  role="police_liaison", json={"action": "acknowledge",
                                                               "actor": "desk-7"})
    assert status == 200
    status, _, _ = await rig.call("POST", "/api/dead-letters/requeue", role="staff",
                                  json={"all": True})
    assert status == 200
    status, _, _ = await rig.call("DELETE", "/api/registry/residents/r-101", role="installer")
    assert status == 403
    assert rig.hub.store.transitions(alarm["id"])[-1]["actor"] == "test-police_liaison/desk-7"
    rows = [(e["account"], e["action"], e["outcome"]) for e in rig.hub.accounts.audit(20)]
    assert ("test-police_liaison", "POST alarm_action", "ok") in rows
    assert ("test-staff", "POST requeue_dead_letters", "ok") in rows
    assert ("test-installer", "DELETE remove", "denied") in rows
    status, body, _ = await rig.call("GET", "/api/accounts/audit?limit=50")
    assert status == 200 and any(e["account"] == "test-staff" for e in body["entries"])
    status, body, _ = await rig.call("GET", "/api/accounts")
    names = {a["name"] for a in body["accounts"]}
    assert {"test-admin", "test-staff"} <= names and "password_hash" not in json.dumps(body)


async def test_passwords_and_tokens_are_stored_only_as_hashes(rig):
    await asyncio.to_thread(rig.hub.accounts.add, "li-wei", "staff", GOOD)
    _, token = rig.hub.accounts.add_token("li-wei")
    db = sqlite3.connect(rig.hub.accounts.path)
    (stored,) = db.execute("SELECT password_hash FROM accounts WHERE name='li-wei'").fetchone()
    assert stored.startswith("$argon2id$")
    dump = "\n".join(db.iterdump())
    db.close()
    assert GOOD not in dump and token not in dump


# ---- limits ------------------------------------------------------------------------------
async def test_deeply_nested_json_is_a_400_without_a_traceback(rig):
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/api/registry/devices", "/api/registry/import", "/api/dead-letters/requeue"):
        status, body, _ = await rig.call("POST", path, data=deep,
                                         headers={"Content-Type": "application/json"})
        assert (status, body["error"]) == (400, "bad_json"), path
        assert "nested deeper" in body["detail"] and "Traceback" not in json.dumps(body)
    status, body, _ = await rig.call("POST", "/api/dead-letters/requeue", data=b'{"all": true}',
                                     headers={"Content-Type": "text/plain"})
    assert (status, body["error"]) == (415, "unsupported_media_type")


async def test_slow_bodies_hold_nothing_and_are_cut_after_the_timeout(rig):
    auth = bearer(rig.hub)["Authorization"]
    head = ("POST /api/dead-letters/requeue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            "\r\n{\"all\"" % auth).encode()
    slow = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.hub.http.port)
        writer.write(head)
        await writer.drain()
        slow.append((reader, writer))
    # meanwhile a normal request is answered
    status, body, _ = await rig.call("GET", "/api/alarms")
    assert status == 200
    # each slow one gets a 408 and its connection is closed (EOF), within a bound
    for reader, writer in slow:
        data = await asyncio.wait_for(reader.read(), 10)
        assert data.startswith(b"HTTP/1.1 408"), data[:80]
        assert b'"request_timeout"' in data
        writer.close()
    status, _, _ = await rig.call("GET", "/health", role=None)
    assert status == 200


async def test_a_thousand_concurrent_health_requests_are_all_answered(rig):
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one():
            async with session.get(rig.base + "/health",
                                   timeout=aiohttp.ClientTimeout(total=30)) as r:
                await r.read()
                return r.status
        results = await asyncio.gather(*[one() for _ in range(1000)], return_exceptions=True)
    assert [r for r in results if r != 200] == []


async def test_a_person_changes_their_own_password_and_their_sessions_end(rig):
    session, resp = await login(rig, "li-wei", "staff")
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    status, body, _ = await rig.call("GET", "/api/session", role=None)
    assert body.pop("permissions") == sorted(roles.ROLE_PERMISSIONS["staff"])
    assert (status, body) == (200, {"account": "li-wei", "role": "staff", "via": "session"})
    status, body, _ = await rig.call("POST", "/api/password", role=None, headers=csrf,
                                     json={"current": "not it at all", "new": GOOD + "!"})
    assert (status, body["error"]) == (403, "wrong_password")
    status, body, _ = await rig.call("POST", "/api/password", role=None, headers=csrf,
                                     json={"current": GOOD, "new": "short"})
    assert (status, body["error"]) == (400, "weak_password") and "too short" in body["detail"]
    status, body, _ = await rig.call("POST", "/api/password", role=None, headers=csrf,
                                     json={"current": GOOD, "new": GOOD + "!"})
    assert status == 200
    rig.http.cookie_jar.clear()
    status, body, _ = await rig.call("GET", "/api/session", role=None,
                                     headers={"Cookie": resp.headers["Set-Cookie"].split(";")[0]})
    assert status == 401
    status, body, _ = await rig.call("POST", "/api/login", role=None,
                                     json={"account": "li-wei", "password": GOOD + "!"})
    assert status == 200
    rows = [(e["account"], e["action"], e["outcome"]) for e in rig.hub.accounts.audit(20)]
    assert ("li-wei", "password_change", "failed") in rows
    assert ("li-wei", "password_changed", "ok") in rows
