"""Accounts, roles, sessions and API tokens of the hub's HTTP API
(docs/http_api.md, "Authentication").

    roles.py      the role -> permission table (pure data) and its checks
    passwords.py  argon2id hashing and the password policy
    accounts.py   the accounts database: accounts, tokens, sessions, audit
    throttle.py   login rate limiting (pure, on the injected clock)
    origin.py     Host and Origin checks (pure)

Exceptions::

    HubError
    └── AuthError          an account operation was refused
        ├── AccountInvalid     a bad name, role or password (message says which)
        ├── AccountNotFound    no such account or token
        └── AccountConflict    the name is taken, or the change would lock admins out

Never logs a password, a token, a session id or a CSRF token; only their
hashes are stored.
"""
from hub import HubError


class AuthError(HubError):
    """Root of the account errors."""


class AccountInvalid(AuthError):
    """A bad account name, role or password."""


class AccountNotFound(AuthError):
    """No such account or token."""


class AccountConflict(AuthError):
    """The name is taken, or the change would leave no admin."""
