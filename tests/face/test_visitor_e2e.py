"""A visitor's face end to end through the real hub: registered over the
resident API with a photo, approved by the office over HTTP, then the
entrance camera (image folder) sees her and the simulated entrance lock
opens; after the window the same face opens nothing and her enrolment is
gone. Real models, two real Mosquitto brokers, the hub's HTTP API, store and
gallery; the hub's clock is injected (wall time plus an offset the test
moves), so "after the window" needs no waiting."""

import asyncio
import base64
import http.client
import json
import shutil
import time

import pytest

from hub.config import site as config
from hub.face.gallery import Gallery
from hub.registry import kek
from hub.service import HubService
from simulator.entrance_lock import EntranceLock
from tests.authkit import bearer
from tests.facedata import MODELS

SITE, LOCK, ENTRANCE = "garden-court", "b1-main-lock", "b1-main"
KEY = bytes(range(32))
VISITOR = "obama"  # photos the entrance camera's short-range detector finds
GOOD_ID = "11010519491231002X"

pytestmark = pytest.mark.broker

SITE_YAML = """
site: {id: %(site)s, name: Garden Court}
hub: {kek_file: "%(kek)s"}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents: [{id: r-101, name: Resident}]
visitors: {}
face:
  models_dir: "%(models)s"
  embedding_model: "%(models)s/mobilefacenet_batch1.tflite"
  gallery: "%(gallery)s"
  snapshots: "%(snap)s"
  entrances:
    - id: %(entrance)s
      building: b1
      camera: "folder:%(camera)s"
      lock: %(lock)s
      lock_key_hex: "%(key)s"
      fps: 10
"""


class OffsetClock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self):
        self.offset = 0.0

    def now(self):
        return time.time() + self.offset

    async def sleep_until(self, deadline):
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(min(delay, 0.5))  # re-read the clock: it may have moved


def call(hub, method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    h = dict(headers)
    if data is not None:
        h["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", hub.http.port, timeout=30)
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


async def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_a_visitors_face_opens_the_entrance_only_inside_the_window(
        tmp_path, make_broker, face_data, photos):
    site_broker, upstream = make_broker("site"), make_broker("upstream")
    lock = EntranceLock(site_broker.host, site_broker.port, SITE, LOCK, KEY, OffsetClock())
    lock.start()
    kek_file = kek.create(tmp_path / "kek")
    clock = OffsetClock()
    runs = iter(range(10))

    async def hub_seeing(files):
        camera = tmp_path / ("camera-%d" % next(runs))
        camera.mkdir()
        for n, src in enumerate(files):
            shutil.copyfile(src, camera / f"{n:03d}{src.suffix}")
        path = tmp_path / "site.yaml"
        path.write_text(SITE_YAML % {
            "site": SITE, "models": MODELS, "gallery": tmp_path / "gallery.db",
            "snap": tmp_path / "snap", "entrance": ENTRANCE, "camera": camera, "lock": LOCK,
            "key": KEY.hex(), "kek": kek_file})
        hub = HubService(config.load_site(path), tmp_path / "hub.db", clock,
                         {"host": site_broker.host, "port": site_broker.port},
                         {"host": upstream.host, "port": upstream.port}, http={"port": 0})
        await hub.start(connect_timeout=10)
        return hub

    visitor = photos[VISITOR]
    try:
        # 1. the camera sees nobody known; the resident registers, the office approves
        hub = await hub_seeing([photos["biden"][0]])
        try:
            staff = bearer(hub, "staff")
            status, doc = await asyncio.to_thread(call, hub, "POST",
                                                  "/api/visitors/resident-tokens",
                                                  {"flat": "b1-101"}, staff)
            resident = {"Authorization": "Bearer " + doc["token"]}
            now = clock.now()
            status, visit = await asyncio.to_thread(call, hub, "POST", "/api/resident/visits", {
                "flat": "b1-101", "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
                "purpose": "探亲", "valid_from": now, "valid_until": now + 600,
                "entry": "repeated", "entrances": [ENTRANCE],
                "photo": base64.b64encode(visitor[0].read_bytes()).decode()}, resident)
            assert status == 201 and visit["face"] == {"enrolled": True}, visit
            status, visit = await asyncio.to_thread(
                call, hub, "POST", "/api/visitors/visits/%s/approve" % visit["id"], {}, staff)
            assert status == 200 and visit["state"] == "approved"
            await asyncio.wait_for(asyncio.gather(*hub.face.tasks), 60)
        finally:
            await hub.stop()
        person = "visitor-" + visit["id"]

        # 2. inside the window the camera sees her: the entrance opens for her
        hub = await hub_seeing(visitor[1:3] * 3)
        try:
            await asyncio.wait_for(asyncio.gather(*hub.face.tasks), 60)
            assert await wait_until(lambda: lock.unlock_count >= 1)
            assert lock.unlocks[0]["resident"] == person
        finally:
            await hub.stop()
        opened = lock.unlock_count

        # 3. after the window: the same face opens nothing, and she is gone
        clock.offset = 601
        hub = await hub_seeing(visitor[1:3] * 3)
        try:
            await asyncio.wait_for(asyncio.gather(*hub.face.tasks), 60)
            assert await wait_until(lambda: hub.visitors.book.show(visit["id"])["state"]
                                    == "expired")
        finally:
            await hub.stop()
        await asyncio.sleep(0.3)  # an unlock command, had one been sent, would be in by now
        assert lock.unlock_count == opened
        gallery = Gallery(tmp_path / "gallery.db")
        try:
            assert gallery.get(person) is None
        finally:
            gallery.close()
    finally:
        lock.stop()
