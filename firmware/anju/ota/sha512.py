"""SHA-512 (FIPS 180-4) for the boards, which have none.

MicroPython's `hashlib` on the esp32 and rp2 ports has sha256 (and sha1, md5)
but no sha512 (extmod/modhashlib.c), and Ed25519 (anju.ota.ed25519) needs it. The
64-bit words are MicroPython long ints (MPZ, enabled on both ports); every
result is masked back to 64 bits. Only the signed manifest body is hashed with
it, a few hundred bytes to a few KiB, so speed matters less than correctness.

`hashlib.sha512` has the same interface where it exists (CPython); the tests
compare the two. This module must never read files or allocate per byte.
"""
import struct

_M = 0xFFFFFFFFFFFFFFFF

_K = (
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
    0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
    0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
    0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
    0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
    0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
    0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
    0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
    0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
    0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
    0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
    0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
    0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
)

_IV = (
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
    0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
)

_BLOCK = 128


class sha512:
    """hashlib-style: sha512(data=b"").update(data); .digest() (64 bytes)."""

    digest_size = 64
    block_size = _BLOCK

    def __init__(self, data=b""):
        self._h = list(_IV)
        self._buf = bytearray(_BLOCK)
        self._used = 0
        self._length = 0
        self._w = [0] * 80
        if data:
            self.update(data)

    def update(self, data):
        mv = memoryview(data)
        n = len(mv)
        self._length += n
        i = 0
        buf = self._buf
        if self._used:
            take = min(_BLOCK - self._used, n)
            buf[self._used:self._used + take] = mv[:take]
            self._used += take
            i = take
            if self._used < _BLOCK:
                return
            self._compress(buf)
            self._used = 0
        while n - i >= _BLOCK:
            self._compress(mv[i:i + _BLOCK])
            i += _BLOCK
        if i < n:
            buf[0:n - i] = mv[i:]
            self._used = n - i

    def digest(self):
        # Padding on a copy, so update() may go on after digest() as in hashlib.
        saved = (list(self._h), bytes(self._buf), self._used, self._length)
        bits = self._length * 8
        pad = bytearray(b"\x80")
        rest = (self._used + 1) % _BLOCK
        zeros = (112 - rest) % _BLOCK
        pad.extend(bytes(zeros))
        pad.extend(struct.pack(">QQ", (bits >> 64) & _M, bits & _M))
        length = self._length
        self.update(pad)
        out = struct.pack(">8Q", *self._h)
        self._h, buf, self._used, _ = saved
        self._buf[:] = buf
        self._length = length
        return out

    def hexdigest(self):
        return "".join("%02x" % b for b in self.digest())

    def _compress(self, block):
        w = self._w
        M = _M
        for t in range(16):
            w[t] = struct.unpack_from(">Q", block, t * 8)[0]
        for t in range(16, 80):
            x = w[t - 15]
            s0 = ((x >> 1) | (x << 63)) ^ ((x >> 8) | (x << 56)) ^ (x >> 7)
            x = w[t - 2]
            s1 = ((x >> 19) | (x << 45)) ^ ((x >> 61) | (x << 3)) ^ (x >> 6)
            w[t] = (w[t - 16] + (s0 & M) + w[t - 7] + (s1 & M)) & M
        h = self._h
        a, b, c, d, e, f, g, hh = h
        K = _K
        for t in range(80):
            s1 = ((e >> 14) | (e << 50)) ^ ((e >> 18) | (e << 46)) ^ ((e >> 41) | (e << 23))
            ch = (e & f) ^ (~e & g)
            t1 = (hh + (s1 & M) + (ch & M) + K[t] + w[t]) & M
            s0 = ((a >> 28) | (a << 36)) ^ ((a >> 34) | (a << 30)) ^ ((a >> 39) | (a << 25))
            maj = (a & b) ^ (a & c) ^ (b & c)
            hh = g
            g = f
            f = e
            e = (d + t1) & M
            d = c
            c = b
            b = a
            a = (t1 + (s0 & M) + maj) & M
        h[0] = (h[0] + a) & M
        h[1] = (h[1] + b) & M
        h[2] = (h[2] + c) & M
        h[3] = (h[3] + d) & M
        h[4] = (h[4] + e) & M
        h[5] = (h[5] + f) & M
        h[6] = (h[6] + g) & M
        h[7] = (h[7] + hh) & M
