"""A face match at an entrance whose lock is a smart lock of the site: the
unlock is the hub's LOCK_CTL, queued through the lock book (hub/locks/) like
every lock command, naming the person the camera matched; no JSON command and
no per-lock key in the face section. The whole path through the lock firmware
runs in scenarios/lock_entrance_face.yaml."""
import asyncio

import pytest

from hub.face.access import Decision
from hub.face.config import load_face_config
from hub.face.errors import ConfigError
from hub.face.service import EntranceConfig, FaceAccessService
from tests.face.standins import RecordingEvents


class NoPublisher:
    def subscribe_acks(self, topic, fn):
        raise AssertionError("a smart lock answers with CMD_RESULT, not on an ack topic")

    def publish(self, *a):
        raise AssertionError("no JSON command for a smart lock")


class OneGallery:
    def get(self, person_id):
        return type("P", (), {"name": "Wang Lan"})()


class Clock:
    def now(self):
        return 1000.0


def test_an_entrance_without_a_lock_key_is_accepted_by_the_face_section():
    cfg = load_face_config({"entrances": [{"id": "b1-main", "camera": "folder:/x", "lock": "gate-b1"}]})
    assert cfg.entrances[0].lock_key is None


def test_an_entrance_without_a_key_needs_a_smart_lock():
    from hub.face.config import build_services
    cfg = load_face_config({"entrances": [{"id": "b1-main", "camera": "folder:/x", "lock": "gate-b1"}]})
    with pytest.raises(ConfigError, match="not a smart lock of the site"):
        build_services(cfg, "garden", Clock(), None, RecordingEvents(), NoPublisher(), print)


def test_a_match_queues_the_hubs_lock_ctl_for_the_person():
    calls = []
    events = RecordingEvents()

    def lock_ctl(lock, person):
        calls.append((lock, person))
        return 4711

    entrance = EntranceConfig("garden", "b1-main", "gate-b1", None, "b1", lock_ctl=lock_ctl)
    service = FaceAccessService(pipeline=type("P", (), {"versions": {}})(), gallery=OneGallery(),
                                entrance=entrance, access=None, clock=Clock(), publisher=NoPublisher(),
                                alarms=None, events=events, snapshots=None)
    try:
        d = Decision("unlock", "b1-main", "t1", "r-101", 0.8)
        asyncio.run(service._carry_out(d, None, None, 1000.0))
    finally:
        service.close()
    assert calls == [("gate-b1", "r-101")]
    [rec] = events.of("face_access")
    assert rec["command_counter"] == 4711 and rec["published"] and rec["name"] == "Wang Lan"
