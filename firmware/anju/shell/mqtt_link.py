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
