"""Simulated gate readers and vehicle barriers (docs/visitors.md, "Gate
readers and barriers"; docs/scenarios.md).

QR turnstiles and plate cameras with their barriers are commercial devices
the hub integrates with through the vendor's MQTT bridge; they run no anju
firmware, so there is no MicroPython image of them to run as the simulator
runs the sensors and locks. A scenario run simulates each one as an MQTT
peer speaking exactly the bridge's JSON: a paho client logged in to the
run's site broker as the reader's own account (its id is its user name
under the generated ACL, docs/broker.md), publishing signed reports QoS 1
and verifying the hub's answer as the device does: the MAC with its key,
`ref` equal to the report's counter, the command counter strictly
increasing, the command no older than its `valid_s` on the run's clock.
It opens only on a command that verifies; any other answer is ignored and
counted by reason.

The verification is written here from the protocol in docs/visitors.md,
not imported from the hub (hub/visitors/readers.py), so that the hub's
signing is checked by an independent implementation.

    canonical, sign, report, check_answer    pure
    ReaderPeer                               the shell: its paho client; its
                                             state changes on the asyncio loop

Exceptions: AnswerIgnored (a ValueError) carries the reason an answer was
ignored: malformed, forged, mismatched, replayed, stale. A peer never
opens on an answer that raised it, and never prints its key.
"""
import asyncio
import hashlib
import hmac
import json
import threading

REPORT_LABEL = b"anju-visitor-report"
COMMAND_LABEL = b"anju-visitor-cmd"
COMMAND_KEYS = frozenset(("reader", "counter", "ref", "at", "open", "reason", "valid_s", "mac"))
MAX_COMMAND_BYTES = 1024
MAX_VALID_S = 60    # a command claiming longer is not one the bridge takes
MAX_AHEAD_S = 2     # a command stamped later than this after the reader's clock is stale
IGNORE_REASONS = ("malformed", "forged", "mismatched", "replayed", "stale")
CONNECT_TIMEOUT_S = 10.0


class AnswerIgnored(ValueError):
    """An answer the reader does not act on; `reason` is one of IGNORE_REASONS."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def canonical(doc):
    """The signed bytes: the object without "mac", JSON, keys sorted, no spaces, UTF-8."""
    return json.dumps({k: v for k, v in doc.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(key, label, doc):
    """hex(HMAC-SHA256(key, label 0x00 canonical)[:16])."""
    return hmac.new(key, label + b"\x00" + canonical(doc), hashlib.sha256).digest()[:16].hex()


def report(reader_id, key, counter, at, kind, value, direction="in"):
    """A signed report as the bridge publishes it (bytes)."""
    doc = {"reader": reader_id, "counter": counter, "at": int(at), "kind": kind,
           "value": value, "direction": direction}
    doc["mac"] = sign(key, REPORT_LABEL, doc)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _whole(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_answer(key, reader_id, payload, pending, last_counter, now):
    """The hub's command -> its dict, if the reader acts on it; else
    AnswerIgnored(reason). `pending` is the counter of the report awaiting
    an answer (None: none is), `last_counter` the counter of the last
    command taken, `now` the reader's clock."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise AnswerIgnored("malformed")
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnswerIgnored("malformed") from exc
    if not isinstance(doc, dict) or set(doc) != COMMAND_KEYS or not isinstance(doc["mac"], str):
        raise AnswerIgnored("malformed")
    if not hmac.compare_digest(doc["mac"].encode(), sign(key, COMMAND_LABEL, doc).encode()):
        raise AnswerIgnored("forged")
    if not (_whole(doc["counter"]) and _whole(doc["ref"]) and _whole(doc["valid_s"])
            and (_whole(doc["at"]) or isinstance(doc["at"], float))
            and isinstance(doc["open"], bool) and isinstance(doc["reason"], str)
            and 0 < doc["valid_s"] <= MAX_VALID_S):
        raise AnswerIgnored("malformed")
    if doc["reader"] != reader_id:
        raise AnswerIgnored("mismatched")  # signed for another reader with our key: not ours
    if doc["counter"] <= last_counter:
        raise AnswerIgnored("replayed")
    if pending is None or doc["ref"] != pending:
        raise AnswerIgnored("mismatched")
    if now > doc["at"] + doc["valid_s"] or doc["at"] > now + MAX_AHEAD_S:
        raise AnswerIgnored("stale")
    return doc


