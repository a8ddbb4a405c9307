"""Who may do what: the role -> permission table of the HTTP API, as data.

Each route of hub/web/http.py names one permission (docs/http_api.md has the
matrix as a table). `None` as a route's permission means open to anyone: only
`/health`, the login route, the console's files and, on a hub with visitors,
the resident visit routes are (those check a resident token themselves,
hub/visitors/routes.py). Everything that changes state or returns
personal data (residents' names and phones, the access log, faces) needs a
permission that only the roles with a reason to have it hold.

Pure data and pure functions; no I/O.
"""

ROLES = ("admin", "staff", "police_liaison", "installer", "read_only", "responder")

ROLE_TITLES = {
    "admin": "administrator: everything, accounts included",
    "staff": "property staff: alarms, registry (no import), faces, access log, visits (masked)",
    "police_liaison": "police liaison: alarms, the residents concerned, visitors in full, "
                      "the visitor watch list",
    "installer": "installer: devices (add, keys, state), no residents",
    "read_only": "read-only: alarms, devices and the site plan; no personal data",
    "responder": "responder on duty: reports its own position (account name = responder id)",
}

# permission -> what it allows (also the documentation's wording)
PERMISSIONS = {
    "hub.metrics": "read the Prometheus metrics (counts only)",
    "alarms.read": "list and read alarms, their transitions and the alarm audit",
    "alarms.act": "acknowledge, dispatch, note and resolve alarms",
    "forwarding.read": "list dead letters",
    "forwarding.requeue": "re-queue dead letters",
    "devices.read": "read devices' reported state",
    "access_log.read": "read the access log (face events, visitors)",
    "faces.read": "list enrolled persons (names)",
    "faces.write": "enrol and delete persons",
    "faces.identify": "identify a photo",
    "site.read": "read buildings and flats of the registry",
    "site.write": "add, change and remove buildings and flats (rules of a flat)",
    "residents.read": "read residents (names, phones)",
    "residents.write": "add, change and remove residents",
    "registry_devices.read": "read the registry's devices (never their keys)",
    "registry_devices.write": "add, change (keys) and remove devices",
    "registry.export": "export the whole site (residents included)",
    "registry.import": "replace the whole site by an import",
    "registry.audit": "read the registry's change log",
    "locks.read": "read a smart lock's users and credentials (residents, states)",
    "locks.operate": "lock and unlock a smart lock",
    "locks.credentials": "add and remove credentials on a smart lock",
    "ota.update": "publish signed firmware releases and update devices over the air",
    "accounts.manage": "list accounts and read the account audit",
    "site.plan": "upload the site plan's image",
    "responders.report": "report a responder's position on the plan",
    "visitors.read": "list and read visits (the visitor's ID number, phone and plate masked)",
    "visitors.personal": "see visitors' ID numbers, phones and plates in full",
    "visitors.register": "register visits for any flat, hand out passes, issue resident tokens",
    "visitors.approve": "approve, refuse and revoke visits",
    "visitors.watch": "put ID numbers and plates on the visitor watch list",
    "self": "log out, change one's own password, see one's own session",
}

_READ_PLAN = {"hub.metrics", "alarms.read", "devices.read", "site.read", "self"}

ROLE_PERMISSIONS = {
    "admin": frozenset(PERMISSIONS),
    "staff": frozenset(_READ_PLAN | {
        "alarms.act", "forwarding.read", "forwarding.requeue", "access_log.read",
        "faces.read", "faces.write", "faces.identify", "site.write", "residents.read",
        "residents.write", "registry_devices.read", "registry.export", "registry.audit",
        "locks.read", "locks.operate", "locks.credentials", "visitors.read",
        "visitors.register", "visitors.approve"}),
    "police_liaison": frozenset(_READ_PLAN | {"alarms.act", "residents.read", "visitors.read",
                                              "visitors.personal", "visitors.watch"}),
    "installer": frozenset(_READ_PLAN | {"registry_devices.read", "registry_devices.write",
                                         "ota.update"}),
    "read_only": frozenset(_READ_PLAN),
    "responder": frozenset({"responders.report", "self"}),
}

# registry collection -> (read permission, write permission)
REGISTRY_KINDS = {
    "buildings": ("site.read", "site.write"),
    "flats": ("site.read", "site.write"),
    "residents": ("residents.read", "residents.write"),
    "devices": ("registry_devices.read", "registry_devices.write"),
}


def allowed(role, permission):
    """True when `role` holds `permission` (`None` = an open route)."""
    if permission is None:
        return True
    if permission not in PERMISSIONS:
        raise KeyError("unknown permission %r" % permission)
    return permission in ROLE_PERMISSIONS.get(role, ())


def check_table():
    """The table's own consistency (run by the tests): every role has a row,
    every permission in a row exists, and only admin manages accounts."""
    problems = []
    for role in ROLES:
        if role not in ROLE_PERMISSIONS:
            problems.append("role %s has no permissions row" % role)
    for role, perms in ROLE_PERMISSIONS.items():
        if role not in ROLES:
            problems.append("row for unknown role %s" % role)
        problems.extend("%s: unknown permission %s" % (role, p) for p in sorted(perms - set(PERMISSIONS)))
        if "accounts.manage" in perms and role != "admin":
            problems.append("%s may manage accounts" % role)
    for kind, pair in REGISTRY_KINDS.items():
        problems.extend("%s: unknown permission %s" % (kind, p) for p in pair if p not in PERMISSIONS)
    return problems
