"""Waiting for a device's first frame at the site broker: what the hub would
take in. Only an authentic frame counts (hub.verify.frames.verify with the
device's frame key), and only one published after the wait began (retained
state from an earlier run is ignored).
"""
import threading

import paho.mqtt.client as paho

from host_tools.deploy import DeployFailed
from hub.verify import frames


class FrameWatch:
    """Subscribe before the board restarts; `wait(timeout)` after."""

    def __init__(self, site, device_id, frame_key, host, port, user=None, password=None):
        self.device_id = device_id
        self.frame_key = frame_key
        self.where = "%s:%d" % (host, port)
        self.reading = None
        self.rejected = []
        self._heard = threading.Event()
        self._subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-deploy-%s" % device_id)
        if user:
            self._client.username_pw_set(user, password)
        topics = [("anju/%s/%s/event" % (site, device_id), 1),
                  ("anju/%s/%s/state" % (site, device_id), 1)]

        def on_connect(client, userdata, flags, reason, props):
            if not reason.is_failure:
                client.subscribe(topics)

        def on_subscribe(client, userdata, mid, reasons, props):
            self._subscribed.set()

        def on_message(client, userdata, msg):
            if msg.retain:
                return
            got = frames.verify(self.device_id, self.frame_key, msg.payload)
            if isinstance(got, frames.Reading):
                self.reading = got
                self._heard.set()
            else:
                self.rejected.append(got.reason)

        self._client.on_connect = on_connect
        self._client.on_subscribe = on_subscribe
        self._client.on_message = on_message
        try:
            self._client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise DeployFailed("cannot reach the site broker at %s to hear the device: %s"
                               % (self.where, exc.strerror or exc)) from exc
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise DeployFailed("the site broker at %s did not take the subscription to %s's "
                               "topics within 10 s (a login the ACL refuses?)"
                               % (self.where, device_id))

    def wait(self, timeout):
        """The first authentic frame (hub.verify.frames.Reading), or DeployFailed."""
        if not self._heard.wait(timeout):
            extra = ""
            if self.rejected:
                extra = "; %d frame(s) came that the hub would refuse (%s): the keys on the " \
                        "board are not the registry's" % (len(self.rejected),
                                                          ", ".join(sorted(set(self.rejected))))
            raise DeployFailed("%s was not heard at the site broker %s within %g s%s"
                               % (self.device_id, self.where, timeout, extra))
        return self.reading

    def close(self):
        self._client.loop_stop()
        self._client.disconnect()
