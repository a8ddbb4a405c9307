"""The visitor's personal data at rest: sealed, hashed for matching, masked
for display (docs/visitors.md, "Personal data").

The ID number and the phone are sealed with AES-256-GCM under the hub's KEK
(hub/registry/kek.py, the same key and mechanism as device keys), bound by
the associated data to the site, the visit and the field, so a sealed value
copied to another visit does not open. The ID number and the plate are also
kept as keyed hashes (HMAC-SHA256 under a key derived from the KEK) so the
watch list and the repeat-visitor rule can match them without opening
anything; a copy of the database alone reveals neither. This module must
never log or put into an error message a personal value or a key.
"""
import hashlib
import hmac

from hub.registry.kek import KeyBox

SEALED_FIELDS = ("id_number", "phone")


def aad(site_id, visit_id, field):
    return ("anju-visitor\0%s\0%s\0%s" % (site_id, visit_id, field)).encode()


class VisitorKeys:
    """Everything keyed from the KEK that the visitor service needs."""

    def __init__(self, kek, site_id):
        self._box = KeyBox(kek)
        self.site_id = site_id
        self._match = hmac.new(bytes(kek), b"anju-visitor-match", hashlib.sha256).digest()
        self.qr_key = hmac.new(bytes(kek), b"anju-visitor-qr", hashlib.sha256).digest()

    def __repr__(self):
        return "VisitorKeys(<kek>)"

    def seal(self, visit_id, field, value):
        return self._box.seal(value.encode("utf-8"), aad(self.site_id, visit_id, field))

    def open(self, visit_id, field, sealed):
        return self._box.open(sealed, aad(self.site_id, visit_id, field),
                              "the visitor's %s" % field).decode("utf-8")

    def match_hash(self, kind, value):
        """The keyed hash of a normalised ID number (`id`) or plate (`plate`)."""
        msg = ("%s\0%s\0%s" % (self.site_id, kind, value)).encode("utf-8")
        return hmac.new(self._match, msg, hashlib.sha256).hexdigest()


def mask(field, value):
    """What a caller without `visitors.personal` sees."""
    if value is None:
        return None
    if field == "id_number":
        return value[:3] + "*" * 11 + value[-4:]
    if field == "phone":
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    if field == "plate":
        return value[:2] + "*" * (len(value) - 4) + value[-2:]
    if field == "name":
        return value[:1] + "*" * max(1, len(value) - 1)
    raise KeyError(field)
