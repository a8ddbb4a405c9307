"""AES-128 block encryption and decryption for the device and for CPython tests.

Used by `anju.ccm` to build BTHome v2 encrypted advertisements (forward cipher
only) and by the smart lock to unwrap a phone key (one block, inverse cipher).
On a MicroPython port with `cryptolib` the block is handled by the port's
native AES (ECB; one object per direction, because cryptolib refuses to mix
encryption and decryption on one object); elsewhere
(CPython, ports built without `cryptolib`) by the
compact pure-Python implementation below, which allocates nothing per block
when the caller passes an output buffer.

This module must never hold more than the expanded key of one cipher, never
log or print key material, and never import anything MicroPython lacks.
"""
try:
    import cryptolib
except ImportError:
    cryptolib = None

_MODE_ECB = 1
BLOCK_SIZE = 16
KEY_SIZE = 16

_SBOX = (
    b"\x63\x7c\x77\x7b\xf2\x6b\x6f\xc5\x30\x01\x67\x2b\xfe\xd7\xab\x76"
    b"\xca\x82\xc9\x7d\xfa\x59\x47\xf0\xad\xd4\xa2\xaf\x9c\xa4\x72\xc0"
    b"\xb7\xfd\x93\x26\x36\x3f\xf7\xcc\x34\xa5\xe5\xf1\x71\xd8\x31\x15"
    b"\x04\xc7\x23\xc3\x18\x96\x05\x9a\x07\x12\x80\xe2\xeb\x27\xb2\x75"
    b"\x09\x83\x2c\x1a\x1b\x6e\x5a\xa0\x52\x3b\xd6\xb3\x29\xe3\x2f\x84"
    b"\x53\xd1\x00\xed\x20\xfc\xb1\x5b\x6a\xcb\xbe\x39\x4a\x4c\x58\xcf"
    b"\xd0\xef\xaa\xfb\x43\x4d\x33\x85\x45\xf9\x02\x7f\x50\x3c\x9f\xa8"
    b"\x51\xa3\x40\x8f\x92\x9d\x38\xf5\xbc\xb6\xda\x21\x10\xff\xf3\xd2"
    b"\xcd\x0c\x13\xec\x5f\x97\x44\x17\xc4\xa7\x7e\x3d\x64\x5d\x19\x73"
    b"\x60\x81\x4f\xdc\x22\x2a\x90\x88\x46\xee\xb8\x14\xde\x5e\x0b\xdb"
    b"\xe0\x32\x3a\x0a\x49\x06\x24\x5c\xc2\xd3\xac\x62\x91\x95\xe4\x79"
    b"\xe7\xc8\x37\x6d\x8d\xd5\x4e\xa9\x6c\x56\xf4\xea\x65\x7a\xae\x08"
    b"\xba\x78\x25\x2e\x1c\xa6\xb4\xc6\xe8\xdd\x74\x1f\x4b\xbd\x8b\x8a"
    b"\x70\x3e\xb5\x66\x48\x03\xf6\x0e\x61\x35\x57\xb9\x86\xc1\x1d\x9e"
    b"\xe1\xf8\x98\x11\x69\xd9\x8e\x94\x9b\x1e\x87\xe9\xce\x55\x28\xdf"
    b"\x8c\xa1\x89\x0d\xbf\xe6\x42\x68\x41\x99\x2d\x0f\xb0\x54\xbb\x16"
)

