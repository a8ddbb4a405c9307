"""The QR code of a visitor's pass as an image for the console
(docs/console.md, "Visitors"): `GET /api/visitors/visits/<id>/pass/qr.svg`,
mounted by HubService beside the visitor routes when `visitors:` is enabled.

The picture is the pass's own QR token (hub/visitors/qr.py), read from the
visit book exactly as `GET /api/visitors/visits/<id>/pass` reads it, under
the same permission (`visitors.register`), and drawn with segno (pinned in
requirements.txt) at error correction level M, as docs/visitors.md sizes it.
Rendering in the hub keeps the console free of third-party scripts (its
files are the repository's own, no npm, no build step). The image is never
cached (`Cache-Control: no-store`): a revoked pass must not be shown again.
`svg()` is pure; the route only reads.
"""
import io

import segno

from hub.console.files import HEADERS
from hub.visitors.routes import VisitorRoutes
from hub.web.http import EXECUTOR, RawBody, Route

SVG_TYPE = "image/svg+xml"
_ID = r"(?P<id>[0-9a-f]{32})"   # a visit id, as hub/visitors/routes.py matches it


def svg(token, scale=4):
    """The QR code of `token` as SVG bytes: level M, as small a version as fits,
    a four-module quiet zone, black on white."""
    code = segno.make_qr(token, error="m", boost_error=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=scale, border=4, dark="#000", light="#fff",
              xmldecl=False, svgns=True, title=None)
    return out.getvalue()


def mount(api, hub):
    routes = VisitorRoutes(hub, api.bridge)

    def qr_image(req):
        _, doc = routes.pass_(req)   # the pass route itself: its checks, its errors
        headers = dict(HEADERS, **{"Cache-Control": "no-store"})
        return 200, RawBody(SVG_TYPE, svg(doc["qr"]), headers=headers)

    api.routes.append(Route("GET", r"^/api/visitors/visits/%s/pass/qr\.svg$" % _ID, qr_image,
                            "visitors.register", EXECUTOR))
