"""Password hashing (argon2id, argon2-cffi) and the password policy.

argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes, 4
lanes) cost ~50-100 ms on a Raspberry Pi 4: cheap for a login, dear for a
guesser. When the defaults change with an upgrade, `verify` says the stored
hash needs rehashing and the accounts database replaces it at the next
successful login. Hashing is CPU-bound: the HTTP server calls it in an
executor, never on the hub's loop.
"""
import argon2

from hub.auth import AccountInvalid

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a login request cheap
MIN_DISTINCT = 5

# the worst offenders of public breach lists that are long enough to pass the length rule
_COMMON = frozenset({
    "123456789012", "1234567890123", "12345678901234", "qwertyuiopas", "qwerty123456",
    "password1234", "password12345", "passwordpassword", "iloveyou1234", "adminadmin123",
    "administrator", "administrator1", "letmein12345", "changeme1234", "welcome12345",
    "anjuanjuanju", "anju12345678", "000000000000", "111111111111", "abcdefghijkl",
    "abc123456789", "qwertyqwerty", "1q2w3e4r5t6y", "zaq12wsxcde3",
})

_hasher = argon2.PasswordHasher(type=argon2.Type.ID)


def check_policy(password, account=None):
    """Raise AccountInvalid naming what is wrong with `password`; pure."""
    if not isinstance(password, str) or not password.strip():
        raise AccountInvalid("the password is empty")
    if len(password) < MIN_LENGTH:
        raise AccountInvalid("the password is too short: at least %d characters" % MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise AccountInvalid("the password is too long: at most %d characters" % MAX_LENGTH)
    if len(set(password)) < MIN_DISTINCT:
        raise AccountInvalid("the password repeats too few characters: use at least %d "
                             "different ones" % MIN_DISTINCT)
    lowered = password.lower()
    if lowered in _COMMON:
        raise AccountInvalid("the password is on the list of common passwords")
    if account and account.lower() in lowered:
        raise AccountInvalid("the password contains the account name")


def hash_password(password):
    """An argon2id PHC string (`$argon2id$v=19$m=...`)."""
    return _hasher.hash(password)


def verify(stored_hash, password):
    """(ok, needs_rehash); never raises for a wrong password or a damaged hash."""
    try:
        _hasher.verify(stored_hash, password)
    except argon2.exceptions.VerificationError:
        return False, False
    except argon2.exceptions.InvalidHashError:
        return False, False
    return True, _hasher.check_needs_rehash(stored_hash)


_DUMMY = None


def burn(password):
    """Spend what a verification costs, for an unknown account (no timing oracle)."""
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = _hasher.hash("not an account password")
    verify(_DUMMY, password)
