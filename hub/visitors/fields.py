"""What a visit is made of, checked and normalised. Pure; no I/O.

Every check raises `VisitInvalid(field, message)` naming the field the caller
sent (`id_number`, `plate`, `phone`, `valid_until`, ...); a valid value comes
back normalised (upper case, no spaces), so the same person or car always
hashes the same (hub/visitors/pii.py).

- PRC resident ID number (GB 11643-1999): 18 characters, 17 digits and a
  check character (ISO 7064 MOD 11-2, `X` for 10), the birth date at 7..14 a
  real date not in the future and not before 1900.
- PRC civil number plate (GA 36): a province character, the issuing
  authority's letter, then five characters (letters without I and O, digits;
  the last may be 学 警 挂 港 澳 领), or the 8-character new-energy plate: six
  after the letter, `D`/`F` then a letter or digit then four digits (small
  cars) or five digits then `D`/`F` (large vehicles).
- Phone: a PRC mobile number (11 digits starting 1[3-9]) or a landline with
  its area code (0 + 2..3 digits, then 7..8 digits), `+86`/`0086` and spaces
  or dashes allowed.
- Window: epoch seconds or ISO 8601 (naive = UTC); it ends after it starts,
  has not already ended, and ends within `MAX_WINDOW_S` (29 days) of now.
"""
import datetime
import re

from hub.visitors import VisitInvalid

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_LETTER = "A-HJ-NP-Z"
_PLATE = re.compile(
    "^[%s][A-Z](?:[%s0-9]{4}[%s0-9学警挂港澳领]"
    "|[DF][%s0-9][0-9]{4}|[0-9]{5}[DF])$" % (PROVINCES, _LETTER, _LETTER, _LETTER))
_ID = re.compile(r"^[1-9][0-9]{16}[0-9X]$")
_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK = "10X98765432"
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[1-9][0-9]{1,2}[2-9][0-9]{6,7}$")
MAX_WINDOW_S = 29 * 86400  # a lock code must end within 30 days of being made
MAX_TEXT = 64
ENTRIES = ("single", "repeated")


