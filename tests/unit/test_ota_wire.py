"""The OTA exchange's bytes and decisions on the hub (hub/ota/wire.py,
hub/ota/plan.py, hub/ota/release.py), checked against the device's own codec
(firmware/anju/ota/transfer.py, loaded with simulator.loader) and releases
that `anju release build` signs."""
import datetime
import struct

import pytest

from host_tools import release as host_release
from hub.ota import OtaError, plan, release as ota_release, wire
from simulator import loader
from simulator.forge import make_frame

tx = loader.core("anju.ota.transfer")
KEY = bytes(range(32))
DID = "door-101"


def _frame(mtype, body, counter=5, key=KEY, did=DID):
    return make_frame(key, did, mtype, counter, body)


def test_a_device_report_decodes_with_every_field_and_its_ack_verifies_on_the_device():
    body = tx.report_body((1, 2, 3), "b", True, tx.FETCHING, 40,
                          [((1, 1, 0), tx.FAIL_CRASHED), ((1, 0, 9), tx.FAIL_UNCONFIRMED),
                           ((1, 0, 8), tx.failure_code("watchdog reset during its trial"))])
    mtype, counter, got = wire.verify(DID, KEY, _frame(tx.T_FW_REPORT, body, 77))
    assert (mtype, counter) == (wire.T_FW_REPORT, 77)
    assert wire.decode_report(got) == {
        "version": "1.2.3", "slot": "b", "trial": True, "status": "fetching", "percent": 40,
        "failures": [{"version": "1.1.0", "reason": "crashed"},
                     {"version": "1.0.9", "reason": "not_confirmed"},
                     {"version": "1.0.8", "reason": "watchdog"}]}
    ack = wire.ack(KEY, DID, 77)
    assert tx.parse_down(ack) == ("ack", 77, tx.ack_tag(KEY, DID.encode(), 77))
    # bound to the device and the counter
    assert tx.parse_down(wire.ack(KEY, "door-102", 77))[2] != tx.ack_tag(KEY, DID.encode(), 77)
    assert tx.parse_down(wire.ack(KEY, DID, 78))[2] != tx.ack_tag(KEY, DID.encode(), 77)


def _report(**over):
    fields = {"slot": 0, "flags": 0, "status": 0, "percent": 0, "count": 0}
    fields.update(over)
    return struct.pack(">HHHBBBBB", 1, 0, 0, fields["slot"], fields["flags"], fields["status"],
                       fields["percent"], fields["count"])


@pytest.mark.parametrize("body, why", [
    (b"", "with 0 body bytes"),
    (_report()[:-1], "with 10 body bytes"),
    (_report(slot=2), "out of range"),
    (_report(flags=2), "out of range"),
    (_report(status=len(wire.STATUSES)), "out of range"),
    (_report(percent=101), "out of range"),
    (_report(count=5) + bytes(35), "out of range"),
    (_report(count=1), "out of range"),
    (_report(count=1) + struct.pack(">HHHB", 1, 1, 0, len(wire.FAILURES)), "failure reason"),
])
def test_a_report_out_of_range_is_refused_as_bad_body(body, why):
    with pytest.raises(wire.Rejected) as exc:
        wire.decode_report(body)
    assert exc.value.reason == "bad_body" and why in exc.value.detail


@pytest.mark.parametrize("mutate, reason", [
    (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "bad_tag"),
    (lambda f: f[:20], "truncated"),
    (lambda f: bytes([0xA2]) + f[1:], "bad_version"),
    (lambda f: f + bytes(80), "oversized"),
])
def test_a_forged_or_damaged_frame_is_rejected(mutate, reason):
    good = _frame(tx.T_CHUNK_REQ, tx.chunk_request_body(bytes(8), 0, 0, 100))
    with pytest.raises(wire.Rejected) as exc:
        wire.verify(DID, KEY, mutate(good))
    assert exc.value.reason == reason
    with pytest.raises(wire.Rejected) as exc:  # another device's topic
        wire.verify("door-102", KEY, good)
    assert exc.value.reason == "bad_tag"


def test_a_chunk_request_and_its_answer_round_trip():
    rid = bytes(range(8))
    body = tx.chunk_request_body(rid, 3, 4096, 2048)
    assert wire.decode_chunk_request(body) == (rid, 3, 4096, 2048)
    assert tx.parse_down(wire.chunk(rid, 3, 4096, b"xyz")) == ("data", rid, 3, 4096, b"xyz")
    assert tx.parse_down(wire.error(rid, "withdrawn")) == ("error", rid, "withdrawn")
    assert tx.parse_down(wire.NONE) == ("none",)
    assert tx.parse_down(wire.offer(b"blob")) == ("offer", b"blob")
    for length in (0, wire.CHUNK + 1):
        with pytest.raises(wire.Rejected):
            wire.decode_chunk_request(tx.chunk_request_body(rid, 0, 0, length))
    # the device's limit is the hub's, and a chunk stays inside its client's packet limit
    assert tx.CHUNK == wire.CHUNK and 1 + 8 + 6 + tx.CHUNK + 64 < 4096


@pytest.mark.parametrize("text", ["", "2:00-05:00", "02:00-05:60", "24:00-01:00", "02:00-02:00",
                                  "02:00 05:00", None, 7])
