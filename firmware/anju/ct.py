"""Constant-time comparison of tags and codes (no early exit on a mismatch)."""


def equal(a, b):
    """True when the byte strings are equal; time does not depend on where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
