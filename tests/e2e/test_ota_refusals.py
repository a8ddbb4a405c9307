"""A door sensor refuses a bad update with the reason and installs nothing:
the unmodified firmware in the simulator, facing a hub whose OTA answers are
scripted here (on the real OTA component's MQTT client, through the site
broker and its ACL) so that it can offer what a real hub never would:

  other_key   a release signed by another key (refused before any chunk)
  older       0.9.0 over the running 1.0.0, no downgrade flag (idem)
  hash        the right manifest, a file whose bytes differ
  truncated   the right manifest, the transfer ends early (an empty chunk)

Each sensor reports the refusal's status, then keeps running 1.0.0 from slot
a, and is never on trial.
"""
import asyncio
import textwrap

import pytest

from host_tools import release as host_release
from hub.ota import release as ota_release, wire
from simulator.runner import run_scenario

pytestmark = pytest.mark.micropython

CASES = {"door-0": "other_key", "door-1": "older", "door-2": "hash", "door-3": "truncated"}
WANT = {"other_key": "refused_signature", "older": "refused_version", "hash": "refused_hash",
        "truncated": "refused_truncated"}


def _releases(work):
    pub = host_release.keygen(work / "key")
    host_release.keygen(work / "other")
    key, other = work / "key" / host_release.KEY_FILE, work / "other" / host_release.KEY_FILE
    host_release.build("door_sensor", "1.1.0", key, work / "good")
    host_release.build("door_sensor", "1.1.0", other, work / "other-key")
    host_release.build("door_sensor", "0.9.0", key, work / "older")
    good = ota_release.load(work / "good", pub)
    blobs = {"other_key": (work / "other-key" / host_release.MANIFEST_BIN).read_bytes(),
             "older": (work / "older" / host_release.MANIFEST_BIN).read_bytes(),
             "hash": good.blob, "truncated": good.blob}
    return pub, good, blobs


def _scenario(pub):
    return textwrap.dedent("""\
        name: a door sensor refuses bad updates
        site: {id: ota-refusals, name: OTA refusals}
        hub: {ota: {release_pubkey: %s}}
        buildings:
          - id: b1
            flats: [{id: f-0}, {id: f-1}, {id: f-2}, {id: f-3}]
        devices:
        %s
        timeline:
          - {at: 40m}
        expect:
          - {no_alarm: inactivity}
        """) % (pub, "\n".join(
        "  - {id: door-%d, kind: door_sensor, board: esp32, flat: f-%d, transport: mqtt, "
        "heartbeat: 15m}" % (i, i) for i in range(4)))


def test_a_sensor_refuses_another_key_an_older_version_a_bad_file_and_a_short_transfer(tmp_path):
    pub, good, blobs = _releases(tmp_path)
    reports = {did: [] for did in CASES}
    requests = {did: [] for did in CASES}

    def on_start(run, sim):
        ota = run.hub.ota
        site = run.hub.site

        def scripted(did, payload):
            dev = site.devices[did]
            case = CASES[did]
            down = "anju/%s/%s/ota/down" % (site.site_id, did)
            mtype, counter, body = wire.verify(did, dev.frame_key, payload)
            if mtype == wire.T_FW_REPORT:
                reports[did].append(wire.decode_report(body))
                ota._client.publish(down, wire.ack(dev.frame_key, did, counter), qos=1)
                first = len(reports[did]) == 1
                ota._client.publish(down, wire.offer(blobs[case]) if first else wire.NONE, qos=1)
                return
            rid, index, offset, length = wire.decode_chunk_request(body)
            requests[did].append((index, offset))
            data = good.data[index][offset:offset + length]
            if case == "hash" and index == 1 and offset == 0:
                data = bytes([data[0] ^ 0x80]) + data[1:]
            if case == "truncated" and index == 2:
                data = b""
            ota._client.publish(down, wire.chunk(rid, index, offset, data), qos=1)

        ota._handle = scripted

    path = tmp_path / "refusals.yaml"
    path.write_text(_scenario(pub))
    lines = []
    ok, _run = asyncio.run(run_scenario(path, out=lines.append, workdir=tmp_path / "run",
                                        on_start=on_start))
    assert ok, "\n".join(lines[-40:])
    for did, case in CASES.items():
        statuses = [r["status"] for r in reports[did]]
        assert WANT[case] in statuses, (did, case, statuses)
        assert statuses[-1] == "idle", (did, statuses)  # the next wake: nothing going on
        for r in reports[did]:
            assert (r["version"], r["slot"], r["trial"]) == ("1.0.0", "a", False), (did, r)
        if case in ("other_key", "older"):
            assert requests[did] == [], (did, requests[did])  # refused before any chunk
        else:
            assert requests[did], did
            assert len({req for req in requests[did]}) == len(requests[did])  # offsets move on
