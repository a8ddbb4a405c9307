"""`umqtt.simple` for simulated devices, over a real MQTT connection.

Same API and blocking behaviour as micropython-lib's umqtt.simple (connect,
publish with QoS 0/1 that returns after PUBACK, subscribe, check_msg, wait_msg,
last will), carried by paho-mqtt to a real broker. Every wait is bounded in real
time and failures surface as OSError, as on the device.
"""
import threading
import types

import paho.mqtt.client as paho

NET_TIMEOUT_S = 5.0


class MQTTException(Exception):
    pass


def module(dev):
    class MQTTClient:
        def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                     ssl=None, ssl_params=None):
            if isinstance(client_id, bytes):
                client_id = client_id.decode()
            self.client_id = client_id
            self.server = server
            self.port = port or 1883
            self.user = user
            self.pswd = password
            self.keepalive = keepalive
            self.cb = None
            self.lw = None
            self._c = None
            self._inbox = []
            self._cond = threading.Condition()

        def set_callback(self, f):
            self.cb = f

        def set_last_will(self, topic, msg, retain=False, qos=0):
            self.lw = (_s(topic), bytes(msg), qos, retain)

        def connect(self, clean_session=True, timeout=None):
            if not dev.wifi_ok:
                raise OSError(113, "EHOSTUNREACH")
            c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                            clean_session=clean_session, protocol=paho.MQTTv311)
            if self.user is not None:
                c.username_pw_set(self.user, self.pswd)
            if self.lw:
                c.will_set(self.lw[0], self.lw[1], self.lw[2], self.lw[3])
            done = threading.Event()
            result = {}

            def on_connect(client, userdata, flags, reason_code, properties):
                result["rc"] = reason_code
                result["session"] = flags.session_present
                done.set()

            def on_message(client, userdata, msg):
                with self._cond:
                    self._inbox.append((msg.topic.encode(), msg.payload))
                    self._cond.notify_all()

            c.on_connect = on_connect
            c.on_message = on_message
            try:
                c.connect(self.server, self.port, keepalive=self.keepalive or 60)
            except OSError:
                raise
            c.loop_start()
            if not done.wait(timeout or NET_TIMEOUT_S):
                c.loop_stop()
                raise OSError(110, "ETIMEDOUT waiting for CONNACK")
            if result["rc"].is_failure:
                c.loop_stop()
                raise MQTTException(result["rc"].value)
            self._c = c
            return 1 if result["session"] else 0

        def _need(self):
            if self._c is None or not dev.wifi_ok:
                self._drop()
                raise OSError(104, "ECONNRESET")
            return self._c

        def _drop(self):
            if self._c is not None:
                self._c.loop_stop()
                self._c.disconnect()
                self._c = None

        def disconnect(self):
            if self._c is not None:
                self._c.disconnect()
                self._c.loop_stop()
                self._c = None

        def ping(self):
            self._need()

        def publish(self, topic, msg, retain=False, qos=0):
            c = self._need()
            info = c.publish(_s(topic), bytes(msg), qos=qos, retain=retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                self._drop()
                raise OSError(104, "publish failed: %s" % paho.error_string(info.rc))
            if qos:
                try:
                    info.wait_for_publish(NET_TIMEOUT_S)
                except (RuntimeError, ValueError) as exc:
                    self._drop()
                    raise OSError(104, "publish failed") from exc
                if not info.is_published():
                    self._drop()
                    raise OSError(110, "ETIMEDOUT waiting for PUBACK")
            dev.sim.on_device_published(dev, _s(topic), bytes(msg))

        def subscribe(self, topic, qos=0):
            c = self._need()
            rc, _ = c.subscribe(_s(topic), qos)
            if rc != paho.MQTT_ERR_SUCCESS:
                raise OSError(104, "subscribe failed")

        def check_msg(self):
            self._need()
            with self._cond:
                items, self._inbox = self._inbox, []
            for topic, payload in items:
                if self.cb:
                    self.cb(topic, payload)

        def wait_msg(self):
            self._need()
            with self._cond:
                if not self._inbox:
                    self._cond.wait(NET_TIMEOUT_S)
            self.check_msg()

    m = types.ModuleType("umqtt.simple")
    m.MQTTClient = MQTTClient
    m.MQTTException = MQTTException
    return m


def _s(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else v
