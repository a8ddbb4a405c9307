"""Signed updates (docs/ota.md): the release manifest and its Ed25519
signature (with SHA-512, which the ports' hashlib lacks), installing a release
into the inactive slot, and the A/B slot states. Pure, like the rest of the
core. A package of its own: only an update imports it, and every import a
boot makes scans its directory on the flash, so it does not sit beside the
modules every wake needs."""
