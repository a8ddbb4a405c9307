"""Dead letters back into the outbox (docs/forwarding.md): a document the
webhook refused for good waits in `dead_letters`; once the cause is fixed an
operator lists and re-queues it over the HTTP API or with `anju alarms`, and it
is delivered like any other version of its alarm. A real HTTPS platform (the
one of test_webhook.py), a real hub on a real site broker."""
import asyncio
import json

import pytest

from hub.clock import SystemClock
from hub.service import HubService
from tests.integration.hubkit import raise_alarm, site, wait_for
from tests.authkit import bearer
from tests.integration.test_alarms_http import call
from tests.integration.test_webhook import SECRET, pki, serve  # noqa: F401 (fixtures)

pytestmark = pytest.mark.broker


@pytest.fixture
async def refusing_hub(tmp_path, make_broker, pki, serve):  # noqa: F811
    """A webhook-only hub whose platform refuses the first two documents (HTTP 400)."""
    platform = serve([400, 400])
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    broker = make_broker("site")
    hub = HubService(site(), tmp_path / "hub.db", SystemClock(),
                     {"host": broker.host, "port": broker.port}, {"enabled": False},
                     http={"port": 0},
                     webhook={"url": "https://127.0.0.1:%d/anju/alarms" % platform.server_address[1],
                              "secret_file": str(tmp_path / "secret"), "timeout": 2,
                              "ca": str(pki / "ca.pem")})
    await hub.start(connect_timeout=10)
    try:
        yield hub, platform
    finally:
        await hub.stop()


def delivered(platform):
    """(alarm id, seq) the platform took: every signed request after the two it refused."""
    return [(doc["id"], doc["seq"]) for _, doc, ok in platform.requests[2:] if ok]


async def test_refused_documents_are_listed_requeued_and_delivered(refusing_hub):
    hub, platform = refusing_hub
    first = raise_alarm(hub, "tamper:door-101")
    second = raise_alarm(hub, "tamper:door-102")
    await wait_for(lambda: len(hub.store.dead_letters()) == 2)
    status, body, _ = await call(hub, "GET", "/api/dead-letters")
    assert status == 200 and body["total"] == 2
    rows = body["dead_letters"]
    assert {r["alarm_id"] for r in rows} == {first["id"], second["id"]}
    assert all(r["reason"] == "HTTP 400" and r["target"] == "webhook" for r in rows)
    status, body, _ = await call(hub, "GET", "/api/dead-letters?target=mqtt")
    assert (status, body["total"]) == (200, 0)

    # one by id, one id that is no dead letter
    status, body, _ = await call(hub, "POST", "/api/dead-letters/requeue",
                                 {"ids": [rows[0]["id"], 999]})
    assert status == 200 and body == {"requeued": [rows[0]["id"]], "unknown": [999]}
    # the platform saw it before the hub committed the delivery: wait for both
    await wait_for(lambda: (rows[0]["alarm_id"], 1) in delivered(platform)
                   and hub.store.outbox_depth() == 0)
    # then all that is left
    status, body, _ = await call(hub, "POST", "/api/dead-letters/requeue", {"all": True})
    assert status == 200 and body == {"requeued": [rows[1]["id"]], "unknown": []}
    await wait_for(lambda: hub.store.dead_letters() == [] and hub.store.outbox_depth() == 0)
    assert sorted(delivered(platform)) == sorted([(first["id"], 1), (second["id"], 1)])
    # a later version of a re-queued alarm follows it
    status, body, _ = await call(hub, "POST", "/api/alarms/%s/actions" % first["id"],
                                 {"action": "acknowledge", "command_id": "c1"})
    assert body["outcome"] == "applied"
    await wait_for(lambda: (first["id"], 2) in delivered(platform))


@pytest.mark.parametrize("body", [{}, {"ids": []}, {"ids": "1"}, {"ids": [1, "2"]},
                                  {"ids": [True]}, {"all": "yes"}, {"all": True, "target": 5},
                                  [1, 2]],
                         ids=["empty", "no-ids", "ids-string", "id-string", "id-bool",
                              "all-string", "target-number", "list"])
async def test_bad_requeue_requests_are_refused_and_change_nothing(refusing_hub, body):
    hub, platform = refusing_hub
    raise_alarm(hub, "tamper:door-101")
    await wait_for(lambda: len(hub.store.dead_letters()) == 1)
    status, answer, _ = await call(hub, "POST", "/api/dead-letters/requeue",
                                   json.dumps(body).encode())
    assert status == 400 and answer["error"] in ("bad_request", "bad_json")
    assert len(hub.store.dead_letters()) == 1 and hub.store.outbox_depth() == 0


async def test_the_cli_lists_and_requeues(refusing_hub, capsys, monkeypatch):
    from host_tools.cli import main
    hub, platform = refusing_hub
    monkeypatch.setenv("ANJU_TOKEN", bearer(hub, "staff")["Authorization"].split()[1])
    alarm = raise_alarm(hub, "tamper:door-101")
    other = raise_alarm(hub, "tamper:door-102")
    await wait_for(lambda: len(hub.store.dead_letters()) == 2)
    url = "http://127.0.0.1:%d" % hub.http.port
    code = await asyncio.to_thread(main, ["alarms", "dead-letters", "--hub", url])
    out = capsys.readouterr().out
    assert code == 0 and alarm["id"] in out and "HTTP 400" in out
    code = await asyncio.to_thread(main, ["alarms", "requeue", "--hub", url])
    assert code == 2 and "give dead letter ids, or --all" in capsys.readouterr().err
    code = await asyncio.to_thread(main, ["alarms", "requeue", "--hub", url, "4242"])
    assert code == 1 and "no such dead letter: 4242" in capsys.readouterr().err
    code = await asyncio.to_thread(main, ["alarms", "requeue", "--hub", url, "--all",
                                          "--target", "webhook"])
    assert code == 0 and "re-queued: " in capsys.readouterr().out
    await wait_for(lambda: len(delivered(platform)) == 2)
    assert sorted(delivered(platform)) == sorted([(alarm["id"], 1), (other["id"], 1)])
    assert hub.store.dead_letters() == []
