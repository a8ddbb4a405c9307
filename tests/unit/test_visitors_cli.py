"""`anju visitors ...` (host_tools/visitors_cli.py) against a real hub with
the visitor service: a resident token, register (ID number and phone from
standard input, never printed), list masked, approve, pass, refuse, revoke,
show; the hub's refusals exit 1 with the field named."""
import asyncio
import io
import json
import time

import pytest

from host_tools import cli
from hub.registry import kek
from tests.authkit import bearer
from tests.integration.hubkit import start_hub
from tests.integration.test_visitors_hub import GOOD_ID, site_cfg

pytestmark = pytest.mark.broker


@pytest.fixture
async def hub(tmp_path, make_broker, make_site_broker, monkeypatch):
    cfg = site_cfg(kek.create(tmp_path / "kek"))
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


def register_args(**kw):
    now = time.time()
    args = {"--flat": "b1-101", "--name": "张伟", "--purpose": "探亲", "--from": str(now),
            "--until": str(now + 7200), "--entrance": "gate-north"}
    args.update(kw)
    return [x for k, v in args.items() for x in (k, v)]


async def test_register_approve_pass_revoke(hub, capsys, monkeypatch):
    code, out, err = await anju(capsys, hub, "visitors", "resident-token", "--flat", "b1-101")
    assert code == 0 and out.strip().startswith("avr_") and "shown once" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("%s\n13812345678\n" % GOOD_ID))
    code, out, err = await anju(capsys, hub, "visitors", "register", *register_args(),
                                "--plate", "粤BD12345")
    assert code == 0 and "requested" in out
    assert GOOD_ID not in out + err and "13812345678" not in out + err
    visit = out.split()[1]
    code, out, _ = await anju(capsys, hub, "visitors", "list")
    assert code == 0 and visit in out and "110***********002X" in out and GOOD_ID not in out
    code, out, _ = await anju(capsys, hub, "visitors", "approve", visit)
    assert code == 0 and "approved" in out
    code, out, _ = await anju(capsys, hub, "visitors", "pass", visit, "--json")
    p = json.loads(out)
    assert [c["device"] for c in p["codes"]] == ["lock-gate"] and p["qr"].startswith("AV1")
    code, out, _ = await anju(capsys, hub, "visitors", "refuse", visit)
    assert code == 1
    code, out, _ = await anju(capsys, hub, "visitors", "revoke", visit, "--note", "cancelled")
    assert code == 0 and "revoked" in out
    code, out, _ = await anju(capsys, hub, "visitors", "show", visit)
    doc = json.loads(out)
    assert [h["action"] for h in doc["history"]] == ["registered", "approved", "revoked"]
    code, out, err = await anju(capsys, hub, "visitors", "show", visit, "--personal")
    assert code == 1 and "visitors.personal" in err
    code, out, _ = await anju(capsys, hub, "visitors", "resident-token", "--flat", "b1-101",
                              "--revoke")
    assert code == 0 and "1 token(s) of flat b1-101 revoked" in out


async def test_bad_input_names_the_field(hub, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("%s\n13812345678\n" % GOOD_ID[:-1]))
    code, _, err = await anju(capsys, hub, "visitors", "register", *register_args())
    assert code == 1 and "id_number" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("%s\n13812345678\n" % GOOD_ID))
    code, _, err = await anju(capsys, hub, "visitors", "register",
                              *register_args(**{"--entrance": "gate-south"}))
    assert code == 1 and "entrances[0]" in err
    assert hub.store.query("SELECT COUNT(*) FROM visits")[0][0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("粤B12345\n"))
    code, _, err = await anju(capsys, hub, "visitors", "watch", "--kind", "plate")
    assert code == 1 and "visitors.watch" in err          # staff may not
    monkeypatch.setenv("ANJU_TOKEN", bearer(hub, "police_liaison")["Authorization"].split()[1])
    monkeypatch.setattr("sys.stdin", io.StringIO("粤B1234O\n"))
    code, _, err = await anju(capsys, hub, "visitors", "watch", "--kind", "plate")
    assert code == 1 and "value" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("粤B12345\n"))
    code, out, _ = await anju(capsys, hub, "visitors", "watch", "--kind", "plate")
    assert code == 0 and hub.store.query("SELECT kind FROM visitor_watch") == [("plate",)]
