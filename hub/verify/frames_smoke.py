"""Smoke sensor message types (docs/protocol.md §1, 0x30-0x3F), registered
with hub.verify.frames on import. Pure decoders: a body in, values or None (out of
range, counted as bad_body) out."""
import struct

from hub.verify import frames

LEVELS = ("normal", "warning", "alarm")
CAUSES = ("chamber", "interconnect")
HUSH = ("refused", "muted", "ended")
FAULTS = {1: "chamber", 2: "contamination", 3: "end_of_service"}
FLAGS = (("alarm", 0x01), ("warning", 0x02), ("muted", 0x04), ("testing", 0x08),
         ("fault", 0x10), ("end_of_service", 0x20), ("battery_low", 0x40),
         ("interconnect", 0x80))


def _smoke(body):
    level, cause, net, threshold = struct.unpack(">BBHH", body)
    if level >= len(LEVELS) or cause >= len(CAUSES):
        return None
    return {"level": LEVELS[level], "cause": CAUSES[cause], "smoke": net, "threshold": threshold}


def _status(body):
    flags, pct, mv, contamination, sensitivity, queued = struct.unpack(">BBHBBH", body)
    if pct > 100 or contamination > 100 or not 1 <= sensitivity <= 3:
        return None
    out = {name: bool(flags & bit) for name, bit in FLAGS}
    out.update({"percent": pct, "millivolts": mv, "contamination": contamination,
                "sensitivity": sensitivity, "queued": queued})
    return out


def _hush(body):
    outcome, net = struct.unpack(">BH", body)
    return None if outcome >= len(HUSH) else {"hush": HUSH[outcome], "smoke": net}


def _self_test(body):
    bits, passed = struct.unpack(">BB", body)
    if bits > 7 or passed > 1:
        return None
    return {"chamber_ok": bool(bits & 1), "siren_ok": bool(bits & 2), "radio_ok": bool(bits & 4),
            "passed": bool(passed)}


def _fault(body):
    code, active = struct.unpack(">BB", body)
    if code not in FAULTS or active > 1:
        return None
    return {"fault": FAULTS[code], "active": bool(active)}


frames.register(0x30, "smoke", 6, _smoke)
frames.register(0x31, "smoke_status", 8, _status)
frames.register(0x32, "hush", 3, _hush)
frames.register(0x33, "self_test", 2, _self_test)
frames.register(0x34, "fault", 2, _fault)
