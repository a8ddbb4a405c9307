"""What the hub validates when it starts, validated without starting anything.

`anju config check` runs `check(site)` on a loaded site file, so a bad
`hub.upstream` (with its TLS files), `hub.webhook` (with its secret and CA
files), `hub.home_assistant`, `hub.http` or `face:` section is found before the
service restarts into the error. Each check is the function the hub itself
calls for that section when it starts:

    hub                 the keys it may hold (HUB_KEYS), hub.mqtt (with the hub's
                        login: hub/ingest/login.py), hub.ble,
                        hub.database, hub.registry, hub.kek_file (here)
    hub.upstream        hub/forward/outbox.py  parse_upstream (tls: tls_context)
    hub.webhook         hub/forward/webhook.py    parse_config
    hub.home_assistant  hub/forward/discovery.py  parse_config
    hub.http            hub/web/http.py       parse_config
    face                hub/face/host.py  load

Files named in the configuration are read (secret, certificates, keys); this
module never opens a connection, a database or a camera, and writes nothing.
"""
from hub import ConfigError
from hub.config.values import flag, host_port, refuse_unknown_keys, section, where_in
from hub.ingest.login import LOGIN_KEYS, parse_login
from hub.ingest.mqtt import INGEST_MODES

# what may stand directly under `hub:` (read by host_tools/cli.py `hub run`,
# hub/registry/db.py, hub/forward/outbox.py, hub/components.py, hub/service.py)
HUB_KEYS = ("mqtt", "upstream", "webhook", "home_assistant", "http", "ble", "database",
            "registry", "kek_file", "ota")


def _mapping(hubcfg, key, allowed):
    return section(hubcfg.get(key), allowed, "hub." + key,
                   at=where_in(hubcfg, key, "hub." + key))


def _site_broker(hubcfg, site_id):
    """`hub.mqtt` {host, port, ingest, username, password | password_file, tls}:
    the site broker the devices publish to, where the hub's MQTT client runs
    (hub/ingest/mqtt.py), and the hub's login to it (hub/ingest/login.py)."""
    node = _mapping(hubcfg, "mqtt", ("host", "port", "ingest") + LOGIN_KEYS)
    host_port(node, "hub.mqtt")
    return parse_login(node, site_id)
    if "ingest" in node and node["ingest"] not in INGEST_MODES:
        raise ConfigError("%s: key 'ingest': '%s'; allowed: %s (the first is the default)"
                          % (where_in(node, "ingest", "hub.mqtt"), node["ingest"],
                             ", ".join(INGEST_MODES)))


def _plain(hubcfg):
    flag(_mapping(hubcfg, "ble", ("enabled",)), "enabled", "hub.ble", False)
    for key in ("database", "kek_file"):
        value = hubcfg.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError("%s: expected a file path" % where_in(hubcfg, key, "hub." + key))
    flag(hubcfg, "registry", "hub", False)


def check(site):
    """Raise ConfigError (naming file, line and key) for the first invalid
    section; return the names of the sections that were checked."""
    hubcfg = site.hub or {}
    refuse_unknown_keys(hubcfg, HUB_KEYS, "in hub")
    login = _site_broker(hubcfg, site.site_id)
    _plain(hubcfg)
    for key in ("upstream", "webhook", "home_assistant"):
        if hubcfg.get(key) is not None and not isinstance(hubcfg[key], dict):
            raise ConfigError("%s: must be a mapping of keys to values"
                              % where_in(hubcfg, key, "hub." + key))
    checked = ["hub"]
    from hub.forward.upstream import parse_upstream
    upstream = parse_upstream(hubcfg.get("upstream"))
    checked.append("hub.upstream" + (" (TLS)" if upstream["tls"] is not None else ""))
    webhook = hubcfg.get("webhook")
    if webhook is not None:
        from hub.forward.webhook import parse_config as parse_webhook
        parse_webhook(webhook)
        checked.append("hub.webhook")
    if not upstream["enabled"] and webhook is None:
        # what hub/forward/outbox.py build_forwarders refuses
        raise ConfigError("%s: no forwarding target: hub.upstream is disabled and there is no "
                          "hub.webhook" % where_in(hubcfg, "upstream", "hub"))
    if hubcfg.get("home_assistant") is not None:
        from hub.forward.discovery import parse_config as parse_home_assistant
        parse_home_assistant(hubcfg["home_assistant"])
        checked.append("hub.home_assistant")
    if hubcfg.get("http") is not None:
        from hub.web.http import parse_config as parse_http
        parse_http(hubcfg["http"], where_in(hubcfg, "http", "hub.http"))
        checked.append("hub.http")
    if hubcfg.get("ota") is not None:
        from hub.ota import OtaError
        from hub.ota.server import parse_config as parse_ota
        try:
            parse_ota(site)
        except OtaError as exc:
            raise ConfigError(str(exc)) from exc
        checked.append("hub.ota")
    if site.face is not None:
        from hub.face import host as face_host
        face_host.load(site.face)
        checked.append("face")
    # the site broker's login, said so the operator sees an anonymous hub (docs/broker.md)
    checked.append("hub.mqtt (%s)" % ("no login: the broker must allow anonymous clients"
                                      if login is None else "login %s%s" % (
                                          login.username, ", TLS" if login.tls else "")))
    return checked
