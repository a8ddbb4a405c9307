"""The hub's login to the site broker: `hub.mqtt` {username, password or
password_file, tls {ca, cert?, key?}} (docs/broker.md).

`parse_login` checks the keys and reads the password file and the TLS files
(`anju config check` calls it too); `Login.apply` gives them to a paho client.
Every client the hub opens on the site broker (ingest, its receiver process,
Home Assistant discovery, interconnect, face unlock) logs in with the same
identity, `hub-<site>` unless `username` says otherwise, the name the
generated ACL (`anju broker config`) grants the hub's topics to.

The password never reaches a log, an error message or `repr`.
"""
from hub import ConfigError
from hub.config.values import where_in

LOGIN_KEYS = ("username", "password", "password_file", "tls")
MAX_PASSWORD = 256


def hub_username(site_id):
    """The hub's identity on its site broker (and in its client certificate,
    `anju certs hub <site>`)."""
    return "hub-%s" % site_id


class Login:
    """Credentials for one broker; picklable (the receiver process gets a copy)."""

    __slots__ = ("username", "password", "tls")

    def __init__(self, username, password=None, tls=None):
        self.username = username
        self.password = password
        self.tls = tls  # {ca, cert?, key?} as in the site file, or None

    def apply(self, client):
        """Set user name, password and TLS on a paho client before it connects."""
        client.username_pw_set(self.username, self.password)
        if self.tls is not None:
            from hub.forward.upstream import tls_context
            client.tls_set_context(tls_context(self.tls, "hub.mqtt.tls"))

    def __repr__(self):
        return "Login(%r, password=%s, tls=%s)" % (self.username,
                                                   "set" if self.password else "none",
                                                   "on" if self.tls else "off")


def parse_login(node, site_id, where="hub.mqtt"):
    """The login in a `hub.mqtt` mapping, or None when it names none (an
    anonymous broker, as in tests that do not exercise the ACL). Reads
    `password_file` and the TLS files; ConfigError names the key."""
    node = node or {}
    if not any(k in node for k in LOGIN_KEYS):
        return None
    username = node.get("username", hub_username(site_id))
    if not isinstance(username, str) or not username or any(c in username for c in "+#/\0:"):
        raise ConfigError("%s: key 'username': expected a user name without '+', '#', '/' or "
                          "':' (default %s)" % (where_in(node, "username", where),
                                                hub_username(site_id)))
    if "password" in node and "password_file" in node:
        raise ConfigError("%s: keys 'password' and 'password_file': give one of them"
                          % where_in(node, "password", where))
    password = None
    if "password" in node:
        password = node["password"]
        if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
            raise ConfigError("%s: key 'password': expected a non-empty string of at most %d "
                              "characters" % (where_in(node, "password", where), MAX_PASSWORD))
    elif "password_file" in node:
        password = _read_password(node, where)
    tls = node.get("tls")
    if tls is not None:
        from hub.forward.upstream import tls_context
        tls_context(tls, where + ".tls")  # the files exist and load
    if password is None and tls is None:
        raise ConfigError("%s: key 'username': needs 'password', 'password_file' or 'tls'"
                          % where_in(node, "username", where))
    return Login(username, password, tls)


def _read_password(node, where):
    path = node["password_file"]
    if not isinstance(path, str) or not path:
        raise ConfigError("%s: key 'password_file': expected a file path"
                          % where_in(node, "password_file", where))
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PASSWORD + 2)
    except OSError as exc:
        raise ConfigError("%s: key 'password_file': cannot read %s: %s"
                          % (where_in(node, "password_file", where), path,
                             exc.strerror or exc)) from exc
    try:
        password = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: key 'password_file': %s is not UTF-8 text"
                          % (where_in(node, "password_file", where), path)) from exc
    if not password or len(password) > MAX_PASSWORD or "\n" in password:
        raise ConfigError("%s: key 'password_file': %s must hold one line, the password "
                          "(1..%d characters)" % (where_in(node, "password_file", where), path,
                                                  MAX_PASSWORD))
    return password
