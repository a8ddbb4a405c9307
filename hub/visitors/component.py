"""The visitor service inside the hub (a component, hub/components.py): the
visit book on the hub's store, its clock task (expiry, overstay notices,
purge), the gate readers and vehicle barriers on the site broker
(hub/visitors/readers.py), and its HTTP routes (hub/visitors/routes.py,
mounted by HubService when the HTTP API runs).

Enabled by the site file's `visitors:` section; needs the KEK
(`hub.kek_file`, default /etc/anju/kek) to seal the visitors' personal data.
"""
import asyncio
import logging

from hub.registry import kek as kek_mod
from hub.visitors import pii
from hub.visitors.book import VisitorBook

log = logging.getLogger("anju.hub.visitors")


def _face_watch(hub):
    """photo bytes -> the watch-list person id its face matches, or None; runs
    in the HTTP server's executor (the face models are CPU-bound)."""
    face = getattr(hub, "face", None)
    if face is None:
        return None
    from hub.face import api

    def check(photo):
        status, body = api.identify(face.pipeline, face.gallery, {"photo": photo},
                                    face.match_threshold)
        if status != 200:
            from hub.visitors import VisitInvalid
            exc = VisitInvalid("photo", body.get("detail") or body.get("error", "not usable"))
            # the face pipeline's refusal code (docs/face_access.md), which the console translates
            exc.reason = "bad_image" if body.get("error") == "bad_image" else body.get("reason")
            raise exc
        return body["watch"]["id"]
    return check


class VisitorService:
    def __init__(self, hub, kek=None):
        self.hub = hub
        site = hub.site
        self.settings = site.visitors
        if kek is None:
            # the registry's KEK when the hub runs in registry mode (`--kek` wins
            # there), else the site file's hub.kek_file, else the default
            path = (getattr(getattr(hub, "registry", None), "kek_file", None)
                    or (site.hub or {}).get("kek_file") or kek_mod.DEFAULT_KEK_FILE)
            kek = kek_mod.load(path)
        prefix = hub.pipeline.alarm_topic.rsplit("/", 2)[0]
        self.book = VisitorBook(hub.store, site, self.settings,
                                pii.VisitorKeys(kek, site.site_id), hub.pipeline.book,
                                hub.clock, upstream_prefix=prefix,
                                full_id_targets=self.settings.full_id_targets)
        # the one place a revoked pass's lock codes leave the hub: the lock's
        # revocation command, when this hub has it
        self.book.revoke_lock_code = getattr(hub, "revoke_visitor_code", None)
        # a lock that opened for a visitor code: the visit's entry, with the frame
        hub.pipeline.on_visitor_entry = self.book.record_lock_entry
        if getattr(hub, "_face_cfg", None) is not None:
            # a visitor's face matches only inside an approved window
            self.book.on_approved = self._face_window
            self.book.on_closed = self._face_delete
        self.readers = None
        self._task = None
        self._changed = asyncio.Event()
        hub.visitors = self

    def reload_site(self, site):
        """The registry changed the site (HubService.reload_site, loop thread):
        new flats, entrances and locks count from the next call on."""
        self.book.site = site
        if site.visitors is not None:
            self.settings = self.book.settings = site.visitors

    @property
    def face_watch(self):
        return _face_watch(self.hub)

    # ---- the visitor's face (face access, docs/face_access.md) -------------------
    @staticmethod
    def face_id(visit_id):
        return "visitor-" + visit_id

    def enrol_face(self, visit, photo):
        """Enrol a registered visitor's face (executor: the models are CPU-bound),
        matching nowhere until the visit is approved. Returns {"enrolled", "reason"?}."""
        face = getattr(self.hub, "face", None)
        if face is None or visit["state"] not in ("requested", "approved"):
            return {"enrolled": False, "reason": "not_enrolled"}
        from hub.face import api
        status, body = api.enroll(face.pipeline, face.gallery, {
            "id": self.face_id(visit["id"]), "name": "访客 " + visit["name"], "list": "resident",
            "entrances": visit["entrances"], "schedule": [{"from": 0, "until": 0}],
            "replace": True, "photos": [photo]}, self.hub.clock.now())
        if status != 201:
            return {"enrolled": False, "reason": body.get("reason") or body.get("error")}
        if visit["state"] == "approved":
            self._face_window(visit)
        return {"enrolled": True}

    def _face_window(self, visit):
        face = getattr(self.hub, "face", None)
        pid = self.face_id(visit["id"])
        if face is None or face.gallery is None:
            return
        person = face.gallery.get(pid)
        if person is not None:
            face.gallery.upsert_person(pid, person.name, "resident", visit["entrances"],
                                       [{"from": visit["valid_from"],
                                         "until": visit["valid_until"]}],
                                       now=self.hub.clock.now())

    def _face_delete(self, visit_id):
        face = getattr(self.hub, "face", None)
        if face is not None and face.gallery is not None:
            face.gallery.delete(self.face_id(visit_id))

    def changed(self):
        """A visit changed (loop thread): deadlines may have moved, the outbox grown."""
        self._changed.set()
        self.hub.notify_outbox()

    async def start(self):
        self.book.send_code_revocations()  # any a stopped hub left pending
        self._task = asyncio.create_task(self._clock_loop(), name="visitors")
        if self.settings.readers:
            from hub.visitors.readers import ReaderLink
            self.readers = ReaderLink(self.hub, self)
            await self.readers.start()

    async def stop(self):
        if self.readers is not None:
            await self.readers.stop()
            self.readers = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def idle(self):
        deadline = self.book.next_deadline()
        return not self._changed.is_set() and (deadline is None
                                               or deadline > self.hub.clock.now())

    async def _clock_loop(self):
        while True:
            done = self.book.tick()
            if done["overstay"] or done["expired"]:
                self.hub.notify_outbox()
            self._changed.clear()
            deadline = self.book.next_deadline()
            waiters = [asyncio.ensure_future(self._changed.wait())]
            if deadline is not None:
                waiters.append(asyncio.ensure_future(self.hub.clock.sleep_until(deadline)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