_XTIME = (
    b"\x00\x02\x04\x06\x08\x0a\x0c\x0e\x10\x12\x14\x16\x18\x1a\x1c\x1e"
    b"\x20\x22\x24\x26\x28\x2a\x2c\x2e\x30\x32\x34\x36\x38\x3a\x3c\x3e"
    b"\x40\x42\x44\x46\x48\x4a\x4c\x4e\x50\x52\x54\x56\x58\x5a\x5c\x5e"
    b"\x60\x62\x64\x66\x68\x6a\x6c\x6e\x70\x72\x74\x76\x78\x7a\x7c\x7e"
    b"\x80\x82\x84\x86\x88\x8a\x8c\x8e\x90\x92\x94\x96\x98\x9a\x9c\x9e"
    b"\xa0\xa2\xa4\xa6\xa8\xaa\xac\xae\xb0\xb2\xb4\xb6\xb8\xba\xbc\xbe"
    b"\xc0\xc2\xc4\xc6\xc8\xca\xcc\xce\xd0\xd2\xd4\xd6\xd8\xda\xdc\xde"
    b"\xe0\xe2\xe4\xe6\xe8\xea\xec\xee\xf0\xf2\xf4\xf6\xf8\xfa\xfc\xfe"
    b"\x1b\x19\x1f\x1d\x13\x11\x17\x15\x0b\x09\x0f\x0d\x03\x01\x07\x05"
    b"\x3b\x39\x3f\x3d\x33\x31\x37\x35\x2b\x29\x2f\x2d\x23\x21\x27\x25"
    b"\x5b\x59\x5f\x5d\x53\x51\x57\x55\x4b\x49\x4f\x4d\x43\x41\x47\x45"
    b"\x7b\x79\x7f\x7d\x73\x71\x77\x75\x6b\x69\x6f\x6d\x63\x61\x67\x65"
    b"\x9b\x99\x9f\x9d\x93\x91\x97\x95\x8b\x89\x8f\x8d\x83\x81\x87\x85"
    b"\xbb\xb9\xbf\xbd\xb3\xb1\xb7\xb5\xab\xa9\xaf\xad\xa3\xa1\xa7\xa5"
    b"\xdb\xd9\xdf\xdd\xd3\xd1\xd7\xd5\xcb\xc9\xcf\xcd\xc3\xc1\xc7\xc5"
    b"\xfb\xf9\xff\xfd\xf3\xf1\xf7\xf5\xeb\xe9\xef\xed\xe3\xe1\xe7\xe5"
)

# ShiftRows on a column-major state: output byte i comes from input byte _SHIFT[i]
_SHIFT = b"\x00\x05\x0a\x0f\x04\x09\x0e\x03\x08\x0d\x02\x07\x0c\x01\x06\x0b"
# InvShiftRows: row r of column c comes from column (c - r) mod 4
_INV_SHIFT = b"\x00\x0d\x0a\x07\x04\x01\x0e\x0b\x08\x05\x02\x0f\x0c\x09\x06\x03"
_inv_sbox = None


def _inverse_sbox():
    """The inverse S-box, built from the S-box on first use (decryption is rare)."""
    global _inv_sbox
    if _inv_sbox is None:
        inv = bytearray(256)
        for i in range(256):
            inv[_SBOX[i]] = i
        _inv_sbox = bytes(inv)
    return _inv_sbox
_RCON = b"\x01\x02\x04\x08\x10\x20\x40\x80\x1b\x36"


