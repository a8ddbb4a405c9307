"""Host and Origin checks of the HTTP API; pure.

A browser on a foreign page can send a request to the hub (a form POST, a
fetch with `text/plain`), and DNS rebinding can even make the page's own name
point at the hub. So the `Host` a request names must be one of the names the
hub is configured to be known by, and an `Origin`, when the client sends one,
must be the hub's own (scheme, allowed host, port). Non-browser clients send
no `Origin` and are judged by their credentials alone.
"""
import urllib.parse

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def split_host(value):
    """'name:port' / '[v6]:port' -> (lowercase name, port or None); None if malformed."""
    if not value or any(c in value for c in " /\\@?#"):
        return None
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
    elif value.count(":") > 1:  # a bare IPv6 address (configuration); no port
        name, rest = value, ""
    else:
        name, _, port = value.partition(":")
        rest = ":" + port if _ else ""
    if not name:
        return None
    port = None
    if rest:
        if not rest.startswith(":") or not rest[1:].isdigit():
            return None
        port = int(rest[1:])
    return name.rstrip("."), port


def host_allowed(host_header, allowed_hosts):
    parsed = split_host(host_header)
    return parsed is not None and parsed[0] in allowed_hosts


def origin_allowed(origin, host_header, allowed_hosts, scheme):
    """An absent Origin is allowed; a present one must name this hub as the
    request reached it (scheme and Host)."""
    if origin is None:
        return True
    try:
        parts = urllib.parse.urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        return False
    if parts.scheme != scheme:
        return False
    try:
        port = parts.port
    except ValueError:
        return False
    mine = split_host(host_header)
    name = (parts.hostname or "").rstrip(".")
    if mine is None or name not in allowed_hosts or name != mine[0]:
        return False
    default = 443 if scheme == "https" else 80
    return (port or default) == (mine[1] or default)
