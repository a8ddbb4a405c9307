"""Visitor passes (docs/visitors.md): registration, approval, the pass and
what opens with it, and the visitor's personal data.

Modules: `fields.py` (validation of what a visit is made of: PRC ID number,
number plate, phone, window; pure), `model.py` (the visit's states and who
may move it; the repeat-visitor and watch-list decisions; masking; pure),
`pii.py` (personal fields sealed with the hub's KEK, keyed hashes for
matching), `qr.py` (the gate reader's signed QR token), `settings.py` (the
site file's `visitors:` section), `book.py` (the visits in the hub's store),
`passcode.py` (the lock's offline codes).

Exceptions: `VisitorError` (a `hub.HubError`) is the root; `VisitInvalid`
(bad input, names the field; nothing was changed), `VisitNotFound`,
`VisitConflict` (the visit is not in a state that allows the action) and
`VisitForbidden` (the caller may not act on this visit) derive from it.
"""
from hub import HubError


class VisitorError(HubError):
    """Root of the visitor service's errors."""


class VisitInvalid(VisitorError, ValueError):
    """Bad input; `field` names what to change. Nothing was stored."""

    def __init__(self, field, message):
        super().__init__("%s: %s" % (field, message))
        self.field = field
        self.message = message


class VisitNotFound(VisitorError):
    """No such visit (or not one the caller may see)."""


class VisitConflict(VisitorError):
    """The visit's state does not allow the action."""


class VisitForbidden(VisitorError):
    """The caller may not do this to this visit."""
