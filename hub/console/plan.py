"""The site plan and the responders for the console (docs/console.md, "The plan").

    GET  /api/site/plan                  site.read   buildings (outlines), floors and flats,
                                                     the layers' flags, devices and their
                                                     state, open alarms, responders
    GET  /api/site/plan-image            site.read   the uploaded plan image (404 without)
    POST /api/site/plan-image            site.plan   a PNG or JPEG body (admin only)
    GET  /api/responders                 site.read   responders and their latest position
    POST /api/responders/<id>/position   responders.report   {x, y, on_duty?} in plan units
    GET  /api/alarms/<id>/responders     alarms.read responders on duty, nearest first

`plan_doc` is a pure function of the site, the devices' reported state, the
open alarms and the responders; the routes read those from the store (on
the hub's loop) and hand them to it. Residents' names and responders' names
are given only to roles that may see them (`residents.read`, `alarms.act`);
the rental and living-alone flags of a flat, which the layers need, to every
role with `site.read`.

The plan image is stored as one file in the hub's data folder (beside the
store), written to a temporary file and renamed, and checked first: a PNG or
JPEG by its first bytes and its Content-Type, at most `MAX_IMAGE_BYTES`.
"""
import os
from pathlib import Path

from hub.config import plan as site_plan
from hub.responders import board as responders
from hub.web.http import EXECUTOR, LOOP, HttpError, RawBody, Route

MAX_IMAGE_BYTES = 4 * 1024 * 1024
IMAGE_TYPES = {"image/png": (b"\x89PNG\r\n\x1a\n", ".png"), "image/jpeg": (b"\xff\xd8\xff", ".jpg")}
OFFLINE_GRACE = 2.5  # heartbeats of silence before a device shows as offline (the offline rule's default)
CLOSED = ("resolved", "cancelled", "false_alarm")


def device_status(last_seen, heartbeat_s, now, grace=OFFLINE_GRACE):
    """"online", "offline" (silent for longer than `grace` heartbeats) or "unknown"
    (never heard from)."""
    if last_seen is None:
        return "unknown"
    return "online" if now - last_seen <= heartbeat_s * grace else "offline"


def outlines(site):
    """{building: [(x, y), ...]} and whether any was laid out automatically."""
    size = site.plan_size or site_plan.PLAN_SIZE
    missing = [b for b in site.buildings if b not in site.outlines]
    auto = site_plan.grid_layout(missing, size) if missing else {}
    return {b: site.outlines.get(b) or auto[b] for b in site.buildings}, bool(missing)


def visible_responder(doc, principal):
    """A responder's document as `principal` may see it: the name only for roles
    that dispatch (alarms.act) or see residents."""
    if principal.may("alarms.act") or principal.may("residents.read"):
        return doc
    return dict(doc, name=None)


def plan_doc(site, states, open_alarms, responder_docs, now, see_names, has_image):
    """The plan as the console draws it. `states`: {device: reported state dict};
    `open_alarms`: alarm documents not closed. Pure."""
    shapes, auto = outlines(site)
    size = site.plan_size or site_plan.PLAN_SIZE
    by_flat, by_device, by_building = {}, {}, {}
    alarms = []
    for a in open_alarms:
        entry = {"id": a["id"], "type": a.get("type"), "state": a.get("state"),
                 "severity": a.get("severity"), "building": a.get("building"),
                 "flat": a.get("flat"), "device": a.get("device"), "entrance": a.get("entrance")}
        alarms.append(entry)
        if entry["flat"]:
            by_flat.setdefault(entry["flat"], []).append(a["id"])
        if entry["device"]:
            by_device.setdefault(entry["device"], []).append(a["id"])
        if entry["building"]:
            by_building.setdefault(entry["building"], []).append(a["id"])
    devices = []
    flat_devices = {}
    for d in sorted(site.devices.values(), key=lambda d: d.id):
        st = states.get(d.id) or {}
        building = site.flats[d.flat].building if d.flat in site.flats else None
        devices.append({"id": d.id, "kind": d.kind, "flat": d.flat, "entrance": d.entrance,
                        "building": building,
                        "status": device_status(st.get("last_seen"), d.heartbeat_s, now),
                        "last_seen": st.get("last_seen"),
                        "battery_percent": st.get("battery_percent"),
                        "battery_low": bool(st.get("battery_low")),
                        "tamper": bool(st.get("case_open")),
                        "alarms": by_device.get(d.id, [])})
        if d.flat:
            flat_devices.setdefault(d.flat, []).append(d.id)
    buildings = []
    for bid, name in site.buildings.items():
        floors = {}
        for f in site.flats.values():
            if f.building != bid:
                continue
            flat = {"id": f.id, "floor": f.floor,
                    "rental": any(r.role == "tenant" for r in f.residents),
                    "lives_alone": f.lives_alone,
                    "devices": flat_devices.get(f.id, []),
                    "alarms": by_flat.get(f.id, [])}
            if see_names:
                flat["residents"] = [{"id": r.id, "name": r.name, "role": r.role,
                                      "lives_alone": r.lives_alone} for r in f.residents]
            floors.setdefault(f.floor, []).append(flat)
        shape = shapes[bid]
        buildings.append({
            "id": bid, "name": name, "outline": [list(p) for p in shape],
            "centre": list(site_plan.centre(shape)), "auto": bid not in site.outlines,
            "alarms": by_building.get(bid, []),
            "floors": [{"floor": k, "flats": v} for k, v in
                       sorted(floors.items(), key=lambda kv: (kv[0] is None, kv[0] or 0),
                              reverse=False)]})
    return {"size": {"width": size[0], "height": size[1]}, "auto_layout": auto,
            "image": "/api/site/plan-image" if has_image else None,
            "buildings": buildings, "devices": devices, "alarms": alarms,
            "responders": responder_docs}


