"""Device frames in over MQTT (paho-mqtt), acknowledged only after they are stored.

A persistent session (clean_session off, fixed client id) with manual PUBACK:
the broker keeps re-offering a QoS 1 frame until the hub has committed it, so a
hub crash between receipt and commit loses nothing; the re-delivery is then
dropped as a duplicate by its counter.
"""
import asyncio
import collections
import logging
import threading

import paho.mqtt.client as paho

from hub import TransportError

log = logging.getLogger("anju.hub.mqtt")


class MqttIngest:
    def __init__(self, site_id, host, port, client_id=None, keepalive=30):
        self.site_id = site_id
        self.host = host
        self.port = port
        self.client_id = client_id or "anju-hub-%s" % site_id
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._loop = None
        self._queue = None
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                   clean_session=False, protocol=paho.MQTTv311, manual_ack=True)
        self._client.will_set(self.availability_topic, b"offline", qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._sub_mid = None
        self.keepalive = keepalive
        self._inbox = collections.deque()  # paho's thread appends, the loop drains
        self._handover_scheduled = False

    @property
    def availability_topic(self):
        return "anju/%s/hub/availability" % self.site_id

    def start(self, loop, queue):
        """Connect in the background; frames are put on `queue` as
        ("mqtt", topic, payload, retained, ack) tuples."""
        self._loop = loop
        self._queue = queue
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()

    async def wait_connected(self, timeout):
        deadline = asyncio.get_running_loop().time() + timeout
        while not (self.connected.is_set() and self.subscribed.is_set()):
            if asyncio.get_running_loop().time() > deadline:
                raise TransportError("broker %s:%d not reachable within %.0f s"
                                     % (self.host, self.port, timeout))
            await asyncio.sleep(0.02)

    def stop(self):
        if self.connected.is_set():
            self._client.publish(self.availability_topic, b"offline", qos=1, retain=True)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the hub", extra={"reason": str(reason_code)})
            return
        base = "anju/%s/+/" % self.site_id
        self.subscribed.clear()
        _, self._sub_mid = client.subscribe([(base + "event", 1), (base + "state", 1)])
        client.publish(self.availability_topic, b"online", qos=1, retain=True)
        self.connected.set()
        log.info("connected to the device broker", extra={"broker": "%s:%d" % (self.host, self.port)})

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if mid == self._sub_mid and not any(rc.is_failure for rc in reason_codes):
            self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        log.warning("device broker link lost", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, msg):
        mid, qos = msg.mid, msg.qos

        def ack():
            if qos:
                client.ack(mid, qos)

        self._inbox.append(("mqtt", msg.topic, bytes(msg.payload), msg.retain, ack))
        if not self._handover_scheduled:
            # one wake-up of the loop per burst, not one per frame
            self._handover_scheduled = True
            self._loop.call_soon_threadsafe(self._hand_over)

    def _hand_over(self):
        """On the loop thread: move what paho's thread received onto the queue."""
        self._handover_scheduled = False
        inbox = self._inbox
        while inbox:
            self._queue.put_nowait(inbox.popleft())
