"""Known-answer tests for the device's AES-128 and AES-CCM (anju.aes, anju.ccm).

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness). Vectors come from FIPS-197,
NIST SP 800-38A/38C, RFC 3610 and the BTHome v2 encryption example; the
4-byte-tag vector was computed with the `cryptography` package.
"""
from binascii import unhexlify

from anju import aes, ccm


def h(s):
    return unhexlify(s.replace(" ", ""))


def test_aes_fips197_appendix_c1():
    cipher = aes.AES128(h("000102030405060708090a0b0c0d0e0f"))
    out = cipher.encrypt_block(h("00112233445566778899aabbccddeeff"))
    assert bytes(out) == h("69c4e0d86a7b0430d8cdb78070b4c55a")


def test_aes_sp800_38a_ecb_blocks():
    cipher = aes.AES128(h("2b7e151628aed2a6abf7158809cf4f3c"))
    out = bytearray(16)
    vectors = (
        ("6bc1bee22e409f96e93d7e117393172a", "3ad77bb40d7a3660a89ecaf32466ef97"),
        ("ae2d8a571e03ac9c9eb76fac45af8e51", "f5d3d58503b9699de785895a96fdbaaf"),
        ("30c81c46a35ce411e5fbc1191a0a52ef", "43b1cd7f598ece23881b00e3ed030688"),
    )
    for plain, expected in vectors:
        # the same output buffer is reused: no stale bytes may leak between blocks
        assert cipher.encrypt_block(h(plain), out) is out
        assert bytes(out) == h(expected)


def test_aes_pure_path_matches_vector_even_where_native_exists():
    cipher = aes.AES128(h("000102030405060708090a0b0c0d0e0f"), native=False)
    assert not cipher.is_native
    assert bytes(cipher.encrypt_block(h("00112233445566778899aabbccddeeff"))) == h(
        "69c4e0d86a7b0430d8cdb78070b4c55a"
    )


def test_aes_rejects_wrong_key_and_block_sizes():
    for bad_key in (b"", bytes(15), bytes(17), bytes(32)):
        try:
            aes.AES128(bad_key)
        except ValueError:
            pass
        else:
            assert False, "accepted a %d-byte key" % len(bad_key)
    try:
        aes.AES128(bytes(16)).encrypt_block(bytes(15))
    except ValueError:
        pass
    else:
        assert False, "accepted a 15-byte block"


def test_ccm_rfc3610_packet_vector_1():
    c = ccm.CCM(h("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"), tag_len=8)
    nonce = h("00000003020100a0a1a2a3a4a5")
    aad = h("0001020304050607")
    plain = h("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e")
    sealed = c.encrypt(nonce, plain, aad)
    assert sealed == h("588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0")
    assert c.decrypt(nonce, sealed, aad) == plain


def test_ccm_sp800_38c_example_1():
    c = ccm.CCM(h("404142434445464748494a4b4c4d4e4f"), tag_len=4)
    sealed = c.encrypt(h("10111213141516"), h("20212223"), h("0001020304050607"))
    assert sealed == h("7162015b4dac255d")


def test_ccm_13_byte_nonce_4_byte_tag_without_aad():
    c = ccm.CCM(h("000102030405060708090a0b0c0d0e0f"), tag_len=4)
    nonce = h("101112131415161718191a1b1c")
    plain = h("202122232425262728292a2b2c2d2e2f3031")
    sealed = c.encrypt(nonce, plain)
    assert sealed == h("5cc052629c79c8f3937062ba032a42ae1ae2bd3ff4e5")
    assert c.decrypt(nonce, sealed) == plain


def test_ccm_bthome_v2_reference_example():
    # BTHome v2 example: temperature 25.06 C, humidity 50.55 %, counter 0x00112233
    key = h("231d39c1d7cc1ab1aee224cd096db932")
    counter = h("33221100")
    nonce = h("5448e68f80a5") + h("d2fc41") + counter
    sealed = ccm.CCM(key, 4).encrypt(nonce, h("02ca0903bf13"))
    assert sealed[:-4] == h("e445f3c9962b")
    assert sealed[-4:] == h("6c7c4519")


