"""HTTP routes behind `anju fleet` (docs/http_api.md "Fleet and OTA"),
mounted on the hub's `HubApi` when the site has `hub.ota`.

    GET  /api/fleet[?release=ID]  what every MQTT device runs, its target and
                                  progress; with a release, which are behind it
    GET  /api/ota/releases        the releases published to this hub
    POST /api/ota/releases        publish a release ({"manifest", "files"},
                                  base64): 201 once its signature and files
                                  checked out with the site's release key
    POST /api/ota/updates         {"release", "devices", "window"}: target devices
    POST /api/ota/withdrawals     {"devices"}: stop their updates under way

Changes need `ota.update` (admin, installer); reads `devices.read`. Bad input
is a 400 naming the field, and changes nothing.
"""
from hub.ota import OtaError, plan
from hub.web.http import EXECUTOR, HttpError, Route


def mount(api, hub):
    routes = FleetRoutes(hub)
    api.firmware = hub.ota.firmware  # the device API shows what each device runs
    api.routes.extend([
        Route("GET", r"^/api/fleet$", routes.fleet, "devices.read", EXECUTOR),
        Route("GET", r"^/api/ota/releases$", routes.releases, "devices.read", EXECUTOR),
        Route("POST", r"^/api/ota/releases$", routes.publish, "ota.update", EXECUTOR),
        Route("POST", r"^/api/ota/updates$", routes.update, "ota.update", EXECUTOR),
        Route("POST", r"^/api/ota/withdrawals$", routes.withdraw, "ota.update", EXECUTOR),
    ])
    return routes


def _version(text):
    return tuple(int(p) for p in text.split("."))


class FleetRoutes:
    def __init__(self, hub):
        self.hub = hub

    @property
    def ota(self):
        if self.hub.ota is None:
            raise HttpError(404, "not_configured", "this hub has no hub.ota section")
        return self.hub.ota

    def fleet(self, req):
        rid = req.arg("release")
        rel = None
        if rid:
            rel = self.ota.book.release(rid)
            if rel is None:
                raise HttpError(400, "bad_request", "release: no published release %r" % rid)
        devices = self.ota.status()
        for d in devices:
            if rel is not None:
                fw = d["firmware"]
                d["behind"] = None if fw is None or d["kind"] != rel.app else \
                    _version(fw["version"]) < _version(rel.version)
        return 200, {"devices": devices,
                     "release": None if rel is None else {"id": rel.id, "app": rel.app,
                                                          "version": rel.version}}

    def releases(self, req):
        return 200, {"releases": self.ota.book.releases()}

    def publish(self, req):
        try:
            return 201, self.ota.publish_release(req.json())
        except OtaError as exc:
            raise HttpError(400, "bad_request", str(exc)) from exc

    def update(self, req):
        doc = req.json()
        try:
            plan.parse_window(doc.get("window"))
            return 202, self.ota.update(doc.get("release"), doc.get("devices"), doc.get("window"))
        except OtaError as exc:
            raise HttpError(400, "bad_request", str(exc)) from exc

    def withdraw(self, req):
        doc = req.json()
        try:
            return 200, self.ota.withdraw(doc.get("devices"), req.account or "local")
        except OtaError as exc:
            raise HttpError(400, "bad_request", str(exc)) from exc
