"""GET /api/devices shows what each device reported, and for a smoke sensor its
alarm / warning / muted / testing / fault / end-of-service / low-battery state,
from real frames through a running hub."""
import asyncio
import json
import struct
import urllib.error
import urllib.request

from anju import frame
from hub.verify import frames_smoke
from tests.integration import hubkit
from tests.authkit import bearer

SMOKE = ("  - {id: smoke-101, kind: smoke_sensor, board: esp32c3, flat: b1-101, transport: mqtt,"
         " frame_key: %s}" % hubkit.KEY.hex())


def get(hub, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (hub.http.port, path),
                                 headers=bearer(hub, "read_only"))
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, json.loads(r.read())


def status_frame(counter, **flags):
    bits = 0
    for name, bit in frames_smoke.FLAGS:
        if flags.get(name):
            bits |= bit
    body = struct.pack(">BBHBBH", bits, 15, 2500, 12, 2, 0)
    return frame.encode(hubkit.KEY, b"smoke-101", 0x31, counter, 0, body)


async def test_device_state_and_smoke_flags(tmp_path, make_site_broker, upstream_broker):
    site_cfg = hubkit.site(extra=SMOKE)
    broker = make_site_broker(site_cfg)
    hub = await hubkit.start_hub(tmp_path / "hub.db", broker, upstream_broker, site_cfg=site_cfg)
    try:
        await asyncio.to_thread(hubkit.publish_frame, broker, "door-101",
                                hubkit.door_frame(1, is_open=True))
        await asyncio.to_thread(hubkit.publish_frame, broker, "smoke-101",
                                status_frame(1, muted=True, end_of_service=True, battery_low=True))
        await hubkit.wait_for(lambda: len(hub.store.last_seen_all()) == 2)
        status, body = await asyncio.to_thread(get, hub, "/api/devices")
        assert status == 200
        by_id = {d["device"]: d for d in body["devices"]}
        assert by_id["door-101"]["state"]["door_open"] == 1
        assert "smoke" not in by_id["door-101"]
        smoke = by_id["smoke-101"]["smoke"]
        assert smoke["muted"] is True and smoke["end_of_service"] is True
        assert smoke["battery_low"] is True and smoke["fault"] is False
        assert smoke["alarm"] is False and smoke["testing"] is False
        assert smoke["contamination"] == 12 and smoke["percent"] == 15
        status, one = await asyncio.to_thread(get, hub, "/api/devices/smoke-101")
        assert status == 200 and one["smoke"] == smoke
        try:
            await asyncio.to_thread(get, hub, "/api/devices/nobody")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        else:
            raise AssertionError("an unknown device must be 404")
    finally:
        await hub.stop()


async def test_a_devices_recent_events_newest_first(tmp_path, make_site_broker, upstream_broker):
    site_cfg = hubkit.site()
    broker = make_site_broker(site_cfg)
    hub = await hubkit.start_hub(tmp_path / "hub.db", broker, upstream_broker, site_cfg=site_cfg)
    try:
        for counter, is_open in ((1, True), (2, False), (3, True)):
            await asyncio.to_thread(hubkit.publish_frame, broker, "door-101",
                                    hubkit.door_frame(counter, is_open=is_open))
        await hubkit.wait_for(lambda: len(hub.store.events("door-101")) == 3)
        status, body = await asyncio.to_thread(get, hub, "/api/devices/door-101/events?limit=2")
        assert status == 200 and body["device"] == "door-101"
        assert [(e["counter"], e["type"], e["values"]["open"]) for e in body["events"]] == \
            [(3, "door", True), (2, "door", False)]
        status, body = await asyncio.to_thread(get, hub, "/api/devices/door-102/events")
        assert (status, body["events"]) == (200, [])
    finally:
        await hub.stop()
