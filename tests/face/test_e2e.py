"""End to end: image-folder camera -> face service -> simulated entrance lock / upstream alarm.

Real models, real Mosquitto brokers (local + "upstream"), the real lock simulator.
"""

import asyncio
import shutil
import time

import pytest

from hub.face import api
from hub.face.access import AccessConfig
from hub.face.gallery import Gallery
from hub.face.service import EntranceConfig, FaceAccessService, LockPublisher, SnapshotStore
from hub.face.sources import ImageFolderSource, SupervisedSource
from simulator.entrance_lock import EntranceLock
from tests.face.standins import RecordingEvents, Subscriber, UpstreamAlarmStandIn

SITE, LOCK, ENTRANCE = "garden-court", "b1-main-lock", "b1-main"
KEY = bytes(range(32))


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def camera_folder(tmp_path, name, files):
    folder = tmp_path / name
    folder.mkdir()
    for n, src in enumerate(files):
        shutil.copyfile(src, folder / f"{n:03d}{src.suffix}")
    return folder


@pytest.fixture
def site(tmp_path, mosquitto, door_pipeline, photos, clock, caplog):
    local, upstream = mosquitto("local"), mosquitto("upstream")
    lock = EntranceLock(*local, SITE, LOCK, KEY, clock)
    lock.start()
    alarms_seen = Subscriber(*upstream, f"anju-upstream/{SITE}/#")
    acks_seen = Subscriber(*local, f"anju/{SITE}/{LOCK}/ack")
    forwarder = UpstreamAlarmStandIn(*upstream, SITE)
    gallery = Gallery(tmp_path / "gallery.db")
    for pid, name, lst, photo in (("r-101", "Resident", "resident", photos["obama"][0]),
                                  ("w-7", "Watched", "watch", photos["paul_rudd"][0])):
        status, body = api.enroll(door_pipeline, gallery, {"id": pid, "name": name, "list": lst,
                                                           "photos": [photo.read_bytes()]}, clock.now())
        assert status == 201, body
    publisher = LockPublisher(*local, "face-hub-test")
    publisher.start()
    events = RecordingEvents()
    service = FaceAccessService(door_pipeline, gallery,
                                EntranceConfig(SITE, ENTRANCE, LOCK, KEY, building="b1"),
                                AccessConfig(), clock, publisher, forwarder, events, SnapshotStore(tmp_path / "snap"))
    yield {"service": service, "lock": lock, "alarms": alarms_seen, "acks": acks_seen, "events": events,
           "clock": clock, "snap": tmp_path / "snap"}
    service.close()
    for closer in (publisher.stop, forwarder.close, alarms_seen.close, acks_seen.close, lock.stop, gallery.close):
        closer()


async def show(site, folder, seconds_per_frame=0.2):
    reports = []
    source = SupervisedSource(lambda: ImageFolderSource(folder), lambda n, m: reports.append(m), max_failures=1)
    async for rgb in source.frames():
        site["clock"].advance(seconds_per_frame)
        await site["service"].handle_frame(rgb)
    site["clock"].advance(30)   # the person leaves; tracks expire
    return reports


pytestmark = pytest.mark.broker


def test_enrolled_resident_opens_the_door_once(site, tmp_path, photos, caplog):
    caplog.set_level("INFO")
    obama = photos["obama"]
    folder = camera_folder(tmp_path, "resident", [obama[1], obama[2], obama[1], obama[2], obama[1], obama[2]])
    asyncio.run(show(site, folder))
    assert wait_until(lambda: site["lock"].unlock_count >= 1)
    time.sleep(0.3)
    assert site["lock"].unlock_count == 1 and site["lock"].rejected == []
    cmd = site["lock"].unlocks[0]
    assert (cmd["resident"], cmd["entrance"], cmd["lock"]) == ("r-101", ENTRANCE, LOCK)
    access = site["events"].of("face_access")
    assert len(access) == 1 and access[0]["published"] and access[0]["score"] >= 0.4
    assert access[0]["models"]["embedding"].startswith("mobilefacenet_batch1.tflite@")
    assert wait_until(lambda: site["events"].of("face_unlock_ack"))
    assert site["events"].of("face_unlock_ack")[0]["ack"]["result"] == "ok"
    assert site["events"].of("face_visitor_attempt") == [] and site["alarms"].messages == []
    assert KEY.hex() not in caplog.text and "face decision" in caplog.text