def check_image(content_type, data, limit=MAX_IMAGE_BYTES):
    """The file suffix for an acceptable plan image, else HttpError. Pure."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in IMAGE_TYPES:
        raise HttpError(415, "unsupported_media_type", "send the plan image as image/png or "
                        "image/jpeg; got %r" % (ctype or "no content type"))
    if not data:
        raise HttpError(400, "bad_request", "the body is empty")
    if len(data) > limit:
        raise HttpError(413, "payload_too_large", "a plan image is at most %d bytes" % limit)
    magic, suffix = IMAGE_TYPES[ctype]
    if not data.startswith(magic):
        raise HttpError(400, "bad_image", "the body is not a %s file" % ctype)
    return suffix


def alarm_point(site, alarm):
    """Where an alarm is on the plan: its building's centre, or None."""
    bid = alarm.get("building")
    if bid is None and alarm.get("flat") in site.flats:
        bid = site.flats[alarm["flat"]].building
    if bid not in site.buildings:
        return None
    return site_plan.centre(outlines(site)[0][bid])


class PlanRoutes:
    def __init__(self, hub, data_dir):
        self.hub = hub
        self.board = responders.board_for(hub)
        self.folder = Path(data_dir)

    def _image(self):
        for ctype, (_, suffix) in IMAGE_TYPES.items():
            path = self.folder / ("plan-image" + suffix)
            if path.is_file():
                return path, ctype
        return None, None

    def _responders(self, principal):
        return [visible_responder(d, principal) for d in self.board.docs()]

    def plan(self, req):
        store, site = self.hub.store, self.hub.site
        states = {d: store.device_state(d) for d in site.devices}
        open_alarms = [a for a in store.alarms() if a.get("state") not in CLOSED]
        return 200, plan_doc(site, states, open_alarms, self._responders(req.principal),
                             self.hub.clock.now(), req.principal.may("residents.read"),
                             self._image()[0] is not None)

    def image(self, req):
        path, ctype = self._image()
        if path is None:
            raise HttpError(404, "no_plan_image", "no plan image has been uploaded")
        return 200, RawBody(ctype, path.read_bytes(), headers={"Cache-Control": "no-cache",
                                                               "X-Content-Type-Options": "nosniff"})

    def upload(self, req):
        suffix = check_image(req.headers.get("Content-Type"), req._body or b"")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / ("plan-image" + suffix)
        tmp = target.with_suffix(suffix + ".tmp")
        with open(tmp, "wb") as f:
            f.write(req._body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        for other in IMAGE_TYPES.values():  # one image: a JPEG replaces a PNG
            stale = self.folder / ("plan-image" + other[1])
            if stale != target and stale.exists():
                stale.unlink()
        return 201, {"image": "/api/site/plan-image", "bytes": len(req._body)}

    def list(self, req):
        return 200, {"responders": self._responders(req.principal)}

    def position(self, req):
        rid = req.params["id"]
        if req.principal.role == "responder" and req.account != rid:
            raise HttpError(403, "forbidden", "a responder reports only its own position")
        if len(req._body or b"") > responders.MAX_REPORT_BYTES:
            raise HttpError(413, "payload_too_large", "a position report is at most %d bytes"
                            % responders.MAX_REPORT_BYTES)
        doc = req.json()
        try:
            done = self.board.report(rid, doc, "http")
        except KeyError as exc:
            raise HttpError(404, "unknown_responder", "no responder %s in this site" % rid) from exc
        except responders.PositionInvalid as exc:
            raise HttpError(400, exc.reason, exc.detail) from exc
        return 200, {"responder": done}

    def nearest(self, req):
        alarm = self.hub.store.alarm(req.params["id"])
        if alarm is None:
            raise HttpError(404, "unknown_alarm", "no alarm %s" % req.params["id"])
        point = alarm_point(self.hub.site, alarm)
        if point is None:
            return 200, {"alarm_id": alarm["id"], "point": None, "responders": []}
        found = responders.nearest(self._responders(req.principal), point)
        return 200, {"alarm_id": alarm["id"], "point": list(point),
                     "responders": [dict(doc, distance=round(dist, 1)) for dist, doc in found]}


def mount(api, hub, data_dir):
    """Add the plan's and the responders' routes to `api`; returns the PlanRoutes."""
    routes = PlanRoutes(hub, data_dir)
    api.routes.extend([
        Route("GET", r"^/api/site/plan$", routes.plan, "site.read", LOOP),
        Route("GET", r"^/api/site/plan-image$", routes.image, "site.read", EXECUTOR),
        Route("POST", r"^/api/site/plan-image$", routes.upload, "site.plan", EXECUTOR),
        Route("GET", r"^/api/responders$", routes.list, "site.read", LOOP),
        Route("POST", r"^/api/responders/(?P<id>[^/]+)/position$", routes.position,
              "responders.report", LOOP),
    ])
    # before `/api/alarms/<id>` is not needed (that pattern ends at the id)
    api.routes.append(Route("GET", r"^/api/alarms/(?P<id>[^/]+)/responders$", routes.nearest,
                            "alarms.read", LOOP))
    return routes
