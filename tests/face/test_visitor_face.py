"""A visitor's face, with the real face models and gallery: enrolled at
registration but matching nowhere until approved, then only at the covered
entrances inside the window, never after it, and gone when the pass is
revoked; a photo that matches the watch list flags the visit."""

from __future__ import annotations

import secrets
import types
from pathlib import Path

import pytest

from hub.face import api
from hub.face.access import AccessConfig, AccessState, FaceObservation, PersonPolicy, decide
from hub.face.gallery import Gallery
from hub.visitors.component import VisitorService
from hub.visitors import settings as vsettings
from tests.unit.ruleskit import T0, Hub

GOOD_ID = "11010519491231002X"
BOX = (100.0, 100.0, 200.0, 200.0)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


def directory(gallery: Gallery) -> dict:
    # what the face service builds before every frame (hub/face/service.py)
    return {p.id: PersonPolicy(tuple(p.entrances), tuple(p.schedule))
            for p in gallery.list("resident")}


def decision(gallery: Gallery, person: str, entrance: str, now: float) -> tuple:
    state, out = AccessState(), []
    cfg = AccessConfig(require_motion=False)
    for n in range(cfg.agree_frames):
        obs = FaceObservation(BOX, True, None, person, 0.8, None, -1.0, None)
        state, ds = decide(state, entrance, [obs], directory(gallery), now + n * 0.2, cfg)
        out += [d for d in ds if d.kind != "skipped"]
    return out[0].kind, out[0].reason


@pytest.fixture
def service(tmp_path: Path, pipeline):
    h = Hub(tmp_path / "hub.db")
    clock = Clock(T0)
    gallery = Gallery(tmp_path / "faces.db")
    hub = types.SimpleNamespace(
        site=h.pipeline.site, store=h.store, pipeline=h.pipeline, clock=clock,
        _face_cfg=object(), notify_outbox=lambda: None,
        face=types.SimpleNamespace(pipeline=pipeline, gallery=gallery, match_threshold=0.4))
        # face: the parts of FaceAccessHost the visitor service uses, the real ones
    h.pipeline.site.visitors = vsettings.parse({})
    svc = VisitorService(hub, kek=secrets.token_bytes(32))
    yield svc
    gallery.close()
    h.close()


def body(now: float) -> dict:
    return {"flat": "b1-101", "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
            "purpose": "探亲", "valid_from": now, "valid_until": now + 3600,
            "entrances": ["gate-north"], "entry": "repeated"}


def test_the_face_opens_only_inside_the_approved_window(service, photos) -> None:
    gallery, clock = service.hub.face.gallery, service.hub.clock
    identity = next(k for k, v in photos.items() if len(v) >= 2)
    first, second = (p.read_bytes() for p in photos[identity][:2])
    visit = service.book.register(body(clock.t), "c")
    assert service.enrol_face(visit, first) == {"enrolled": True}
    pid = service.face_id(visit["id"])
    # the camera recognises the visitor from another photo of her
    status, found = api.identify(service.hub.face.pipeline, gallery, {"photo": second}, 0.4)
    assert status == 200 and found["resident"]["id"] == pid
    assert decision(gallery, pid, "gate-north", clock.t) == ("denied", "outside_schedule")
    service.book.decide(visit["id"], "approve", "c")
    assert decision(gallery, pid, "gate-north", clock.t + 60) == ("unlock", None)
    assert decision(gallery, pid, "gate-east", clock.t + 60) == ("denied",
                                                                 "entrance_not_allowed")
    assert decision(gallery, pid, "gate-north", clock.t + 3600) == ("denied", "outside_schedule")
    service.book.decide(visit["id"], "revoke", "c")
    assert gallery.get(pid) is None


def test_expiry_removes_the_face(service, photos) -> None:
    gallery, clock = service.hub.face.gallery, service.hub.clock
    photo = next(iter(photos.values()))[0].read_bytes()
    visit = service.book.register(body(clock.t), "c")
    service.book.decide(visit["id"], "approve", "c")
    service.enrol_face(service.book.show(visit["id"]), photo)
    pid = service.face_id(visit["id"])
    assert gallery.get(pid).schedule == [{"from": visit["valid_from"],
                                          "until": visit["valid_until"]}]
    clock.t += 3600
    assert service.book.tick()["expired"] == 1
    assert gallery.get(pid) is None


def test_a_watch_listed_face_flags_the_visit(service, photos) -> None:
    gallery, clock = service.hub.face.gallery, service.hub.clock
    identity = next(k for k, v in photos.items() if len(v) >= 2)
    enrol, probe = (p.read_bytes() for p in photos[identity][:2])
    status, _ = api.enroll(service.hub.face.pipeline, gallery,
                           {"id": "w-1", "name": "watched", "list": "watch", "photos": [enrol]},
                           clock.t)
    assert status == 201
    hit = service.face_watch(probe)
    assert hit == "w-1"
    visit = service.book.register(body(clock.t), "c", face_hit=hit)
    assert visit["state"] == "flagged"
    assert service.enrol_face(visit, probe)["enrolled"] is False