def test_stranger_is_a_visitor_attempt_and_no_unlock(site, tmp_path, photos):
    folder = camera_folder(tmp_path, "stranger", [photos["biden"][0]] * 8)
    asyncio.run(show(site, folder))
    visits = site["events"].of("face_visitor_attempt")
    assert len(visits) == 1 and visits[0]["person_id"] is None
    assert (site["snap"] / visits[0]["snapshot"]).stat().st_size > 1000
    time.sleep(0.3)
    assert site["lock"].unlock_count == 0 and site["events"].of("face_access") == []


def test_watch_listed_face_raises_an_alarm_upstream_and_no_unlock(site, tmp_path, photos):
    folder = camera_folder(tmp_path, "watch", [photos["paul_rudd"][1]] * 5)
    asyncio.run(show(site, folder))
    assert wait_until(lambda: len(site["alarms"].messages) >= 1)
    time.sleep(0.3)
    assert len(site["alarms"].messages) == 1
    alarm = site["alarms"].messages[0][1]
    assert alarm["type"] == "watchlist_face" and alarm["location"]["entrance"] == ENTRANCE
    assert alarm["detail"]["person_id"] == "w-7" and alarm["detail"]["score"] >= 0.4
    assert (site["snap"] / alarm["detail"]["snapshot"]).is_file()
    assert site["lock"].unlock_count == 0 and site["events"].of("face_access") == []


def test_a_still_photo_of_the_resident_does_not_open(site, tmp_path, photos):
    folder = camera_folder(tmp_path, "still", [photos["obama"][1]] * 6)
    asyncio.run(show(site, folder))
    denied = site["events"].of("face_access_denied")
    assert [d["reason"] for d in denied] == ["liveness_no_motion"]
    time.sleep(0.3)
    assert site["lock"].unlock_count == 0


def test_lock_rejects_forged_expired_and_replayed_commands(site, mosquitto):
    from hub.face.unlock import build_unlock, cmd_topic
    lock, clock = site["lock"], site["clock"]
    pub = site["service"].publisher
    good = build_unlock(command_id="c1", site=SITE, lock=LOCK, entrance=ENTRANCE, resident="r-101", duration_s=5,
                        issued_at=clock.now(), ttl_s=10, score=0.9, key=KEY)
    forged = build_unlock(command_id="c2", site=SITE, lock=LOCK, entrance=ENTRANCE, resident="r-101", duration_s=5,
                          issued_at=clock.now(), ttl_s=10, score=0.9, key=b"\x01" * 32)
    expired = build_unlock(command_id="c3", site=SITE, lock=LOCK, entrance=ENTRANCE, resident="r-101", duration_s=5,
                           issued_at=clock.now() - 60, ttl_s=10, score=0.9, key=KEY)
    tampered = dict(good, id="c4", resident="r-999")
    for cmd in (good, good, forged, expired, tampered):
        assert pub.publish(cmd_topic(SITE, LOCK), cmd, 5)
    assert wait_until(lambda: len(lock.rejected) == 4)
    assert lock.unlock_count == 1
    assert sorted(r for _, r in lock.rejected) == ["bad_tag", "bad_tag", "expired", "replayed"]


def test_inference_does_not_block_the_event_loop(site, photos, face_data):
    from hub.face.images import load_image
    big = load_image(face_data / "images" / "compreface_person_a" / "002_A.jpg")   # 5184x3880

    async def main():
        gaps, last = [], time.perf_counter()

        async def ticker():
            nonlocal last
            while True:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
        task = asyncio.create_task(ticker())
        t = time.perf_counter()
        for _ in range(3):
            await site["service"].handle_frame(big)
        busy = time.perf_counter() - t
        task.cancel()
        return busy, gaps

    busy, gaps = asyncio.run(main())
    print(f"3 frames took {busy * 1e3:.0f} ms, longest loop gap {max(gaps) * 1e3:.1f} ms")
    assert busy / 3 > 0.06, "frames too cheap to show anything"
    assert len(gaps) > busy / 0.02 and max(gaps) < 0.05
