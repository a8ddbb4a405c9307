"""Smart locks, the hub's side (docs/smart_lock.md): what the hub asks a lock
to do and what the lock confirmed.

* `wire` — hub → lock command bodies (LOCK_CTL … SETTINGS, VISITOR_REVOKE) with their range
  checks, and the key derivations (cred_key, card and PIN digests, wrap_key and
  the phone-key wrap). Pure.
* `book` — the store's record of lock commands (requested, sent, confirmed or
  failed), of the lock's users and credentials, of visitor-code revocations
  and of its reported state; run inside the hub's store transactions.
* `sender` — the component that signs queued commands with the lock's
  frame_key and publishes them on `anju/<site>/<device>/cmd` (QoS 1), over the
  hub's shared device-command link (hub/forward/device_commands.py).
* `api` — the HTTP routes for operators.

Requested is not confirmed: a credential is active on a lock only once the lock
answered its command with CMD_RESULT ok. Never logs or returns a PIN, a card
UID, a phone key or a digest of one.

Exceptions::

    HubError
    └── LockError          a lock command that cannot be built or queued
"""
from hub import HubError


class LockError(HubError):
    """A lock command refused before anything was queued (bad value, unknown lock)."""
