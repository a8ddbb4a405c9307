"""`anju lock ...` (host_tools/lock_cli.py) against a real hub: HubService with
its HTTP API on private brokers, the lock's answers as real signed frames
through the pipeline. The PIN is read from standard input and never printed."""
import asyncio
import io
import json

import pytest

from anju import frame
from host_tools import cli
from hub.verify import frames_lock as fl
from tests.authkit import bearer
from tests.integration.hubkit import site, start_hub

pytestmark = pytest.mark.broker

KEY = bytes(range(7, 39))
LOCK = ("  - {id: lock-101, kind: smart_lock, board: esp32c3, flat: b1-101, transport: mqtt,"
        " frame_key: %s}" % KEY.hex())


@pytest.fixture
async def hub(tmp_path, make_broker, make_site_broker, monkeypatch):
    cfg = site(extra=LOCK)
    h = await start_hub(tmp_path / "hub.db", make_site_broker(cfg), make_broker("upstream"),
                        site_cfg=cfg)
    monkeypatch.setenv("ANJU_TOKEN", bearer(h, "staff")["Authorization"].split()[1])
    yield h
    await h.stop()


async def anju(capsys, hub, *argv):
    argv = list(argv) + ["--hub", "http://127.0.0.1:%d" % hub.http.port]
    code = await asyncio.to_thread(cli.main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def lock_frame(hub, counter, mtype, body):
    data = frame.encode(KEY, b"lock-101", mtype, counter, 0, body)
    hub.pipeline.handle_mqtt("anju/sunrise/lock-101/event", data, hub.clock.now())


async def test_status_unlock_credentials_users_log(hub, capsys, monkeypatch):
    code, out, _ = await anju(capsys, hub, "lock", "status")
    assert code == 0 and "lock-101" in out and "unknown" in out
    code, out, _ = await anju(capsys, hub, "lock", "unlock", "lock-101")
    assert code == 0 and "queued as command" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("80241\n"))
    code, out, err = await anju(capsys, hub, "lock", "credential-add", "lock-101", "--resident",
                                "r-101", "--kind", "pin")
    assert code == 0 and "pending" in out and "80241" not in out + err
    code, out, _ = await anju(capsys, hub, "lock", "credentials", "lock-101", "--json")
    (cred,) = json.loads(out)["credentials"]
    assert cred["state"] == "pending"
    ((counter, user),) = hub.store.query(
        "SELECT counter, user FROM lock_commands WHERE name='cred_set'")
    lock_frame(hub, 1, fl.T_CMD_RESULT, fl.cmd_result_body(counter, "cred_set", "full", user,
                                                           cred["credential"]))
    lock_frame(hub, 2, fl.T_LOCK_STATE, fl.lock_state_body("locked", "closed", percent=71))
    lock_frame(hub, 3, fl.T_ACCESS, fl.access_body("card", "denied", None))
    code, out, _ = await anju(capsys, hub, "lock", "credentials", "lock-101")
    assert code == 0 and "failed" in out and "full" in out
    code, out, _ = await anju(capsys, hub, "lock", "users", "lock-101")
    assert code == 0 and "r-101" in out
    code, out, _ = await anju(capsys, hub, "lock", "status", "lock-101")
    assert code == 0 and "locked" in out and "71%" in out
    code, out, _ = await anju(capsys, hub, "lock", "log", "lock-101")
    assert code == 0 and "card denied (unknown_credential)" in out
    code, _, err = await anju(capsys, hub, "lock", "unlock", "door-101")
    assert code == 1 and "unknown_lock" in err


async def test_read_only_is_refused(hub, capsys, monkeypatch):
    monkeypatch.setenv("ANJU_TOKEN", bearer(hub, "read_only")["Authorization"].split()[1])
    code, _, err = await anju(capsys, hub, "lock", "unlock", "lock-101")
    assert code == 1 and "forbidden" in err
    code, _, err = await anju(capsys, hub, "lock", "users", "lock-101")
    assert code == 1 and "forbidden" in err


async def test_visitor_revoke_reads_the_code_from_standard_input(hub, capsys, monkeypatch):
    from hub.visitors import passcode
    now = hub.clock.now()
    code = passcode.make(KEY, now + 3600, now + 7200, True, now)
    monkeypatch.setattr("sys.stdin", io.StringIO(code.digits + "\n"))
    rc, out, err = await anju(capsys, hub, "lock", "visitor-revoke", "lock-101")
    ident = "v:%d:%d" % (code.start_slot, code.check)
    assert rc == 0 and ident in out and "requested" in out
    assert code.digits not in out + err  # the code opens the door: never printed
    ((name, cred, by),) = hub.store.query(
        "SELECT name, credential, requested_by FROM lock_commands WHERE name='visitor_revoke'")
    assert (cred, by) == (ident, "http:test-staff")
    monkeypatch.setattr("sys.stdin", io.StringIO("12345\n"))
    rc, _, err = await anju(capsys, hub, "lock", "visitor-revoke", "lock-101")
    assert rc == 1 and "digits" in err
    # the service call the visitor passes use, with who asked
    other = passcode.make(KEY, now + 3600, now + 5400, False, now)
    rec = hub.revoke_visitor_code("lock-101", other.digits, "visitors:pass-7")
    assert rec["state"] == "requested" and rec["requested_by"] == "visitors:pass-7"
    from hub.locks import LockError
    with pytest.raises(LockError, match="actor"):
        hub.revoke_visitor_code("lock-101", other.digits, "")
    with pytest.raises(LockError, match="no smart lock"):
        hub.revoke_visitor_code("door-101", other.digits, "visitors:pass-7")
    monkeypatch.setenv("ANJU_TOKEN", bearer(hub, "read_only")["Authorization"].split()[1])
    monkeypatch.setattr("sys.stdin", io.StringIO(code.digits + "\n"))
    rc, _, err = await anju(capsys, hub, "lock", "visitor-revoke", "lock-101")
    assert rc == 1 and "forbidden" in err
