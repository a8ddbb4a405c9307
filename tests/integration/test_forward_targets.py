"""Both targets on a real hub: every alarm is queued once per target, and a
webhook that keeps failing does not hold back the MQTT upstream; when it
recovers, it gets the same documents, in order."""
import asyncio

from hub.forward.upstream import UpstreamForwarder
from hub.forward.webhook import WebhookForwarder
from tests.integration import hubkit
from tests.integration.test_webhook import SECRET, Platform as WebhookPlatform
from tests.integration.test_webhook import pki, serve  # noqa: F401  (fixtures)


async def test_a_failing_webhook_does_not_hold_the_mqtt_upstream(
        tmp_path, broker, upstream_broker, pki, serve):  # noqa: F811
    srv = serve([503] * 3)
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    webhook = {"url": "https://127.0.0.1:%d/alarms" % srv.server_address[1],
               "secret_file": str(secret), "timeout": 2, "ca": str(pki / "ca.pem")}
    platform = hubkit.Platform(upstream_broker)
    site = hubkit.site()
    from hub.clock import SystemClock
    from hub.service import HubService
    hub = HubService(site, tmp_path / "hub.db", SystemClock(),
                     {"host": broker.host, "port": broker.port},
                     {"host": upstream_broker.host, "port": upstream_broker.port},
                     webhook=webhook)
    await hub.start(connect_timeout=10)
    try:
        kinds = sorted(type(f).__name__ for f in hub.forwarders)
        assert kinds == sorted([UpstreamForwarder.__name__, WebhookForwarder.__name__])
        assert hub.store.targets == ("mqtt", "webhook")
        await hubkit.wait_for(lambda: hub.links()["upstream"])
        doc = hubkit.raise_alarm(hub, "cause-1")
        await hubkit.wait_for(lambda: platform.alarm_versions(doc["id"]), what="MQTT delivery")
        # the MQTT copy is through while the webhook is still failing and backing off
        await hubkit.wait_for(lambda: hub.store.outbox_depth("mqtt") == 0,
                              what="the MQTT delivery committed")
        assert hub.store.outbox_depth("webhook") == 1
        await hubkit.wait_for(lambda: hub.store.outbox_depth() == 0, timeout=15,
                              what="the webhook after its retries")
        keys = [k for k, _, ok in srv.requests if ok]
        assert keys == ["%s:1" % doc["id"]] * 4  # three 503s, then delivered
    finally:
        await hub.stop()
        platform.close()


async def test_at_least_one_target_is_required(tmp_path, broker):
    from hub import ConfigError
    from hub.clock import SystemClock
    from hub.service import HubService
    import pytest
    with pytest.raises(ConfigError, match="no forwarding target"):
        HubService(hubkit.site(), tmp_path / "hub.db", SystemClock(),
                   {"host": broker.host, "port": broker.port}, {"enabled": False})
