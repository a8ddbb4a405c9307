"""A flood of junk on the device broker: the valid door frames sent during it
are stored, every junk frame is counted and changes no state, and everything
the hub took was acknowledged (a new session of the hub is offered nothing
again). Both ingest modes (receiver process, as `anju hub run` runs; thread).
Real Mosquitto, the real hub; the latency during a flood is measured by
`python -m bench reject`, not here."""
import asyncio
import os

import paho.mqtt.client as paho
import pytest

from anju import frame
from hub.config import site as config
from hub.config import yamlfile
from hub.clock import SystemClock
from hub.service import HubService
from tests.integration import hubkit

pytestmark = [pytest.mark.broker]

KEY = bytes(range(32))
FORGED = bytes(32)
DEVICES = ("door-1", "door-2")
SITE = """
site: {id: sunrise}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents: [{id: r-101, name: Wang Lan, lives_alone: true}]
      - id: b1-102
        residents: [{id: r-102, name: Li Wei}]
devices:
  - {id: door-1, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %(k)s}
  - {id: door-2, kind: door_sensor, board: esp32c3, flat: b1-102, transport: mqtt, frame_key: %(k)s}
""" % {"k": KEY.hex()}
FLOOD_WAIT_S = 60.0
JUNK_ROUNDS = 300  # of the kinds below: 2,100 junk frames
VALID_EVERY = 30   # a valid door-2 frame after every 30 junk frames


def door(device, counter, key=KEY):
    return frame.encode(key, device.encode(), frame.T_DOOR, counter, 0,
                        frame.door_body(counter % 2 == 1))


def junk(k):
    """Junk of every kind on door-1's topic (and an unknown id's): (topic, payload, reason)."""
    t = "anju/sunrise/door-1/event"
    return [(t, door("door-1", 1000 + k, key=FORGED), "bad_tag"),
            (t, door("door-1", 3), "replayed"),  # door-1 is at counter 5
            (t, door("door-1", 1000 + k)[:15], "truncated"),
            (t, b"\xa1" * 2048, "oversized"),
            (t, b'{"open": true, "counter": %d}' % k, "bad_version"),
            (t, b"\x07" + door("door-1", 1000 + k)[1:], "bad_version"),
            ("anju/sunrise/intruder-%d/event" % k, door("intruder-%d" % k, 1), "unknown_device")]


async def wait_for(pred, what="condition"):
    await hubkit.wait_for(pred, FLOOD_WAIT_S, what)


def make_hub(tmp_path, broker, upstream, mode):
    s = config.parse_site(yamlfile.loads(SITE, "site.yaml"))
    return HubService(s, tmp_path / "hub.db", SystemClock(),
                      {"host": broker.host, "port": broker.port, "ingest": mode},
                      {"host": upstream.host, "port": upstream.port})


def stored(hub):
    return [(e["device"], e["counter"]) for e in hub.store.events()]


@pytest.mark.parametrize("mode", ["process", "thread"])
async def test_valid_frames_during_a_flood_are_stored_and_every_junk_frame_counted(
        tmp_path, make_broker, mode):
    broker = make_broker("site")
    upstream = make_broker("upstream")
    hub = make_hub(tmp_path, broker, upstream, mode)
    await hub.start()
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="flood-%d" % os.getpid())
    pub.max_inflight_messages_set(500)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        pub.publish("anju/sunrise/door-1/event", door("door-1", 5), qos=1)
        await wait_for(lambda: stored(hub) == [("door-1", 5)], what="door-1's frame")
        expected = {}
        valid = []
        sent = 0
        for k in range(JUNK_ROUNDS):
            for topic, payload, reason in junk(k):
                pub.publish(topic, payload, qos=1)
                expected[reason] = expected.get(reason, 0) + 1
                sent += 1
                if sent % VALID_EVERY == 0:
                    valid.append(("door-2", len(valid) + 1))
                    pub.publish("anju/sunrise/door-2/event", door(*valid[-1]), qos=1)
            await asyncio.sleep(0)  # the hub's loop (thread mode) runs while we publish
        await wait_for(lambda: hub.store.rejection_counts() == expected,
                       what="every junk frame counted")
        await wait_for(lambda: stored(hub) == [("door-1", 5)] + valid,
                       what="every valid frame stored")
        assert hub.pipeline.stats["rejected"] == sum(expected.values())
        assert hub.pipeline.stats["accepted"] == 1 + len(valid)
        assert hub.store.last_counter("door-1") == 5  # the junk changed no state
        assert hub.store.device_state("door-1")["door_open"] == 1
        assert [a["type"] for a in hub.store.alarms()] == ["possible_attack"]
        assert hub.ingest_errors == 0
    finally:
        await hub.stop()
        pub.disconnect()
        pub.loop_stop()
    # everything was acknowledged after its commit: a new session of the hub is
    # offered nothing again (a re-offer would come before this new frame)
    hub = make_hub(tmp_path, broker, upstream, mode)
    await hub.start()
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="device-%d" % os.getpid())
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        last = ("door-2", len(valid) + 1)
        pub.publish("anju/sunrise/door-2/event", door(*last), qos=1)
        await wait_for(lambda: last in stored(hub), what="a frame after the restart")
        assert hub.pipeline.stats == {"accepted": 1, "rejected": 0, "duplicate": 0, "alarms": 0}
        assert hub.store.rejection_counts() == expected
    finally:
        await hub.stop()
        pub.disconnect()
        pub.loop_stop()
