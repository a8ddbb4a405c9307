"""GET /api/alarms/stream at the HTTP level (hub/web/alarm_stream.py,
docs/console.md): credentials needed, a fresh snapshot, live events on the
commit, replay after Last-Event-ID (each alarm once, newest version), a reset
for an id the store never gave, residents only for roles that may see them, and
the stream's end when the session ends or the hub stops. Real hub, brokers and
aiohttp server; an aiohttp client reads the events as a browser would."""
import asyncio
import json

import aiohttp
import pytest

from tests.authkit import bearer
from tests.integration.hubkit import raise_alarm, start_hub, wait_for

pytestmark = pytest.mark.broker
PASSWORD = "lantern-orchard-42"


@pytest.fixture
async def hub(tmp_path, make_broker):
    made = await start_hub(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"))
    try:
        yield made
    finally:
        await made.stop()


class Events:
    """A stream's events, parsed as EventSource does: (event, id, data)."""

    def __init__(self, response):
        self.response = response

    async def next(self, timeout=5.0):
        event, event_id, data = "message", None, []
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not line:
                return None  # the stream ended
            line = line.decode().rstrip("\n")
            if line == "":
                if data:
                    return event, event_id, json.loads("\n".join(data))
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "id":
                event_id = int(value)
            elif field == "data":
                data.append(value)

    async def until(self, name, timeout=5.0):
        seen = []
        while True:
            got = await self.next(timeout)
            assert got is not None, "stream ended before %s; saw %s" % (name, seen)
            seen.append(got)
            if got[0] == name:
                return seen


async def stream(hub, session, headers=None, query=""):
    response = await session.get("http://127.0.0.1:%d/api/alarms/stream%s"
                                 % (hub.http.port, query), headers=headers or {})
    return response, Events(response)


async def test_credentials_are_needed_and_a_bad_id_is_refused(hub):
    async with aiohttp.ClientSession() as session:
        response, _ = await stream(hub, session)
        assert response.status == 401 and (await response.json())["error"] == "unauthorized"
        response, _ = await stream(hub, session, {**bearer(hub, "read_only"),
                                                  "Last-Event-ID": "12x"})
        assert response.status == 400 and (await response.json())["error"] == "bad_request"


async def test_snapshot_then_live_then_replay_after_the_last_event_id(hub):
    a = raise_alarm(hub, "tamper:door-101")
    async with aiohttp.ClientSession() as session:
        response, events = await stream(hub, session, bearer(hub, "staff"))
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        seen = await events.until("ready")
        assert [(e[0], e[2].get("alarm", {}).get("id")) for e in seen] == [
            ("alarm", a["id"]), ("ready", None)]
        first_id = seen[0][1]
        assert seen[1][1] == first_id == seen[0][2]["feed_id"]
        # live: raised after the stream opened, delivered on the commit
        b = raise_alarm(hub, "tamper:door-102")
        event, b_id, data = await events.next(timeout=1.0)
        assert (event, data["alarm"]["id"], data["alarm"]["state"]) == ("alarm", b["id"], "raised")
        assert b_id > first_id
        response.close()
        # changed while disconnected: b twice, a once; then a reconnect with the id
        for alarm_id, action in ((b["id"], "dispatch"), (a["id"], "acknowledge"),
                                 (b["id"], "resolve")):
            status = await act(hub, session, alarm_id, action)
            assert status == 200
        response, events = await stream(hub, session, {**bearer(hub, "staff"),
                                                       "Last-Event-ID": str(b_id)})
        seen = await events.until("ready")
        got = [(e[2]["alarm"]["id"], e[2]["alarm"]["state"], e[2]["alarm"]["seq"])
               for e in seen if e[0] == "alarm"]
        assert got == [(a["id"], "acknowledged", 2), (b["id"], "resolved", 3)]
        ids = [e[1] for e in seen]
        assert ids == sorted(ids) and ids[-1] == hub.store.alarm_feed_last()
        response.close()
        # nothing after the newest id: only "ready"
        response, events = await stream(hub, session, bearer(hub, "staff"),
                                        "?after=%d" % ids[-1])
        assert [e[0] for e in await events.until("ready")] == ["ready"]
        response.close()


async def act(hub, session, alarm_id, action):
    async with session.post("http://127.0.0.1:%d/api/alarms/%s/actions" % (hub.http.port, alarm_id),
                            json={"action": action}, headers=bearer(hub, "staff")) as r:
        return r.status


async def test_an_id_the_store_never_gave_resets_the_client(hub):
    a = raise_alarm(hub, "tamper:door-101")
    async with aiohttp.ClientSession() as session:
        response, events = await stream(hub, session, {**bearer(hub, "admin"),
                                                       "Last-Event-ID": "999999"})
        seen = await events.until("ready")
        assert [e[0] for e in seen] == ["reset", "alarm", "ready"]
        assert seen[1][2]["alarm"]["id"] == a["id"]
        response.close()


@pytest.mark.parametrize(("role", "sees"), [("police_liaison", True), ("staff", True),
                                            ("read_only", False), ("installer", False)])
async def test_the_resident_only_for_roles_that_may_read_residents(hub, role, sees):
    from hub.alarms import documents
    now = hub.clock.now()
    doc = documents.generic(hub.site, "inactivity", "high", {"building": "b1", "flat": "b1-101"},
                            {}, now)
    doc["resident"] = {"id": "r-101", "name": "Wang Lan"}
    with hub.store.transaction() as tx:
        hub.pipeline.book.raise_alarm(tx, "inactivity:b1-101:x", doc, now)
    async with aiohttp.ClientSession() as session:
        response, events = await stream(hub, session, bearer(hub, role))
        seen = await events.until("ready")
        assert (seen[0][2]["alarm"]["resident"] is not None) is sees
        assert ("Wang Lan" in json.dumps(seen)) is sees
        response.close()


async def test_the_stream_ends_when_the_session_ends_and_when_the_hub_stops(hub):
    hub.accounts.add("li-wei", "staff", PASSWORD, actor="test")
    hub.alarm_streams.heartbeat_s = 0.05  # the credentials are looked up again this often
    base = "http://127.0.0.1:%d" % hub.http.port
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(base + "/api/login", json={"account": "li-wei",
                                                           "password": PASSWORD}) as r:
            csrf = (await r.json())["csrf_token"]
        response, events = await stream(hub, session)
        await events.until("ready")
        async with session.post(base + "/api/logout", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        seen = await events.until("ended", timeout=2.0)
        assert seen[-1][2] == {"reason": "session"}
        assert await events.next() is None
        response.close()
        response, events = await stream(hub, session, bearer(hub, "read_only"))
        await events.until("ready")
        hub.alarm_streams.heartbeat_s = 15.0
        loop = asyncio.get_running_loop()
        started = loop.time()
        stopping = asyncio.ensure_future(hub.http.stop())
        seen = await events.until("ended", timeout=2.0)
        assert seen[-1][2] == {"reason": "stopping"}
        await stopping
        assert loop.time() - started < 2.0  # the open stream did not hold the shutdown
        await wait_for(lambda: len(hub.alarm_streams) == 0)
        response.close()
