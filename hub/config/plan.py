"""The site plan and the responders of a site file (docs/console.md, "The plan").

    site:
      plan: {width: 1000, height: 600}          # the plan's coordinate space
    buildings:
      - id: b1
        plan: {x: 40, y: 60, w: 200, h: 120}    # a rectangle, or
        outline: [[40, 60], [240, 60], [240, 180], [40, 180]]   # a polygon (3+ points)
        flats:
          - {id: b1-101, floor: 1}              # floor: default from the id (101 -> 1)
    responders:
      - {id: p-zhang, name: 张警官, kind: police, on_duty: true}

Coordinates are plan units (x to the right, y down, 0..width, 0..height), the
same units responders report their position in. A site without `plan` data
gets an automatic grid layout (`grid_layout`), so older site files stay valid.
Errors name the file, line and key, like the rest of hub/config/site.py.
Pure functions; no I/O.
"""
import math
import re

from hub import ConfigError
from hub.config.values import refuse_unknown_keys

PLAN_SIZE = (1000, 600)          # the default coordinate space
MAX_PLAN = 100000
MAX_OUTLINE = 64
RESPONDER_KINDS = ("police", "auxiliary_police", "grid_worker", "volunteer")
RESPONDER_KEYS = ("id", "name", "kind", "on_duty", "phone")
PLAN_KEYS = ("width", "height")
RECT_KEYS = ("x", "y", "w", "h")
_FLOOR = re.compile(r"(\d+)(\d\d)$")
IDENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


class Responder:
    __slots__ = ("id", "name", "kind", "on_duty", "phone")

    def __init__(self, id, name, kind, on_duty=True, phone=""):
        self.id, self.name, self.kind, self.on_duty, self.phone = id, name, kind, on_duty, phone


def _where(node, key=None):
    return node.where(key) if hasattr(node, "where") else "<config>"


def _number(node, key, low, high):
    v = node.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or not low <= v <= high:
        raise ConfigError("%s: key '%s': expected a number %g..%g, got %r"
                          % (_where(node, key), key, low, high, v))
    return float(v)


def parse_site_plan(site_node):
    """`site.plan` -> (width, height), or None when the site has none."""
    if "plan" not in site_node:
        return None
    node = site_node["plan"]
    if not isinstance(node, dict):
        raise ConfigError("%s: key 'plan': expected a mapping {width, height}"
                          % _where(site_node, "plan"))
    refuse_unknown_keys(node, PLAN_KEYS, "in site.plan")
    for key in PLAN_KEYS:
        if key not in node:
            raise ConfigError("%s: site.plan: missing key '%s'" % (_where(node), key))
    return _number(node, "width", 1, MAX_PLAN), _number(node, "height", 1, MAX_PLAN)


def parse_building_shape(b, size):
    """A building's outline [(x, y), ...] from `plan` or `outline`, or None.
    `size` is the site's (width, height): every point must lie inside it."""
    if "plan" in b and "outline" in b:
        raise ConfigError("%s: key 'outline': give a building 'plan' (a rectangle) or an "
                          "'outline', not both" % _where(b, "outline"))
    width, height = size
    if "plan" in b:
        node = b["plan"]
        if not isinstance(node, dict):
            raise ConfigError("%s: key 'plan': expected a mapping {x, y, w, h}" % _where(b, "plan"))
        refuse_unknown_keys(node, RECT_KEYS, "in building plan")
        for key in RECT_KEYS:
            if key not in node:
                raise ConfigError("%s: building plan: missing key '%s'" % (_where(node), key))
        x, y = _number(node, "x", 0, width), _number(node, "y", 0, height)
        w, h = _number(node, "w", 1, width), _number(node, "h", 1, height)
        if x + w > width or y + h > height:
            raise ConfigError("%s: key 'plan': the rectangle reaches past the site plan "
                              "(%g x %g)" % (_where(b, "plan"), width, height))
        return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    if "outline" in b:
        pts = b["outline"]
        where = _where(b, "outline")
        if not isinstance(pts, list) or not 3 <= len(pts) <= MAX_OUTLINE:
            raise ConfigError("%s: key 'outline': expected a list of 3..%d points [x, y]"
                              % (where, MAX_OUTLINE))
        out = []
        for i, p in enumerate(pts):
            ok = (isinstance(p, list) and len(p) == 2
                  and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                          and math.isfinite(c) for c in p))
            if not ok or not (0 <= p[0] <= width and 0 <= p[1] <= height):
                raise ConfigError("%s: key 'outline': point %d %r must be [x, y] inside the "
                                  "site plan (0..%g, 0..%g)" % (where, i, p, width, height))
            out.append((float(p[0]), float(p[1])))
        return out
    return None


def parse_floor(f, flat_id):
    """A flat's floor: the `floor` key, else from its id (b1-1203 -> 12), else None."""
    if "floor" in f:
        v = f["floor"]
        if isinstance(v, bool) or not isinstance(v, int) or not -9 <= v <= 200:
            raise ConfigError("%s: key 'floor': expected an integer -9..200, got %r"
                              % (_where(f, "floor"), v))
        return v
    m = _FLOOR.search(flat_id)
    return int(m.group(1)) if m else None


def parse_responders(doc):
    """The site file's `responders:` list -> {id: Responder}."""
    out = {}
    items = doc.get("responders") or []
    if not isinstance(items, list):
        raise ConfigError("%s: key 'responders': expected a list" % _where(doc, "responders"))
    for r in items:
        if not isinstance(r, dict):
            raise ConfigError("%s: key 'responders': every entry must be a mapping"
                              % _where(doc, "responders"))
        refuse_unknown_keys(r, RESPONDER_KEYS, "in responder")
        rid = r.get("id")
        if not isinstance(rid, str) or not IDENT.match(rid):
            raise ConfigError("%s: key 'id': '%s' must match [a-z0-9][a-z0-9_-]{0,47}"
                              % (_where(r, "id"), rid))
        if rid in out:
            raise ConfigError("%s: duplicate responder id '%s'" % (_where(r, "id"), rid))
        kind = r.get("kind")
        if kind not in RESPONDER_KINDS:
            raise ConfigError("%s: key 'kind': '%s'; allowed: %s"
                              % (_where(r, "kind"), kind, ", ".join(RESPONDER_KINDS)))
        name = r.get("name", rid)
        on_duty = r.get("on_duty", True)
        if not isinstance(on_duty, bool):
            raise ConfigError("%s: key 'on_duty': expected true or false, got %r"
                              % (_where(r, "on_duty"), on_duty))
        out[rid] = Responder(rid, str(name), kind, on_duty, str(r.get("phone", "")))
    return out


def grid_layout(building_ids, size=PLAN_SIZE):
    """Outlines for buildings without one: a grid of equal blocks filling the plan."""
    n = len(building_ids)
    if n == 0:
        return {}
    cols = max(1, math.ceil(math.sqrt(n * size[0] / size[1])))
    rows = math.ceil(n / cols)
    cw, ch = size[0] / cols, size[1] / rows
    pad_x, pad_y = cw * 0.12, ch * 0.15
    out = {}
    for i, bid in enumerate(building_ids):
        x, y = (i % cols) * cw + pad_x, (i // cols) * ch + pad_y
        w, h = cw - 2 * pad_x, ch - 2 * pad_y
        out[bid] = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    return out


def centre(outline):
    """The mean of an outline's points (where the plan measures a building from)."""
    return (sum(p[0] for p in outline) / len(outline), sum(p[1] for p in outline) / len(outline))