def test_ccm_rejects_tampered_ciphertext_tag_and_wrong_key():
    key = h("000102030405060708090a0b0c0d0e0f")
    nonce = h("101112131415161718191a1b1c")
    sealed = h("5cc052629c79c8f3937062ba032a42ae1ae2bd3ff4e5")
    c = ccm.CCM(key, 4)
    for i in range(len(sealed)):
        forged = bytearray(sealed)
        forged[i] ^= 0x01
        try:
            c.decrypt(nonce, bytes(forged))
        except ccm.AuthenticationError:
            pass
        else:
            assert False, "accepted a flip at byte %d" % i
    other = ccm.CCM(h("ff0102030405060708090a0b0c0d0e0f"), 4)
    try:
        other.decrypt(nonce, sealed)
    except ccm.AuthenticationError:
        pass
    else:
        assert False, "decrypted with the wrong key"
    wrong_nonce = h("101112131415161718191a1b1d")
    try:
        c.decrypt(wrong_nonce, sealed)
    except ccm.AuthenticationError:
        pass
    else:
        assert False, "decrypted with the wrong nonce"
    try:
        c.decrypt(nonce, sealed[:3])
    except ccm.AuthenticationError:
        pass
    else:
        assert False, "accepted data shorter than the tag"


def test_ccm_roundtrip_over_block_boundaries():
    c = ccm.CCM(h("2b7e151628aed2a6abf7158809cf4f3c"), 4)
    nonce = h("00112233445566778899aabbcc")
    for n in (0, 1, 15, 16, 17, 31, 32, 33):
        plain = bytes(range(n))
        sealed = c.encrypt(nonce, plain)
        assert len(sealed) == n + 4
        assert c.decrypt(nonce, sealed) == plain
        if n:
            assert sealed[:n] != plain


def test_ccm_rejects_bad_parameters():
    for tag_len in (0, 2, 3, 5, 18):
        try:
            ccm.CCM(bytes(16), tag_len)
        except ValueError:
            pass
        else:
            assert False, "accepted tag length %d" % tag_len
    c = ccm.CCM(bytes(16), 4)
    for nonce in (bytes(6), bytes(14)):
        try:
            c.encrypt(nonce, b"x")
        except ValueError:
            pass
        else:
            assert False, "accepted a %d-byte nonce" % len(nonce)


def test_tags_equal():
    assert ccm.tags_equal(b"\x01\x02\x03\x04", b"\x01\x02\x03\x04")
    assert not ccm.tags_equal(b"\x01\x02\x03\x04", b"\x01\x02\x03\x05")
    assert not ccm.tags_equal(b"\x81\x02\x03\x04", b"\x01\x02\x03\x04")
    assert not ccm.tags_equal(b"\x01\x02\x03", b"\x01\x02\x03\x04")


def test_aes_decrypt_fips197_and_sp800_38a_both_paths():
    vectors = (
        ("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
         "69c4e0d86a7b0430d8cdb78070b4c55a"),
        ("2b7e151628aed2a6abf7158809cf4f3c", "6bc1bee22e409f96e93d7e117393172a",
         "3ad77bb40d7a3660a89ecaf32466ef97"),
        ("2b7e151628aed2a6abf7158809cf4f3c", "f69f2445df4f9b17ad2b417be66c3710",
         "7b0c785e27e8ad3f8223207104725dd4"),
    )
    for native in (True, False):
        out = bytearray(16)
        for key, plain, cipher_text in vectors:
            cipher = aes.AES128(h(key), native=native)
            assert cipher.decrypt_block(h(cipher_text), out) is out
            assert bytes(out) == h(plain), (native, key)


def test_aes_decrypt_after_encrypt_on_one_object_round_trips():
    # cryptolib refuses to mix directions on one object; AES128 keeps them apart
    for native in (True, False):
        cipher = aes.AES128(h("000102030405060708090a0b0c0d0e0f"), native=native)
        block = bytes(range(16))
        for _ in range(3):
            enc = bytes(cipher.encrypt_block(block))
            assert bytes(cipher.decrypt_block(enc)) == block
            block = enc
    try:
        aes.AES128(bytes(16)).decrypt_block(bytes(17))
    except ValueError:
        pass
    else:
        assert False, "accepted a 17-byte block"