def test_a_bad_window_is_refused_naming_the_field(text):
    with pytest.raises(OtaError, match="window"):
        plan.parse_window(text)


def test_windows_run_in_local_time_and_over_midnight():
    night = plan.parse_window("23:00-02:00")
    at = lambda h, m: datetime.datetime(2026, 12, 4, h, m)  # noqa: E731
    assert plan.in_window(night, at(23, 0)) and plan.in_window(night, at(1, 59))
    assert not plan.in_window(night, at(2, 0)) and not plan.in_window(night, at(22, 59))
    early = plan.parse_window("02:00-05:00")
    assert plan.in_window(early, at(2, 0)) and not plan.in_window(early, at(5, 0))


def test_the_target_follows_the_reports():
    rep = {"version": "1.0.0", "trial": False, "status": "idle", "failures": []}
    assert plan.state_after_report("1.1.0", rep) is None
    assert plan.state_after_report("1.1.0", dict(rep, status="fetching")) == "fetching"
    assert plan.state_after_report("1.1.0", dict(rep, status="refused_hash")) == "refused_hash"
    assert plan.state_after_report("1.1.0", dict(rep, version="1.1.0", trial=True)) == "trial"
    assert plan.state_after_report("1.1.0", dict(rep, version="1.1.0")) == "done"
    failed = dict(rep, failures=[{"version": "1.1.0", "reason": "crashed"}])
    assert plan.state_after_report("1.1.0", failed) == "failed"
    target = {"state": "offered", "version": "1.1.0"}
    assert plan.should_offer(target, rep, True) and not plan.should_offer(target, rep, False)
    assert not plan.should_offer(dict(target, state="failed"), rep, True)
    assert not plan.should_offer(target, dict(rep, version="1.1.0", trial=True), True)


def test_a_device_silent_mid_update_for_three_heartbeats_is_stalled():
    now = 1_800_000_000.0
    hb = 1800  # 30-minute heartbeat: three of them, 90 minutes
    t = {"state": "fetching", "updated_at": now - 4 * 3600}
    assert plan.stalled_for(t, now - 91 * 60, hb, now) == 91 * 60
    assert plan.stalled_for(t, now - 89 * 60, hb, now) is None  # heard from within the limit
    assert plan.stalled_for(t, None, hb, now) == 4 * 3600  # since the target last moved
    # at least an hour, whatever the heartbeat
    assert plan.stalled_for(t, now - 50 * 60, 60, now) is None
    assert plan.stalled_for(t, now - 61 * 60, 60, now) == 61 * 60
    for state in ("offered", "installed", "trial"):
        assert plan.stalled_for(dict(t, state=state), None, hb, now) == 4 * 3600
    # not under way: waiting for its window or its battery, finished, withdrawn
    for state in ("waiting", "battery_low", "done", "failed", "withdrawn", "refused_hash"):
        assert plan.stalled_for(dict(t, state=state), None, hb, now) is None
    assert plan.stalled_for(None, None, hb, now) is None
    assert plan.should_offer(dict(t, state="withdrawn", version="1.1.0"), None, True) is False


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    work = tmp_path_factory.mktemp("rel")
    pub = host_release.keygen(work / "key")
    other = host_release.keygen(work / "other")
    host_release.build("door_sensor", "1.1.0", work / "key" / host_release.KEY_FILE, work / "rel")
    return pub, other, work / "rel"


def test_the_hub_takes_a_release_only_with_the_sites_key_and_every_file_intact(signed):
    pub, other, rel_dir = signed
    doc = ota_release.to_upload(rel_dir)
    rel = ota_release.from_upload(doc, pub)
    assert rel.version == "1.1.0" and rel.app == "door_sensor"
    assert rel.id == wire.release_id(rel.blob).hex()
    with pytest.raises(OtaError, match="signature"):
        ota_release.from_upload(doc, other)
    path = sorted(doc["files"])[0]
    import base64
    bad = dict(doc, files=dict(doc["files"], **{path: base64.b64encode(b"x").decode()}))
    with pytest.raises(OtaError, match=path):
        ota_release.from_upload(bad, pub)
    cut = dict(doc, manifest=base64.b64encode(base64.b64decode(doc["manifest"])[:60]).decode())
    with pytest.raises(OtaError, match="refused"):
        ota_release.from_upload(cut, pub)
    for broken in ({}, {"manifest": "!!", "files": {}}, dict(doc, files={"../x": "AA=="})):
        with pytest.raises(OtaError):
            ota_release.from_upload(broken, pub)


@pytest.mark.parametrize("node, why", [
    ("x", "mapping"), ({}, "release_pubkey"), ({"release_pubkey": "ab" * 31}, "release_pubkey"),
    ({"release_pubkey": "zz" * 32}, "release_pubkey"),
    ({"release_pubkey": "ab" * 32, "key": 1}, "unknown key 'key'"),
])
def test_a_bad_hub_ota_section_is_refused_naming_the_key(node, why):
    from hub.ota.server import parse_config

    class Site:
        hub = {"ota": node}
    with pytest.raises(OtaError, match=why):
        parse_config(Site())
