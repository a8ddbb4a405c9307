"""The console's files and the site facts its pages need; mounted on `HubApi`
by `mount(api, site)`.

`GET /` is the console's page and `GET /console/<path>` its other files, read
from `static/` (a name of letters, digits, `-`, `_`, `.` in folders of the
same; nothing outside it, no dot files, no `..`). They are open: the login
page must load before anyone has logged in, and they hold no data. Every
answer forbids framing and foreign scripts (Content-Security-Policy), so a
foreign page can neither embed the console nor run code inside it.

`GET /api/site` (site.read) gives the site's id, name and IANA time zone, in
which the pages show every time, whether the hub runs from the registry
(then the registry pages may change it) and, when the visitor service runs,
the entrances a visit may cover (`visitors`, else null).
"""
import re
from pathlib import Path

from hub.web.http import EXECUTOR, LOOP, HttpError, RawBody, Route

STATIC = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".json": "application/json; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_NAME = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def resolve(name, root=STATIC):
    """The file of `static/` a request names, or None (pure but for the file check)."""
    if not _NAME.match(name) or ".." in name.split("/") or len(name) > 200:
        return None
    path = (root / name).resolve()
    if root.resolve() not in path.parents or path.suffix not in TYPES or not path.is_file():
        return None
    return path


def _answer(path):
    return 200, RawBody(TYPES[path.suffix], path.read_bytes(), headers=HEADERS)


def mount(api, site, registry=False):
    """`site()` returns the running site configuration (it may be reloaded);
    `registry`: the hub runs in registry mode (its /api/registry routes exist)."""

    def index(req):
        return _answer(STATIC / INDEX)

    def console_file(req):
        path = resolve(req.params["path"])
        if path is None:
            raise HttpError(404, "not_found", "no console file %s" % req.params["path"][:100])
        return _answer(path)

    def site_info(req):
        cfg = site()
        doc = {"id": cfg.site_id, "name": cfg.site_name, "timezone": cfg.timezone,
               "registry": bool(registry), "visitors": None}
        if getattr(cfg, "visitors", None) is not None:
            from hub.visitors.book import entrances_of
            # a photo is taken at registration only where face access runs
            doc["visitors"] = {"entrances": sorted(entrances_of(cfg, cfg.visitors)),
                               "photo": getattr(cfg, "face", None) is not None}
        return 200, doc

    api.routes.extend([
        Route("GET", r"^/$", index, None, EXECUTOR),
        Route("GET", r"^/console/(?P<path>.+)$", console_file, None, EXECUTOR),
        Route("GET", r"^/api/site$", site_info, "site.read", LOOP),
    ])
