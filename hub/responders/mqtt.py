"""The responders' MQTT way in: `anju/<site>/responders/<id>/position` on the
site broker, JSON `{"x": .., "y": .., "on_duty"?: bool}` in plan coordinates.

A component (hub/components.py) with its own paho client, logged in as the
hub (`hub-<site>`, hub/ingest/login.py; the ACL of host_tools/broker.py lets
the hub read these topics and each responder's account write only its own).
paho's thread only hands the message over; the board is changed on the hub's
loop. A report that cannot be used is logged (its reason, never its payload)
and dropped: positions are not kept at the broker (QoS 0, not retained).
"""
import asyncio
import logging
import threading

import paho.mqtt.client as paho

from hub.responders.board import PositionInvalid, board_for

log = logging.getLogger("anju.hub.responders")


def topic_filter(site_id):
    return "anju/%s/responders/+/position" % site_id


def responder_of(topic, site_id):
    """The responder id in a position topic, or None."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[:3] == ["anju", site_id, "responders"] and parts[4] == "position":
        return parts[3]
    return None


class ResponderPositions:
    def __init__(self, hub):
        self.hub = hub
        self.board = board_for(hub)
        self.site_id = hub.site.site_id
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.rejected = 0
        self._loop = None
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-hub-%s-responders" % self.site_id)
        if hub.mqtt.login is not None:
            hub.mqtt.login.apply(self._client)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    async def start(self):
        self._loop = asyncio.get_running_loop()
        host, port = self.hub._mqtt_address
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    async def stop(self):
        self._client.disconnect()
        await asyncio.wait_for(self._loop.run_in_executor(None, self._client.loop_stop), 10.0)
        reset = getattr(self._client, "_reset_sockets", None)
        if reset is not None:
            reset()

    async def wait_ready(self, timeout):
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not self.subscribed.is_set():
            if loop.time() > end:
                from hub import TransportError
                raise TransportError("not subscribed to %s within %.0f s"
                                     % (topic_filter(self.site_id), timeout))
            await asyncio.sleep(0.02)

    # ---- paho's thread -------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("site broker refused the responder client", extra={"reason": str(reason_code)})
            return
        self.connected.set()
        client.subscribe(topic_filter(self.site_id), qos=0)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if not any(rc.is_failure for rc in reason_codes):
            self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.subscribed.clear()

    def _on_message(self, client, userdata, msg):
        item = (msg.topic, bytes(msg.payload))
        try:
            self._loop.call_soon_threadsafe(self._apply, *item)
        except RuntimeError:
            pass  # the loop is closed: a position is not worth keeping

    # ---- the loop ---------------------------------------------------------------------
    def _apply(self, topic, payload):
        rid = responder_of(topic, self.site_id)
        try:
            if rid is None:
                raise PositionInvalid("bad_topic", "not a position topic")
            self.board.report(rid, payload, "mqtt")
        except KeyError:
            self.rejected += 1
            log.warning("position of an unknown responder", extra={"responder": rid})
        except PositionInvalid as exc:
            self.rejected += 1
            log.warning("position report rejected", extra={"responder": rid,
                                                          "reason": exc.reason})
