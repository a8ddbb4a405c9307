"""Stage 2 of the pipeline — verify: device frames in, a `Reading` or a
`Rejection` out.

* `frames` — the authenticated frame format (docs/protocol.md §1), the common
  and door-sensor message types, and the registry of message types;
* `frames_lock`, `frames_smoke` — the smart lock's and the smoke sensor's
  message types, registered on import (below), so importing any part of this
  package makes every type known.

Pure: bytes and a device's key in, values out. Whether a counter is fresh is
the store's decision. Verification never touches the store, never raises on
bad input (a rejection is a result, counted by reason) and never puts a key
into a result or a message.
"""
from hub.verify import frames, frames_lock, frames_smoke  # noqa: F401  (types register on import)
