"""The asyncio shell of face access: frames in, decisions carried out.

Inference runs in a worker thread (``run_in_executor``) with a timeout, so the
hub's event loop stays responsive. Decisions come from the pure
``access.decide``; this module only carries them out: the unlock command over
MQTT, access / visitor / denial events to the ``EventSink``, watch-list alarms
to the ``AlarmSink`` (the hub's outbox forwards them upstream). Every decision
is logged with its score and model versions. Lock keys are never logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import paho.mqtt.client as mqtt

from hub.face.access import AccessConfig, AccessState, Decision, PersonPolicy, decide
from hub.face.errors import FaceError
from hub.face.gallery import Gallery
from hub.face.images import encode_jpeg
from hub.face.pipeline import FacePipeline, FrameResult
from hub.face.unlock import ack_topic, build_unlock, cmd_topic

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """The real clock, for the shell that starts the service (tests inject their own)."""

    def now(self) -> float:
        return time.time()


class AlarmSink(Protocol):
    def raise_alarm(self, type: str, severity: str, location: dict, detail: dict) -> str: ...


class EventSink(Protocol):
    def record(self, kind: str, payload: dict) -> None: ...


@dataclass(frozen=True)
class EntranceConfig:
    site: str
    entrance: str
    lock_device: str
    lock_key: bytes | None = field(repr=False)  # per-lock command key (JSON locks); never logged
    building: str | None = None
    command_ttl_s: float = 10.0
    # a smart lock of the site: fn(lock, person_id) -> the LOCK_CTL's counter,
    # queued through the hub's lock book like every lock command (docs/smart_lock.md)
    lock_ctl: object = field(default=None, repr=False, compare=False)


class SnapshotStore:
    """JPEG snapshots on disk; the reference is the path relative to ``root``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def save(self, rgb: np.ndarray, now: float, box=None) -> str:
        day = time.strftime("%Y-%m-%d", time.gmtime(now))   # from the injected timestamp
        ref = f"{day}/{uuid.uuid4().hex}.jpg"
        path = self.root / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_jpeg(rgb))
        return ref


