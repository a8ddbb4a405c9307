"""Wi-Fi and MQTT for devices that report over the broker.

Every network wait is bounded (the client is anju.shell.mqtt; its failures
are all OSError, a refusing broker included). A frame leaves the persistent
queue only after the broker's PUBACK; on any network error the rest stays
queued for the next wake. A link that cannot be had turns the radio off, and
the apps back off between attempts.
"""
import time

import network

from anju.shell.mqtt import MQTTClient


# Statuses after which waiting longer cannot help (each port names its own:
# esp32 reports ESP-IDF reason codes, rp2 the CYW43 link states).
_FAILED = tuple(getattr(network, _n) for _n in (
    "STAT_NO_AP_FOUND", "STAT_WRONG_PASSWORD", "STAT_CONNECT_FAIL", "STAT_ASSOC_FAIL",
    "STAT_HANDSHAKE_TIMEOUT", "STAT_BEACON_TIMEOUT") if hasattr(network, _n))

# Longest wait between two connection attempts while the link stays down.
MAX_BACKOFF_S = 900


def wifi_up(cfg, timeout_ms=8000):
    """The station interface, connected; None (and the radio off) if the access
    point cannot be reached within `timeout_ms` or refuses us."""
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(cfg.wifi["ssid"], cfg.wifi.get("password", ""))
        start = time.ticks_ms()
        while not wlan.isconnected():
            if (wlan.status() in _FAILED
                    or time.ticks_diff(time.ticks_ms(), start) > timeout_ms):
                wlan.active(False)  # a radio left on only drains the battery
                return None
            time.sleep_ms(50)
    return wlan


def backoff_s(base_s, failures):
    """Seconds before the next attempt after `failures` failed ones in a row:
    doubling from `base_s`, at most MAX_BACKOFF_S."""
    return min(base_s * (1 << min(failures, 16)), MAX_BACKOFF_S)


def wifi_down(wlan):
    if wlan is not None:
        wlan.active(False)


def make_client(cfg, client_id=None):
    """The device's MQTT client, logged in as itself (docs/broker.md); as
    another client id (`client_id`), it leaves the session of the device's
    own id alone."""
    return MQTTClient(client_id or cfg.device_id, cfg.mqtt["host"], port=cfg.mqtt.get("port", 1883),
                      user=cfg.mqtt_user, password=cfg.mqtt_password,
                      keepalive=60, timeout_ms=cfg.mqtt_timeout_ms)


def deliver(cfg, queue, state_frame, then=None):
    """Send queued frames in order (QoS 1), then the retained state, then
    `then(client)` on the same connection (the OTA exchange).

    Returns the number of frames acknowledged; never raises on network errors.
    """
    wlan = wifi_up(cfg)
    if wlan is None:
        return 0
    sent = 0
    client = make_client(cfg)
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
        if then is not None:
            then(client)
        client.disconnect()
    except OSError:
        client.close()  # link lost or broker refused: what is left stays queued
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
        self.failures = 0  # failed attempts in a row (the app backs off with backoff_s)

    def up(self):
        if self.client is not None:
            return True
        self.wlan = wifi_up(self.cfg, self.wifi_timeout_ms)
        if self.wlan is None:
            self.failures += 1
            return False
        cfg = self.cfg
        client = make_client(cfg)
        avail = cfg.topic("availability")
        client.set_last_will(avail, b"offline", retain=True, qos=1)
        client.set_callback(self._on_message)
        try:
            client.connect(clean_session=False)
            client.subscribe(cfg.topic("cmd"), qos=1)
            client.publish(avail, b"online", retain=True, qos=1)
        except OSError:
            client.close()
            self.down()
            self.failures += 1
            return False
        self.client = client
        self.failures = 0
        return True

    def _on_message(self, topic, msg):
        if bytes(topic).endswith(b"/cmd"):
            self.on_command(msg)  # ota/down is the OTA exchange's (anju.shell.ota.fetch)

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
        """Take in commands that arrived and keep the session alive (the
        client sends PINGREQ when it has been quiet for keepalive/2); False
        when the link is gone."""
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
