"""Upstream alarm documents (docs/protocol.md §4). Pure.

The id is generated once, when the alarm is raised, and stored with it; every
later copy or lifecycle update of the same alarm carries the same id.
"""
import datetime
import uuid

SCHEMA = "anju.alarm/1"
SEVERITY = {"inactivity": "high"}


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


def topic(prefix, site_id):
    return "%s/%s/alarms" % (prefix, site_id)


def generic(site, type, severity, location, detail, now, evidence=None, new_id=None):
    """An alarm that is not tied to a flat's sensors, e.g. a watch-listed face at
    an entrance. `location` names where it happened: `building`, `flat` (None
    for an entrance), `entrance`, `device`; missing keys are null. `detail` is
    the raising component's own record; `evidence` what a responder looks at
    first (a snapshot reference and a score, for a face)."""
    location = location or {}
    return {
        "schema": SCHEMA,
        "id": new_id or str(uuid.uuid4()),
        "seq": 1,
        "type": type,
        "severity": severity,
        "state": "raised",
        "site": site.site_id,
        "site_name": site.site_name,
        "building": location.get("building"),
        "flat": location.get("flat"),
        "entrance": location.get("entrance"),
        "device": location.get("device"),
        "resident": None,
        "raised_at": iso(now),
        "detail": detail,
        "evidence": evidence or {},
    }


def device_alarm(site, type, severity, device, detail, now, evidence=None):
    """An alarm about one configured device (tamper, offline, a door left open...),
    located at the device's flat (and building) or entrance."""
    flat = site.flats.get(device.flat) if device.flat else None
    location = {"building": flat.building if flat else None, "flat": device.flat,
                "entrance": getattr(device, "entrance", None), "device": device.id}
    return generic(site, type, severity, location, detail, now, evidence)


def inactivity(site, flat, resident, device_id, last_event, last_activity, now, new_id=None):
    doc = {
        "schema": SCHEMA,
        "id": new_id or str(uuid.uuid4()),
        "seq": 1,
        "type": "inactivity",
        "severity": SEVERITY["inactivity"],
        "state": "raised",
        "site": site.site_id,
        "site_name": site.site_name,
        "building": flat.building,
        "flat": flat.id,
        "device": device_id,
        "resident": resident.public() if resident else None,
        "raised_at": iso(now),
        "detail": {"silent_for_s": int(now - last_activity), "threshold_s": int(flat.inactivity_s),
                   "last_activity_at": iso(last_activity)},
        "last_event": None,
    }
    if last_event is not None:
        ev = {"type": last_event["type"], "device": last_event["device"],
              "counter": last_event["counter"], "at": iso(last_event["received_at"])}
        if last_event["type"] == "door":
            ev["state"] = "open" if last_event["values"].get("open") else "closed"
        doc["last_event"] = ev
    return doc
