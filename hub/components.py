"""Optional hub components, built from the site configuration.

A component is an object with `async start()` and `async stop()` (and
optionally `idle()` for the simulator's settle check). `build(hub)` returns the
ones this site needs; HubService starts them after its core tasks and stops
them before. Each component lives in its own module and is imported only when
it is enabled, so a hub without it pays nothing.
"""


def build(hub):
    components = []
    from hub.alarms import commands
    # lifecycle commands: from the platform on the upstream broker, and over the
    # HTTP API (hub/alarms/commands.py); HTTP only on a hub without an MQTT upstream
    if commands.mqtt_upstream(hub) is not None:
        components.append(commands.UpstreamCommands(hub))
    else:
        components.append(commands.LocalCommands(hub))
    if any(d.kind == "smoke_sensor" for d in hub.site.devices.values()):
        # interconnect commands to smoke sensors (hub/forward/interconnect.py)
        from hub.forward.interconnect import Interconnect
        components.append(Interconnect(hub))
    if any(d.kind == "smart_lock" for d in hub.site.devices.values()):
        # lock commands: lock/unlock, users and credentials, the lock's clock
        # (hub/locks/sender.py), on the same command link as the interconnect
        from hub.locks.sender import LockCommandSender
        components.append(LockCommandSender(hub))
    ha = (getattr(hub.site, "hub", None) or {}).get("home_assistant")
    if ha is not None:
        # Home Assistant MQTT discovery on the site broker (hub/forward/discovery.py)
        from hub.forward.discovery import HomeAssistantDiscovery, parse_config
        ha = parse_config(ha)
        if ha["enabled"]:
            components.append(HomeAssistantDiscovery(hub, prefix=ha["discovery_prefix"]))
    if getattr(hub.site, "visitors", None) is not None:
        # the visitor service (hub/visitors/component.py)
        from hub.visitors.component import VisitorService
        components.append(VisitorService(hub))
    if (getattr(hub.site, "hub", None) or {}).get("ota") is not None:
        # OTA offers and chunks to devices (hub/ota/server.py)
        from hub import ConfigError
        from hub.ota import OtaError
        from hub.ota.server import OtaServer, parse_config as parse_ota
        try:
            cfg = parse_ota(hub.site)
        except OtaError as exc:
            raise ConfigError(str(exc)) from exc
        components.append(OtaServer(hub, cfg))
    if getattr(hub.site, "responders", None):
        # responders' positions on the site broker (hub/responders/mqtt.py)
        from hub.responders.mqtt import ResponderPositions
        components.append(ResponderPositions(hub))
    return components
