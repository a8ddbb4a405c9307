"""The site's forwarding targets, built from its configuration: the upstream
MQTT 5 broker and/or the HTTPS webhook. The one place that knows both, so the
targets need not know each other."""
import logging

from hub import ConfigError
from hub.forward.upstream import UpstreamForwarder, parse_upstream
from hub.forward.webhook import WebhookForwarder, parse_config

log = logging.getLogger("anju.hub.forwarder")

def build_forwarders(store, site, upstream, clock, wakeup, webhook=None):
    """The site's targets from `upstream` ({host, port, topic_prefix, tls?, login?};
    `enabled: false` or no host = no MQTT target) and `webhook` (else the
    site's `hub.webhook`). Sets `store.targets` so every alarm document is
    queued once per target. At least one target is required."""
    hubcfg = getattr(site, "hub", None) or {}
    forwarders = []
    from_file = parse_upstream(hubcfg.get("upstream"))
    enabled = upstream.get("enabled", from_file["enabled"]) if upstream else False
    if enabled and upstream.get("host"):
        tls = upstream.get("tls", from_file["tls"])
        forwarders.append(UpstreamForwarder(store, upstream["host"], int(upstream["port"]),
                                            "anju-hub-%s-upstream" % site.site_id, wakeup,
                                            tls=tls, login=upstream.get("login")))
    webhook = webhook if webhook is not None else hubcfg.get("webhook")
    if webhook is not None:
        forwarders.append(WebhookForwarder(store, parse_config(webhook), clock, wakeup))
    if not forwarders:
        raise ConfigError("hub: no forwarding target: configure hub.upstream and/or hub.webhook")
    store.targets = tuple(f.target for f in forwarders)
    for target, rows in store.outbox_targets().items():
        if target not in store.targets:
            log.error("outbox rows wait for a target that is no longer configured",
                      extra={"target": target, "rows": rows})
    return forwarders