def _expand_key(key):
    """The 11 round keys of AES-128, concatenated (176 bytes)."""
    w = bytearray(176)
    w[0:16] = key
    sbox = _SBOX
    for i in range(16, 176, 4):
        a = w[i - 4]
        b = w[i - 3]
        c = w[i - 2]
        d = w[i - 1]
        if i % 16 == 0:
            # RotWord, SubWord, Rcon
            a, b, c, d = sbox[b] ^ _RCON[i // 16 - 1], sbox[c], sbox[d], sbox[a]
        w[i] = w[i - 16] ^ a
        w[i + 1] = w[i - 15] ^ b
        w[i + 2] = w[i - 14] ^ c
        w[i + 3] = w[i - 13] ^ d
    return w


class AES128:
    """One AES-128 key; `encrypt_block` / `decrypt_block` handle 16 bytes (ECB)."""

    def __init__(self, key, native=True):
        if len(key) != KEY_SIZE:
            raise ValueError("AES-128 key must be 16 bytes")
        self._native = None
        self._native_dec = None
        self._key = None
        self._round_keys = None
        if native and cryptolib is not None:
            self._native = cryptolib.aes(bytes(key), _MODE_ECB)
            self._key = bytes(key)  # for the decryption object, made on first use
        else:
            self._round_keys = _expand_key(key)
            self._tmp = bytearray(BLOCK_SIZE)

    @property
    def is_native(self):
        return self._native is not None

    def encrypt_block(self, block, out=None):
        """Encrypt one 16-byte block into `out` (a new bytearray if None)."""
        if len(block) != BLOCK_SIZE:
            raise ValueError("AES block must be 16 bytes")
        if out is None:
            out = bytearray(BLOCK_SIZE)
        if self._native is not None:
            self._native.encrypt(block, out)
            return out
        rk = self._round_keys
        sbox = _SBOX
        xtime = _XTIME
        shift = _SHIFT
        tmp = self._tmp
        for i in range(16):
            out[i] = block[i] ^ rk[i]
        for r in range(16, 160, 16):
            for i in range(16):
                tmp[i] = sbox[out[shift[i]]]
            for c in range(0, 16, 4):
                a0 = tmp[c]
                a1 = tmp[c + 1]
                a2 = tmp[c + 2]
                a3 = tmp[c + 3]
                t = a0 ^ a1 ^ a2 ^ a3
                out[c] = a0 ^ t ^ xtime[a0 ^ a1] ^ rk[r + c]
                out[c + 1] = a1 ^ t ^ xtime[a1 ^ a2] ^ rk[r + c + 1]
                out[c + 2] = a2 ^ t ^ xtime[a2 ^ a3] ^ rk[r + c + 2]
                out[c + 3] = a3 ^ t ^ xtime[a3 ^ a0] ^ rk[r + c + 3]
        for i in range(16):
            tmp[i] = sbox[out[shift[i]]]
        for i in range(16):
            out[i] = tmp[i] ^ rk[160 + i]
        return out

    def decrypt_block(self, block, out=None):
        """Decrypt one 16-byte block into `out` (a new bytearray if None)."""
        if len(block) != BLOCK_SIZE:
            raise ValueError("AES block must be 16 bytes")
        if out is None:
            out = bytearray(BLOCK_SIZE)
        if self._native is not None:
            if self._native_dec is None:
                self._native_dec = cryptolib.aes(self._key, _MODE_ECB)
            self._native_dec.decrypt(bytes(block), out)
            return out
        rk = self._round_keys
        inv = _inverse_sbox()
        xtime = _XTIME
        shift = _INV_SHIFT
        tmp = self._tmp
        for i in range(16):
            out[i] = block[i] ^ rk[160 + i]
        for r in range(144, 0, -16):
            # InvShiftRows, InvSubBytes and AddRoundKey into tmp
            for i in range(16):
                tmp[i] = inv[out[shift[i]]] ^ rk[r + i]
            # InvMixColumns: pre-multiply by (04, 00, 05, 00), then MixColumns
            for c in range(0, 16, 4):
                a0 = tmp[c]
                a1 = tmp[c + 1]
                a2 = tmp[c + 2]
                a3 = tmp[c + 3]
                u = xtime[xtime[a0 ^ a2]]
                v = xtime[xtime[a1 ^ a3]]
                a0 ^= u
                a1 ^= v
                a2 ^= u
                a3 ^= v
                t = a0 ^ a1 ^ a2 ^ a3
                out[c] = a0 ^ t ^ xtime[a0 ^ a1]
                out[c + 1] = a1 ^ t ^ xtime[a1 ^ a2]
                out[c + 2] = a2 ^ t ^ xtime[a2 ^ a3]
                out[c + 3] = a3 ^ t ^ xtime[a3 ^ a0]
        for i in range(16):
            tmp[i] = inv[out[shift[i]]] ^ rk[i]
        for i in range(16):
            out[i] = tmp[i]
        return out
