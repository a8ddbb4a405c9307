"""Wi-Fi and MQTT for devices that report over the broker.

Every network wait is bounded. A frame leaves the persistent queue only after
the broker's PUBACK; on any network error the rest stays queued for the next
wake.
"""
import time

import network
from umqtt.simple import MQTTClient


def wifi_up(cfg, timeout_ms=8000):
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(cfg.wifi["ssid"], cfg.wifi.get("password", ""))
        start = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
                return None
            time.sleep_ms(50)
    return wlan


def wifi_down(wlan):
    if wlan is not None:
        wlan.active(False)


def deliver(cfg, queue, state_frame):
    """Send queued frames in order (QoS 1), then the retained state.

    Returns the number of frames acknowledged; never raises on network errors.
    """
    wlan = wifi_up(cfg)
    if wlan is None:
        return 0
    sent = 0
    client = MQTTClient(cfg.device_id, cfg.mqtt["host"], port=cfg.mqtt.get("port", 1883),
                        keepalive=60)
    avail = cfg.topic("availability")
    client.set_last_will(avail, b"offline", retain=True, qos=1)
    try:
        client.connect()
        client.publish(avail, b"online", retain=True, qos=1)
        event_topic = cfg.topic("event")
        while len(queue):
            client.publish(event_topic, queue.peek(1)[0], qos=1)
            queue.pop(1)
            sent += 1
        if state_frame is not None:
            client.publish(cfg.topic("state"), state_frame, retain=True, qos=1)
        client.disconnect()
    except OSError:
        pass  # link lost: what is left stays queued
    finally:
        wifi_down(wlan)
    return sent


class Session:
    """A kept MQTT session for devices that must hear commands (smoke sensors).

    clean_session=False with QoS 1 on the device's `cmd` topic: commands the
    hub publishes while the device is away are held by the broker and arrive
    at the next connect. `on_command(payload)` runs in the app's own context
    (from `poll`), never in an interrupt. Every wait is bounded; network
    errors drop the session and are reported as False, never raised.
    """

    def __init__(self, cfg, on_command, wifi_timeout_ms=3000):
        self.cfg = cfg
        self.on_command = on_command
        self.wifi_timeout_ms = wifi_timeout_ms
        self.wlan = None
        self.client = None

    def up(self):
        if self.client is not None:
            return True
        self.wlan = wifi_up(self.cfg, self.wifi_timeout_ms)
        if self.wlan is None:
            return False
        cfg = self.cfg
        client = MQTTClient(cfg.device_id, cfg.mqtt["host"], port=cfg.mqtt.get("port", 1883),
                            keepalive=60)
        avail = cfg.topic("availability")
        client.set_last_will(avail, b"offline", retain=True, qos=1)
        client.set_callback(self._on_message)
        try:
            client.connect(clean_session=False)
            client.subscribe(cfg.topic("cmd"), qos=1)
            client.publish(avail, b"online", retain=True, qos=1)
        except OSError:
            self.down()
            return False
        self.client = client
        return True

    def _on_message(self, topic, msg):
        self.on_command(msg)

    def deliver(self, queue, state_frame=None):
        """Publish queued frames in order (each leaves the queue after PUBACK)."""
        if not self.up():
            return 0
        sent = 0
        try:
            topic = self.cfg.topic("event")
            while len(queue):
                self.client.publish(topic, queue.peek(1)[0], qos=1)
                queue.pop(1)
                sent += 1
            if state_frame is not None:
                self.client.publish(self.cfg.topic("state"), state_frame, retain=True, qos=1)
        except OSError:
            self.down()
        return sent

    def poll(self):
        """Take in commands that arrived; False when the link is gone."""
        if not self.up():
            return False
        try:
            self.client.check_msg()
        except OSError:
            self.down()
            return False
        return True

    def down(self):
        if self.client is not None:
            try:
                self.client.disconnect()
            except OSError:
                pass  # already gone
            self.client = None
        wifi_down(self.wlan)
        self.wlan = None
