"""Outbox → upstream MQTT 5 (QoS 1), one document at a time, in order.

A row leaves the outbox only after the upstream broker's PUBACK. While the
upstream is unreachable the outbox simply grows; paho reconnects with backoff
and the drain resumes where it stopped. A crash between PUBACK and delete means
the same (id, seq) is published again: the platform de-duplicates on it.
"""
import asyncio
import logging
import threading

import paho.mqtt.client as paho

log = logging.getLogger("anju.hub.forwarder")

PUBACK_TIMEOUT_S = 10.0


class UpstreamForwarder:
    def __init__(self, store, host, port, client_id, wakeup):
        self.store = store
        self.host = host
        self.port = port
        self.connected = threading.Event()
        self.wakeup = wakeup  # asyncio.Event set when the outbox grows
        self.delivered = 0
        self.busy = False
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv5)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._loop = None

    def start(self, loop):
        self._loop = loop
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()

    def stop(self):
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("upstream refused the hub", extra={"reason": str(reason_code)})
            return
        self.connected.set()
        log.info("connected upstream", extra={"broker": "%s:%d" % (self.host, self.port)})
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wakeup.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        log.warning("upstream link lost", extra={"reason": str(reason_code)})

    def idle(self):
        return not self.busy and (not self.connected.is_set() or self.store.outbox_depth() == 0)

    async def run(self):
        loop = asyncio.get_running_loop()
        while True:
            self.busy = False
            await self.wakeup.wait()
            self.wakeup.clear()
            self.busy = True
            while self.connected.is_set():
                rows = self.store.outbox_head(1)
                if not rows:
                    break
                row_id, topic, payload = rows[0]
                info = self._client.publish(topic, payload.encode(), qos=1)
                ok = info.rc == paho.MQTT_ERR_SUCCESS and await loop.run_in_executor(
                    None, _wait_puback, info)
                with self.store.transaction() as tx:
                    if ok:
                        tx.outbox_delivered(row_id)
                    else:
                        tx.outbox_attempt(row_id)
                if ok:
                    self.delivered += 1
                    log.info("alarm forwarded", extra={"outbox": row_id})
                else:
                    await asyncio.sleep(0.2)


def _wait_puback(info):
    try:
        info.wait_for_publish(PUBACK_TIMEOUT_S)
    except (RuntimeError, ValueError):
        return False
    return info.is_published()