class LockPublisher:
    """paho-mqtt client (VERSION2 callbacks) publishing unlock commands with QoS 1."""

    def __init__(self, host: str, port: int, client_id: str, login=None):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if login is not None:
            login.apply(self.client)  # hub/ingest/login.py
        self._connected = threading.Event()
        self._ack_handlers: dict = {}
        self.client.on_connect = self._handle_connect
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self.client.on_message = self._handle_message
        self.host, self.port = host, port

    def _handle_connect(self, client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            for topic in self._ack_handlers:
                client.subscribe(topic, qos=1)
            self._connected.set()

    def _handle_message(self, client, userdata, msg):
        handler = self._ack_handlers.get(msg.topic)
        if handler is None:
            return
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            log.warning("face: malformed lock ack on %s", msg.topic)
            return
        handler(msg.topic, payload)

    def subscribe_acks(self, topic: str, handler):
        """Call ``handler(topic, payload)`` for each ack; returns the unsubscribe."""
        self._ack_handlers[topic] = handler
        if self._connected.is_set():
            self.client.subscribe(topic, qos=1)

        def unsubscribe():
            self._ack_handlers.pop(topic, None)
            self.client.unsubscribe(topic)
        return unsubscribe

    def start(self, timeout_s: float = 5.0) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout_s):
            log.warning("face: MQTT broker %s:%s not reachable yet; paho keeps retrying", self.host, self.port)

    def publish(self, topic: str, payload: dict, timeout_s: float) -> bool:
        info = self.client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as exc:
            log.warning("face: publish to %s failed: %s", topic, exc)
            return False
        return info.is_published()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class FaceAccessService:
    def __init__(self, pipeline: FacePipeline, gallery: Gallery, entrance: EntranceConfig, access: AccessConfig,
                 clock: Clock, publisher: LockPublisher, alarms: AlarmSink, events: EventSink,
                 snapshots: SnapshotStore, inference_timeout_s: float = 10.0, io_timeout_s: float = 5.0):
        self.pipeline, self.gallery, self.entrance, self.access = pipeline, gallery, entrance, access
        self.clock, self.publisher, self.alarms, self.events, self.snapshots = clock, publisher, alarms, events, snapshots
        self.inference_timeout_s, self.io_timeout_s = inference_timeout_s, io_timeout_s
        self.state = AccessState()
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="face-infer")
        self.io_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="face-io")
        self.stats = {"frames": 0, "skipped": {}, "decisions": {}}
        self._skip_logged: set = set()
        if entrance.lock_ctl is None:
            self._unsubscribe = publisher.subscribe_acks(ack_topic(entrance.site, entrance.lock_device),
                                                         self._on_ack)
        else:
            # a smart lock confirms with CMD_RESULT and logs the opening as ACCESS (hub/locks/)
            self._unsubscribe = lambda: None

    def close(self) -> None:
        self._unsubscribe()
        self.pool.shutdown(wait=True)
        self.io_pool.shutdown(wait=True)

    def _on_ack(self, topic: str, payload: dict) -> None:
        # Requested is not confirmed: the lock's ack is what says the door opened.
        self.events.record("face_unlock_ack", {"entrance": self.entrance.entrance, "ack": payload,
                                               "time": self.clock.now()})

    def _directory(self) -> dict[str, PersonPolicy]:
        return {p.id: PersonPolicy(tuple(p.entrances), tuple(p.schedule)) for p in self.gallery.list("resident")}

    async def _io(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self.io_pool, fn, *args), self.io_timeout_s)

    async def run(self, frames) -> None:
        async for rgb in frames:
            await self.handle_frame(rgb)

    async def handle_frame(self, rgb: np.ndarray) -> list[Decision]:
        loop = asyncio.get_running_loop()
        try:
            result: FrameResult = await asyncio.wait_for(
                loop.run_in_executor(self.pool, self.pipeline.process, rgb, self.gallery), self.inference_timeout_s)
        except asyncio.TimeoutError:
            log.error("face: inference exceeded %.1f s; frame dropped", self.inference_timeout_s)
            return []
        except FaceError as exc:
            log.error("face: frame failed: %s", exc)
            return []
        self.stats["frames"] += 1
        directory = await self._io(self._directory)
        now = self.clock.now()
        self.state, decisions = decide(self.state, self.entrance.entrance, result.faces, directory, now, self.access)
        for decision in decisions:
            await self._carry_out(decision, rgb, result, now)
        return decisions

    def _base(self, d: Decision, now: float) -> dict:
        return {"entrance": self.entrance.entrance, "site": self.entrance.site, "track": d.track_id,
                "person_id": d.person_id, "score": round(d.score, 4), "time": now,
                "models": self.pipeline.versions, "detail": d.detail}

    async def _carry_out(self, d: Decision, rgb: np.ndarray, result: FrameResult, now: float) -> None:
        counts = self.stats["decisions"]
        counts[d.kind] = counts.get(d.kind, 0) + 1
        payload = self._base(d, now)
        if d.kind == "skipped":
            self.stats["skipped"][d.reason] = self.stats["skipped"].get(d.reason, 0) + 1
            if (d.track_id, d.reason) in self._skip_logged:
                return
            self._skip_logged.add((d.track_id, d.reason))
            payload["reason"] = d.reason
            await self._io(self.events.record, "face_frame_skipped", payload)
            return
        log.info("face decision %s", json.dumps({"kind": d.kind, **payload, "reason": d.reason}, default=str))
        if d.kind == "unlock" and self.entrance.lock_ctl is not None:
            person = self.gallery.get(d.person_id)
            counter = await self._io(self.entrance.lock_ctl, self.entrance.lock_device, d.person_id)
            payload.update(name=person.name if person else None, command_counter=counter,
                           published=counter is not None)
            await self._io(self.events.record, "face_access", payload)
            return
        if d.kind == "unlock":
            person = self.gallery.get(d.person_id)
            command = build_unlock(command_id=uuid.uuid4().hex, site=self.entrance.site,
                                   lock=self.entrance.lock_device, entrance=self.entrance.entrance,
                                   resident=d.person_id, duration_s=self.access.unlock_duration_s, issued_at=now,
                                   ttl_s=self.entrance.command_ttl_s, score=d.score, key=self.entrance.lock_key)
            published = await self._io(self.publisher.publish,
                                       cmd_topic(self.entrance.site, self.entrance.lock_device),
                                       command, self.io_timeout_s - 0.5)
            payload.update(name=person.name if person else None, command_id=command["id"], published=published)
            await self._io(self.events.record, "face_access", payload)
            return
        if d.kind == "denied":
            payload["reason"] = d.reason
            await self._io(self.events.record, "face_access_denied", payload)
            return
        det = result.detections[d.face_index]
        payload["snapshot"] = await self._io(self.snapshots.save, rgb, now, det.box)
        if d.kind == "visitor_attempt":
            await self._io(self.events.record, "face_visitor_attempt", payload)
        elif d.kind == "watchlist_alarm":
            person = self.gallery.get(d.person_id)
            payload["name"] = person.name if person else None
            location = {"site": self.entrance.site, "building": self.entrance.building,
                        "entrance": self.entrance.entrance}
            payload["alarm_id"] = await self._io(self.alarms.raise_alarm, "watchlist_face", "high", location,
                                               dict(payload))
            await self._io(self.events.record, "face_watchlist", payload)
