"""Simulated building-entrance lock: receives unlock commands over MQTT.

Behaves as the lock firmware must: subscribes to ``anju/<site>/<lock>/cmd``,
verifies the HMAC-SHA256 tag with its command key (constant time), checks that
the command is for this lock, not expired and not replayed, then "opens" for
``duration_s`` and publishes an ack on ``.../ack`` and its retained state on
``.../state``. Accepted and rejected commands are counted for tests.
The verification is written here independently of the hub's signer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

import paho.mqtt.client as mqtt

MAX_DURATION_S = 30
MAX_FUTURE_SKEW_S = 30.0


class EntranceLock:
    def __init__(self, host: str, port: int, site: str, device_id: str, key: bytes, clock):
        self.site, self.device_id, self._key, self.clock = site, device_id, key, clock
        self.host, self.port = host, port
        self.unlocks: list[dict] = []
        self.rejected: list[tuple[str, str]] = []   # (command id or "?", reason)
        self.unlocked_until = 0.0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{device_id}")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    @property
    def base(self) -> str:
        return f"anju/{self.site}/{self.device_id}"

    @property
    def unlock_count(self) -> int:
        with self._lock:
            return len(self.unlocks)

    def start(self, timeout_s: float = 5.0) -> None:
        self.client.will_set(f"{self.base}/availability", "offline", qos=1, retain=True)
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout_s):
            raise TimeoutError(f"entrance lock {self.device_id}: not subscribed within {timeout_s} s")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe(f"{self.base}/cmd", qos=1)
        client.publish(f"{self.base}/availability", "online", qos=1, retain=True)

    def _check(self, cmd: dict) -> str | None:
        tag = cmd.get("tag")
        fields = {k: v for k, v in cmd.items() if k != "tag"}
        body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        expected = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        if not isinstance(tag, str) or not hmac.compare_digest(tag, expected):
            return "bad_tag"
        if cmd.get("v") != 1 or cmd.get("cmd") != "unlock":
            return "unsupported"
        if cmd.get("lock") != self.device_id or cmd.get("site") != self.site:
            return "wrong_lock"
        now = self.clock.now()
        if now > float(cmd.get("expires_at", 0)):
            return "expired"
        if float(cmd.get("issued_at", 0)) > now + MAX_FUTURE_SKEW_S:
            return "from_future"
        if cmd.get("id") in self._seen:
            return "replayed"
        if not 0 < int(cmd.get("duration_s", 0)) <= MAX_DURATION_S:
            return "bad_duration"
        return None

    def _on_message(self, client, userdata, msg):
        try:
            cmd = json.loads(msg.payload)
            if not isinstance(cmd, dict):
                raise ValueError("not an object")
            reason = self._check(cmd)
        except (ValueError, TypeError) as exc:
            cmd, reason = {}, f"malformed: {exc}"
        cmd_id = str(cmd.get("id", "?"))
        with self._lock:
            if reason is None:
                self._seen.add(cmd_id)
                self.unlocks.append(cmd)
                self.unlocked_until = self.clock.now() + int(cmd["duration_s"])
            else:
                self.rejected.append((cmd_id, reason))
        ack = {"id": cmd_id, "result": "ok" if reason is None else "rejected", "reason": reason}
        client.publish(f"{self.base}/ack", json.dumps(ack), qos=1)
        if reason is None:
            client.publish(f"{self.base}/state", json.dumps({"lock": "unlocked", "until": self.unlocked_until}),
                           qos=1, retain=True)
