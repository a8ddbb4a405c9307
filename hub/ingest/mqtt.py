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


class _Link:
    """What both ingest modes share: the hub's availability topic, and waiting
    for the connection and the subscription (`connected`, `subscribed`)."""

    @property
    def availability_topic(self):
        return "anju/%s/hub/availability" % self.site_id

    async def wait_connected(self, timeout):
        """Wait for the broker (paho keeps retrying), saying every 5 s that the
        hub is not ready yet; TransportError after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_note = loop.time() + 5.0
        while not (self.connected.is_set() and self.subscribed.is_set()):
            now = loop.time()
            if now > deadline:
                raise TransportError("broker %s:%d not reachable within %.0f s"
                                     % (self.host, self.port, timeout))
            if now >= next_note:
                log.warning("hub not ready: waiting for the device broker",
                            extra={"broker": "%s:%d" % (self.host, self.port),
                                   "left_s": round(deadline - now)})
                next_note = now + 5.0
            await asyncio.sleep(0.02)


class MqttIngest(_Link):
    def __init__(self, site_id, host, port, client_id=None, keepalive=30, login=None):
        self.site_id = site_id
        self.host = host
        self.port = port
        self.client_id = client_id or "anju-hub-%s" % site_id
        self.login = login
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._loop = None
        self._queue = None
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                   clean_session=False, protocol=paho.MQTTv311, manual_ack=True)
        self._client.will_set(self.availability_topic, b"offline", qos=1, retain=True)
        if login is not None:
            login.apply(self._client)  # hub/ingest/login.py
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._sub_mid = None
        self.keepalive = keepalive
        self._inbox = collections.deque()  # paho's thread appends, the loop drains
        self._handover_scheduled = False

    def start(self, loop, queue):
        """Connect in the background; frames are put on `queue` as
        ("mqtt", topic, payload, retained, ack, redelivered) tuples."""
        self._loop = loop
        self._queue = queue
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()

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

        self._inbox.append(("mqtt", msg.topic, bytes(msg.payload), msg.retain, ack, msg.dup))
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


# ---- the same ingest with paho in a child process --------------------------------
#
# The hub is bound by the GIL: paho's packet parsing in its network thread and
# the pipeline on the loop thread take turns on one core. `MqttIngestProcess`
# moves the MQTT client into a child process (docs/performance.md), so parsing
# and the pipeline run on two cores. The child is a plain paho client driven
# by its own select loop; it forwards frames to the hub in bursts over a pipe
# and sends a PUBACK only when the hub hands back that frame's acknowledgement,
# which the hub does after the frame's COMMIT, exactly as in the thread mode.
#
# Pipe messages (pickled tuples), child → hub:
#   ("frames", generation, [(mid, qos, topic, payload, retained, dup), ...])
#   ("link", connected, subscribed)
#   ("log", level, message, extra)
# hub → child:
#   ("ack", generation, [(mid, qos), ...])
#   ("stop",)
# A generation names one connection of one child: an acknowledgement meant for
# an earlier connection is dropped (the broker re-offers that frame to the new
# one, and the hub drops it as a duplicate and acknowledges it again). When the
# hub dies the child sees the pipe close and exits without DISCONNECT, so the
# broker publishes the hub's will ("offline") and keeps the frames not
# acknowledged for the hub's next session. When the child dies the hub starts
# a new one.

INGEST_MODES = ("process", "thread")  # `hub.mqtt.ingest`; `anju hub run` uses the first
CHILD_RESTART_S = 1.0
MAX_BURST = 500  # frames read from the socket before they are handed over


def _receiver_main(conn, incarnation, host, port, client_id, keepalive, availability_topic,
                   site_id, login=None):
    """The child process: one paho client, one select loop over the broker's
    socket and the pipe to the hub."""
    import os
    import select
    import signal
    import time

    # Ctrl-C in a terminal and systemd's stop signal reach the whole process
    # group: the hub stops its receiver itself ("stop"), after its last acks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def tell(*msg):
        try:
            conn.send(msg)
        except OSError:
            os._exit(0)  # the hub is gone

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=False, protocol=paho.MQTTv311, manual_ack=True)
    client.will_set(availability_topic, b"offline", qos=1, retain=True)
    if login is not None:
        login.apply(client)  # the hub's own identity (hub/ingest/login.py)
    # writes are done by this loop (loop_write), never from inside paho's calls
    client.on_socket_register_write = lambda c, u, s: None
    client.on_socket_unregister_write = lambda c, u, s: None
    batch = []
    link = {"connected": False, "subscribed": False, "sub_mid": None, "generation": 0,
            "delay": 0.2, "had_socket": False}
    base = "anju/%s/+/" % site_id

    def on_connect(c, u, flags, reason_code, properties):
        if reason_code.is_failure:
            tell("log", logging.ERROR, "broker refused the hub", {"reason": str(reason_code)})
            return
        link["delay"] = 0.2
        link["generation"] += 1
        _, link["sub_mid"] = c.subscribe([(base + "event", 1), (base + "state", 1)])
        c.publish(availability_topic, b"online", qos=1, retain=True)
        link["connected"] = True
        tell("log", logging.INFO, "connected to the device broker",
             {"broker": "%s:%d" % (host, port), "receiver_pid": os.getpid()})
        tell("link", True, False)

    def on_subscribe(c, u, mid, reason_codes, properties):
        if mid == link["sub_mid"] and not any(rc.is_failure for rc in reason_codes):
            link["subscribed"] = True
            tell("link", True, True)

    def on_message(c, u, msg):
        batch.append((msg.mid, msg.qos, msg.topic, bytes(msg.payload), msg.retain, msg.dup))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    gen_base = incarnation * 1_000_000
    next_attempt = 0.0
    next_misc = 0.0
    stopping = False
    while True:
        sock = client.socket()
        if sock is None and not stopping:
            now = time.monotonic()
            if link["had_socket"]:
                # the connection ended (lost, or refused at CONNACK): wait, then again
                link["had_socket"] = False
                next_attempt = now + link["delay"]
                link["delay"] = min(link["delay"] * 2, 5.0)
            if link["connected"]:
                link["connected"] = link["subscribed"] = False
                tell("link", False, False)
                tell("log", logging.WARNING, "device broker link lost", {})
            if now >= next_attempt:
                try:
                    client.connect(host, port, keepalive=keepalive)
                    link["had_socket"] = True
                except OSError as exc:
                    tell("log", logging.WARNING, "device broker not reachable",
                         {"broker": "%s:%d" % (host, port), "error": str(exc)})
                    next_attempt = now + link["delay"]
                    link["delay"] = min(link["delay"] * 2, 5.0)
                sock = client.socket()
        rlist = [conn] + ([sock] if sock is not None else [])
        wlist = [sock] if sock is not None and client.want_write() else []
        timeout = 1.0 if sock is not None else max(0.05, next_attempt - time.monotonic())
        try:
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
        except (OSError, ValueError):
            readable, writable = [], []  # the socket was closed under us: reconnect
        if conn in readable:
            try:
                while conn.poll():
                    msg = conn.recv()
                    if msg[0] == "ack":
                        if msg[1] == gen_base + link["generation"] and client.socket() is not None:
                            for mid, qos in msg[2]:
                                client.ack(mid, qos)
                    elif msg[0] == "stop":
                        stopping = True
            except (EOFError, OSError):
                os._exit(0)  # the hub died: no DISCONNECT, the broker publishes the will
        if sock is not None and sock in readable:
            for _ in range(MAX_BURST):
                before = len(batch)
                if client.loop_read() != paho.MQTT_ERR_SUCCESS or len(batch) == before:
                    break
            if batch:
                tell("frames", gen_base + link["generation"], batch)
                batch = []
        if stopping:
            if client.socket() is not None:
                client.publish(availability_topic, b"offline", qos=1, retain=True)
                client.disconnect()
                while client.socket() is not None and client.want_write():
                    if client.loop_write() != paho.MQTT_ERR_SUCCESS:
                        break
            os._exit(0)
        if client.socket() is not None and client.want_write():
            client.loop_write()
        now = time.monotonic()
        if client.socket() is not None and now >= next_misc:
            client.loop_misc()  # keepalive pings, ping timeouts
            next_misc = now + 1.0


class MqttIngestProcess(_Link):
    """`MqttIngest` with the MQTT client in a child process (see above); the
    same interface: `start`, `wait_connected`, `stop`, `connected`, `subscribed`."""

    def __init__(self, site_id, host, port, client_id=None, keepalive=30, login=None):
        self.site_id = site_id
        self.host = host
        self.port = port
        self.client_id = client_id or "anju-hub-%s" % site_id
        self.keepalive = keepalive
        self.login = login
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.restarts = 0  # children started after the first
        self._loop = None
        self._queue = None
        self._conn = None
        self._proc = None
        self._incarnation = 0
        self._acks = []
        self._ack_scheduled = False
        self._stopping = False

    def start(self, loop, queue):
        self._loop = loop
        self._queue = queue
        self._spawn()

    def pid(self):
        """The receiver's process id (None while none runs)."""
        return self._proc.pid if self._proc is not None else None

    def _spawn(self):
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=True)
        self._incarnation += 1
        proc = ctx.Process(target=_receiver_main, name="anju-mqtt-receiver", daemon=True,
                           args=(theirs, self._incarnation, self.host, self.port, self.client_id,
                                 self.keepalive, self.availability_topic, self.site_id,
                                 self.login))
        proc.start()
        theirs.close()
        self._conn, self._proc = ours, proc
        self._loop.add_reader(ours.fileno(), self._on_pipe)

    def _on_pipe(self):
        conn = self._conn
        try:
            while conn is self._conn and conn.poll():
                msg = conn.recv()
                kind = msg[0]
                if kind == "frames":
                    gen = msg[1]
                    put = self._queue.put_nowait
                    for mid, qos, topic, payload, retained, dup in msg[2]:
                        ack = self._acker(gen, mid, qos) if qos else _no_ack
                        put(("mqtt", topic, payload, retained, ack, dup))
                elif kind == "link":
                    (self.connected.set if msg[1] else self.connected.clear)()
                    (self.subscribed.set if msg[2] else self.subscribed.clear)()
                elif kind == "log":
                    log.log(msg[1], msg[2], extra=msg[3])
        except (EOFError, OSError):
            self._child_gone()

    def _acker(self, gen, mid, qos):
        def ack():
            self._acks.append((gen, mid, qos))
            if not self._ack_scheduled:
                # every acknowledgement of an ingest batch in one message
                self._ack_scheduled = True
                self._loop.call_soon(self._send_acks)
        return ack

    def _send_acks(self):
        self._ack_scheduled = False
        acks, self._acks = self._acks, []
        mine = self._incarnation * 1_000_000
        by_gen = {}
        for gen, mid, qos in acks:
            if mine < gen < mine + 1_000_000:  # not for a child that is gone
                by_gen.setdefault(gen, []).append((mid, qos))
        try:
            for gen, pairs in by_gen.items():
                self._conn.send(("ack", gen, pairs))
        except (OSError, AttributeError):
            pass  # the child is gone: the broker offers these frames again

    def _child_gone(self):
        conn, proc = self._conn, self._proc
        if conn is None:
            return
        self._loop.remove_reader(conn.fileno())
        conn.close()
        self._conn = None
        self.connected.clear()
        self.subscribed.clear()
        if proc is not None:
            proc.join(1.0)
        if self._stopping:
            return
        log.error("MQTT receiver process ended; starting a new one",
                  extra={"exitcode": proc.exitcode if proc is not None else None})
        self.restarts += 1
        self._loop.call_later(CHILD_RESTART_S, self._respawn)

    def _respawn(self):
        if not self._stopping and self._conn is None:
            self._spawn()

    def stop(self):
        self._stopping = True
        conn, proc = self._conn, self._proc
        if conn is not None:
            self._loop.remove_reader(conn.fileno())
            if self._acks:
                self._send_acks()  # frames already committed: no need to see them again
            try:
                conn.send(("stop",))
            except OSError:
                pass
        if proc is not None:
            proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
        if conn is not None:
            conn.close()
        self._conn = None
        self.connected.clear()
        self.subscribed.clear()


def _no_ack():
    pass
