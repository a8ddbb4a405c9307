"""AES-CCM (RFC 3610) authenticated encryption for BTHome v2 advertisements.

`CCM(key, tag_len)` encrypts and tags a payload (`encrypt`) and checks and
decrypts one (`decrypt`), with a 7..13-byte nonce (BTHome uses 13) and
optional associated data (BTHome uses none). The API mirrors
`cryptography`'s `AESCCM` so tests can compare the two byte for byte.

Errors: `ValueError` for a misuse by the caller (wrong key, nonce or tag
length, message too long); `AuthenticationError` (a `ValueError`) when a
received tag does not verify. This module must never release plaintext whose
tag failed, never compare tags in variable time and never log key material.
"""
from anju import aes, ct

_BLOCK = 16


class AuthenticationError(ValueError):
    """The tag does not match: forged, tampered or encrypted with another key."""


tags_equal = ct.equal


class CCM:
    """AES-128-CCM with one key; buffers are reused between calls."""

    def __init__(self, key, tag_len=4, native=True):
        if tag_len not in (4, 6, 8, 10, 12, 14, 16):
            raise ValueError("CCM tag length must be even, 4..16")
        self._cipher = aes.AES128(key, native)
        self._tag_len = tag_len
        self._block = bytearray(_BLOCK)
        self._mac = bytearray(_BLOCK)
        self._stream = bytearray(_BLOCK)
        self._tag = bytearray(tag_len)

    @property
    def tag_len(self):
        return self._tag_len

    def encrypt(self, nonce, plaintext, aad=None):
        """Return ciphertext followed by the tag."""
        self._check(nonce, len(plaintext), aad)
        out = bytearray(len(plaintext) + self._tag_len)
        self._mac_of(nonce, plaintext, aad)
        self._ctr_xor(nonce, plaintext, out)
        self._tag_into(nonce, out, len(plaintext))
        return bytes(out)

    def decrypt(self, nonce, data, aad=None):
        """Return the plaintext of ciphertext+tag, or raise AuthenticationError."""
        n = len(data) - self._tag_len
        if n < 0:
            raise AuthenticationError("shorter than the tag")
        self._check(nonce, n, aad)
        plain = bytearray(n)
        self._ctr_xor(nonce, memoryview(data)[:n], plain)
        self._mac_of(nonce, plain, aad)
        self._tag_into(nonce, self._tag, 0)
        if not tags_equal(self._tag, memoryview(data)[n:]):
            # wipe what must not be released
            for i in range(n):
                plain[i] = 0
            raise AuthenticationError("CCM tag mismatch")
        return bytes(plain)

    def _check(self, nonce, length, aad):
        nlen = len(nonce)
        if nlen < 7 or nlen > 13:
            raise ValueError("CCM nonce must be 7..13 bytes")
        if length >= 1 << (8 * (15 - nlen)):
            raise ValueError("message too long for this nonce length")
        if aad and len(aad) >= 0xFF00:
            raise ValueError("associated data too long")

    def _mac_of(self, nonce, message, aad):
        """CBC-MAC over B0, the encoded associated data and the message (RFC 3610 2.2)."""
        q = 15 - len(nonce)
        blk = self._block
        mac = self._mac
        enc = self._cipher.encrypt_block
        blk[0] = (0x40 if aad else 0) | (((self._tag_len - 2) // 2) << 3) | (q - 1)
        blk[1 : 1 + len(nonce)] = nonce
        length = len(message)
        for i in range(q):
            blk[15 - i] = (length >> (8 * i)) & 0xFF
        enc(blk, mac)
        if aad:
            # first block: 2-byte length, then the data, zero-padded
            self._absorb(bytes((len(aad) >> 8, len(aad) & 0xFF)) + bytes(aad))
        self._absorb(message)

    def _absorb(self, data):
        mac = self._mac
        blk = self._block
        enc = self._cipher.encrypt_block
        n = len(data)
        for start in range(0, n, _BLOCK):
            end = min(start + _BLOCK, n)
            for i in range(_BLOCK):
                j = start + i
                mac[i] ^= data[j] if j < end else 0
            blk[:] = mac
            enc(blk, mac)

    def _counter_block(self, nonce, counter):
        q = 15 - len(nonce)
        blk = self._block
        blk[0] = q - 1
        blk[1 : 1 + len(nonce)] = nonce
        for i in range(q):
            blk[15 - i] = (counter >> (8 * i)) & 0xFF
        self._cipher.encrypt_block(blk, self._stream)
        return self._stream

    def _ctr_xor(self, nonce, src, dst):
        """dst[i] = src[i] xor keystream starting at counter 1 (RFC 3610 2.3)."""
        n = len(src)
        for start in range(0, n, _BLOCK):
            stream = self._counter_block(nonce, start // _BLOCK + 1)
            for i in range(min(_BLOCK, n - start)):
                dst[start + i] = src[start + i] ^ stream[i]

    def _tag_into(self, nonce, out, offset):
        """out[offset:offset+tag_len] = CBC-MAC xor S0."""
        mac = self._mac
        s0 = self._counter_block(nonce, 0)
        for i in range(self._tag_len):
            out[offset + i] = mac[i] ^ s0[i]
