"""Ed25519 signature verification (RFC 8032, section 5.1.7) for the boards.

MicroPython has no signature primitive, so the device checks release
signatures (anju.ota.manifest) with this. It only verifies; a device never holds
a private key. Field elements are MicroPython long ints (MPZ, enabled on the
esp32 and rp2 ports) reduced mod p = 2**255 - 19; points are in extended
twisted-Edwards coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z.

The check is the cofactorless one OpenSSL (and so `cryptography`) makes:
decode A (the public key; a non-canonical y or an x = 0 with the sign bit set
is refused), refuse S >= L, k = SHA-512(R || A || M) mod L, and accept only if
the encoding of [S]B - [k]A equals the 32 bytes R. [S]B - [k]A is computed in
one pass over the bits (Straus / Shamir) from B, -A and B - A.

Verification works on public data only, so it need not be constant-time.
`check` returns None or the reason for refusing; it never raises on bad input.
"""
from anju.ota.sha512 import sha512

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
D2 = (2 * D) % P
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
BASE = (_BX, _BY, 1, (_BX * _BY) % P)
IDENTITY = (0, 1, 1, 0)


def add(p1, p2):
    """RFC 8032 5.1.4, a = -1, complete for all inputs."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 * t2 % P
    d = 2 * z1 * z2 % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def double(p1):
    """RFC 8032 5.1.4 doubling (dbl-2008-hwcd)."""
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1) % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def negate(p1):
    x, y, z, t = p1
    return ((-x) % P, y, z, (-t) % P)


def encode(p1):
    x, y, z, _ = p1
    zi = pow(z, P - 2, P)
    x = x * zi % P
    y = y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode(s):
    """A point from its 32-byte encoding, or None if it is not one."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    yy = y * y % P
    u = (yy - 1) % P
    v = (D * yy + 1) % P
    v3 = v * v % P * v % P
    x = u * v3 % P * pow(u * v3 % P * v3 % P * v % P, (P - 5) // 8, P) % P
    vxx = v * x % P * x % P
    if vxx != u:
        if vxx != (-u) % P:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _bit(scalar_le, i):
    return (scalar_le[i >> 3] >> (i & 7)) & 1


def double_scalarmult(s, p1, k, p2):
    """[s]p1 + [k]p2 for scalars below 2**253, in one pass over the bits."""
    sb = s.to_bytes(32, "little")
    kb = k.to_bytes(32, "little")
    both = add(p1, p2)
    table = (None, p1, p2, both)
    q = IDENTITY
    started = False
    for i in range(252, -1, -1):
        if started:
            q = double(q)
        sel = _bit(sb, i) | (_bit(kb, i) << 1)
        if sel:
            q = add(q, table[sel]) if started else table[sel]
            started = True
    return q


def check(public_key, message, signature):
    """None if `signature` is a valid Ed25519 signature of `message` by
    `public_key` (32 bytes), else the reason (a short string)."""
    if len(public_key) != 32:
        return "public key is not 32 bytes"
    if len(signature) != 64:
        return "signature is not 64 bytes"
    a = decode(bytes(public_key))
    if a is None:
        return "public key is not a curve point"
    r = bytes(signature[:32])
    s = int.from_bytes(bytes(signature[32:]), "little")
    if s >= L:
        return "signature S is not canonical"
    h = sha512(r)
    h.update(public_key)
    h.update(message)
    k = int.from_bytes(h.digest(), "little") % L
    if encode(double_scalarmult(s, BASE, k, negate(a))) != r:
        return "signature does not match"
    return None


def verify(public_key, message, signature):
    return check(public_key, message, signature) is None