def id_check_char(first17):
    """The ISO 7064 MOD 11-2 check character of 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def id_number(value, today, field="id_number"):
    """A PRC resident ID number, upper case; `today` a datetime.date."""
    if not isinstance(value, str):
        raise VisitInvalid(field, "must be a string of 18 characters")
    v = value.strip().upper()
    if len(v) != 18:
        raise VisitInvalid(field, "must be 18 characters, got %d" % len(v))
    if not _ID.match(v):
        raise VisitInvalid(field, "must be 17 digits and a check digit or X")
    try:
        born = datetime.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError as exc:
        raise VisitInvalid(field, "characters 7-14 are not a valid birth date") from exc
    if born.year < 1900 or born > today:
        raise VisitInvalid(field, "the birth date is out of range")
    if id_check_char(v[:17]) != v[17]:
        raise VisitInvalid(field, "the check digit does not match (mistyped?)")
    return v


def plate(value, field="plate"):
    """A PRC civil number plate, normalised (no spaces, dots or dashes)."""
    if not isinstance(value, str):
        raise VisitInvalid(field, "must be a string like 粤B12345 or 粤BD12345")
    v = re.sub(r"[\s·.\-]", "", value).upper()
    if not v or v[0] not in PROVINCES:
        raise VisitInvalid(field, "must start with a province character (京, 粤, 沪, ...)")
    if len(v) not in (7, 8):
        raise VisitInvalid(field, "must be 7 characters, or 8 for a new-energy plate")
    if not _PLATE.match(v):
        raise VisitInvalid(field, "%s is not a civil plate (letters I and O are not used; "
                                  "new-energy plates have D or F)" % v)
    return v


def phone(value, field="phone"):
    """A PRC mobile or landline number, digits only (country code dropped)."""
    if not isinstance(value, str):
        raise VisitInvalid(field, "must be a string")
    v = re.sub(r"[\s\-()]", "", value)
    for prefix in ("+86", "0086"):
        if v.startswith(prefix):
            v = v[len(prefix):]
    if _MOBILE.match(v) or _LANDLINE.match(v):
        return v
    raise VisitInvalid(field, "must be a mobile number (11 digits, 1[3-9]...) or a landline "
                              "with its area code")


def text(value, field, required=True, limit=MAX_TEXT):
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise VisitInvalid(field, "must be a non-empty string")
    v = value.strip()
    if len(v) > limit:
        raise VisitInvalid(field, "at most %d characters" % limit)
    if any(ord(c) < 32 for c in v):
        raise VisitInvalid(field, "control characters are not allowed")
    return v


def when(value, field):
    """Epoch seconds or ISO 8601 (naive = UTC) -> epoch seconds."""
    if isinstance(value, bool):
        raise VisitInvalid(field, "must be epoch seconds or an ISO 8601 time")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")) or value < 0:
            raise VisitInvalid(field, "must be a finite time")
        return float(value)
    if isinstance(value, str):
        if re.match(r"^[0-9]+(\.[0-9]+)?$", value.strip()):
            return float(value)
        try:
            t = datetime.datetime.fromisoformat(value)
        except ValueError as exc:
            raise VisitInvalid(field, "must be epoch seconds or an ISO 8601 time") from exc
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return t.timestamp()
    raise VisitInvalid(field, "must be epoch seconds or an ISO 8601 time")


def window(valid_from, valid_until, now):
    start, end = when(valid_from, "valid_from"), when(valid_until, "valid_until")
    if end <= start:
        raise VisitInvalid("valid_until", "the window ends before it starts")
    if end <= now:
        raise VisitInvalid("valid_until", "the window has already ended")
    if end - now > MAX_WINDOW_S:
        raise VisitInvalid("valid_until", "a visit must end within 29 days from now "
                                          "(its lock codes carry their window)")
    return start, end


REGISTRATION_KEYS = ("flat", "name", "phone", "id_number", "plate", "purpose", "valid_from",
                     "valid_until", "entry", "entrances", "flat_lock", "photo")


def registration(body, flats, entrances, now, today):
    """A registration body -> the visit's fields, normalised.

    `flats` and `entrances` are the ids the site knows; `today` the site's
    local date (for the ID number's birth date). `photo` (bytes or None) is
    passed through for the face check, never stored here.
    """
    if not isinstance(body, dict):
        raise VisitInvalid("body", "must be a JSON object")
    unknown = sorted(set(body) - set(REGISTRATION_KEYS))
    if unknown:
        raise VisitInvalid(unknown[0], "unknown field; allowed: %s" % ", ".join(REGISTRATION_KEYS))
    flat = body.get("flat")
    if not isinstance(flat, str) or flat not in flats:
        raise VisitInvalid("flat", "no flat %r in this site" % (flat,))
    start, end = window(body.get("valid_from"), body.get("valid_until"), now)
    entry = body.get("entry", "single")
    if entry not in ENTRIES:
        raise VisitInvalid("entry", "must be single or repeated")
    covered = body.get("entrances")
    if not isinstance(covered, list) or not covered:
        raise VisitInvalid("entrances", "must be a non-empty list of entrance ids")
    for i, e in enumerate(covered):
        if not isinstance(e, str) or e not in entrances:
            raise VisitInvalid("entrances[%d]" % i, "no entrance %r in this site; known: %s"
                               % (e, ", ".join(sorted(entrances)) or "none"))
    flat_lock = body.get("flat_lock", False)
    if not isinstance(flat_lock, bool):
        raise VisitInvalid("flat_lock", "must be true or false")
    plate_value = body.get("plate")
    return {
        "flat": flat,
        "name": text(body.get("name"), "name"),
        "phone": phone(body.get("phone")),
        "id_number": id_number(body.get("id_number"), today),
        "plate": plate(plate_value) if plate_value not in (None, "") else None,
        "purpose": text(body.get("purpose"), "purpose", limit=200),
        "valid_from": start,
        "valid_until": end,
        "one_time": entry == "single",
        "entrances": sorted(set(covered)),
        "flat_lock": flat_lock,
    }
