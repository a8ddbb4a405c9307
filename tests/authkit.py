"""Credentials for tests of the HTTP API: a token-only account of a role in
the running hub's accounts database, and its `Authorization` header."""


def bearer(hub, role="admin", name=None):
    """{"Authorization": "Bearer <token>"} of a token of `name` (made with `role`);
    the same one for the same hub, role and name."""
    name = name or "test-%s" % role
    made = hub.__dict__.setdefault("_test_bearers", {})
    if (role, name) in made:
        return made[(role, name)]
    if hub.accounts.account(name) is None:
        hub.accounts.add(name, role, None, actor="test")
    _, token = hub.accounts.add_token(name, "tests")
    made[(role, name)] = {"Authorization": "Bearer " + token}
    return made[(role, name)]
