"""A store failure while a frame is applied neither kills the hub nor
acknowledges the frame: the hub logs it, keeps serving other devices, and the
broker still holds the unacknowledged frame for the hub's session."""
import asyncio

import paho.mqtt.client as paho

from anju import frame
from hub.config import site as config
from hub.config import yamlfile
from hub.clock import SystemClock
from hub.service import HubService

KEY = bytes(range(32))
SITE = """
site: {id: sunrise}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents: [{id: r-101, name: Wang Lan, lives_alone: true}]
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %s}
  - {id: door-102, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %s}
""" % (KEY.hex(), KEY.hex())


def publish(broker, device, counter):
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="pub-" + device)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        data = frame.encode(KEY, device.encode(), frame.T_DOOR, counter, 0, frame.door_body(True))
        info = c.publish("anju/sunrise/%s/event" % device, data, qos=1)
        info.wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


async def wait_for(pred, timeout=10.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


async def test_store_failure_does_not_stop_ingest(tmp_path, make_broker):
    broker = make_broker("site", persistence=True)
    upstream = make_broker("upstream")
    site = config.parse_site(yamlfile.loads(SITE, "site.yaml"))
    hub = HubService(site, tmp_path / "hub.db", SystemClock(),
                     {"host": broker.host, "port": broker.port},
                     {"host": upstream.host, "port": upstream.port})
    # a real SQLite failure for one device's events (as a full disk would be)
    hub.store.db.execute("CREATE TRIGGER fail_102 BEFORE INSERT ON events "
                         "WHEN NEW.device_id = 'door-102' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    await hub.start()
    try:
        await asyncio.to_thread(publish, broker, "door-102", 1)
        await wait_for(lambda: hub.ingest_errors == 1)
        await asyncio.to_thread(publish, broker, "door-101", 1)
        await wait_for(lambda: len(hub.store.events()) == 1)
        assert [e["device"] for e in hub.store.events()] == ["door-101"]
        # the failed frame changed nothing: no counter, no state
        assert hub.store.last_counter("door-102") == 0
        assert hub.store.device_state("door-102") is None
        assert all(not t.done() for t in hub._tasks)
    finally:
        await hub.stop()