class ReaderPeer:
    """One simulated reader on the site broker. `start` (blocking: call it in
    a thread) connects and subscribes; `send` publishes a report; answers
    are checked on the loop, where `answers` (taken, with the time) and
    `ignored` (by reason) grow and `changed` is set."""

    def __init__(self, reader, site_id, clock, host, port, login):
        import paho.mqtt.client as paho
        self.reader, self.site_id, self.clock = reader, site_id, clock
        self.id = reader.id
        self.counter = 0           # of the last report this reader sent
        self.pending = None        # the report awaiting its answer
        self.last_command = 0      # counter of the last command taken
        self.last_report = None    # its bytes (a replay re-sends them)
        self.directions = {}       # report counter -> its direction (the answer omits it)
        self.last_command_payload = None
        self.answers = []          # (time, command dict) taken
        self.ignored = {}          # reason -> count
        self.changed = asyncio.Event()
        self._loop = None
        self._host, self._port = host, port
        self._subscribed = threading.Event()
        self._c = paho.Client(paho.CallbackAPIVersion.VERSION2,
                              client_id="anju-sim-reader-" + self.id)
        if login:
            self._c.username_pw_set(login["username"], login["password"])
        self._c.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self._c.on_connect = lambda c, u, f, rc, p: (
            None if rc.is_failure else c.subscribe(self.cmd_topic, qos=1))
        self._c.on_subscribe = lambda c, u, m, rcs, p: (
            None if any(r.is_failure for r in rcs) else self._subscribed.set())
        self._c.on_message = self._on_message

    @property
    def report_topic(self):
        return "anju/%s/%s/visitor" % (self.site_id, self.id)

    @property
    def cmd_topic(self):
        return "anju/%s/%s/cmd" % (self.site_id, self.id)

    def start(self, loop):
        self._loop = loop
        self._c.connect(self._host, self._port)
        self._c.loop_start()
        if not self._subscribed.wait(CONNECT_TIMEOUT_S):
            self.stop()
            raise RuntimeError("reader %s could not subscribe to its cmd topic" % self.id)

    def stop(self):
        self._c.disconnect()
        self._c.loop_stop()

    def next_report(self, kind, value, direction="in"):
        """The next genuine report (bytes), counted and awaiting its answer."""
        self.counter += 1
        self.pending = self.counter
        self.directions[self.counter] = direction
        self.last_report = report(self.id, self.reader.key, self.counter, self.clock.now(),
                                  kind, value, direction)
        return self.last_report

    def forged_report(self, kind, value, direction="in"):
        """A report signed with a key that is not the reader's, with the
        counter the reader would use next (the reader's own count stays)."""
        return report(self.id, hashlib.sha256(b"not-the-reader-key").digest(),
                      self.counter + 1, self.clock.now(), kind, value, direction)

    def stale_report(self, kind, value, behind_s):
        """A genuine report whose clock is `behind_s` behind (a reader whose
        clock drifted): it uses up a counter, and nothing waits for its answer."""
        self.counter += 1
        return report(self.id, self.reader.key, self.counter, self.clock.now() - behind_s,
                      kind, value)

    def publish(self, payload):
        """QoS 1, waits (bounded) for the broker's PUBACK; blocking: call it in a thread."""
        self._c.publish(self.report_topic, payload, qos=1).wait_for_publish(5)

    def _on_message(self, client, userdata, msg):
        try:
            self._loop.call_soon_threadsafe(self._take, bytes(msg.payload))
        except RuntimeError:
            pass  # the run's loop is closed: nobody waits for this answer

    def _take(self, payload):
        try:
            doc = check_answer(self.reader.key, self.id, payload, self.pending,
                               self.last_command, self.clock.now())
        except AnswerIgnored as exc:
            self.ignored[exc.reason] = self.ignored.get(exc.reason, 0) + 1
        else:
            self.last_command, self.pending = doc["counter"], None
            self.last_command_payload = payload
            self.answers.append((self.clock.now(), doc))
        self.changed.set()

    async def wait(self, condition, timeout):
        """Until `condition()` holds (checked on every answer and every 20 ms,
        for what the hub records without answering) or `timeout` real seconds
        pass; returns whether it held."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition():
            left = end - loop.time()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.02))
            except asyncio.TimeoutError:
                pass
        return True
