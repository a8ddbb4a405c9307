"""The hub's OTA component: answers the devices on `anju/<site>/+/ota/up`.

It runs in its own MQTT client's thread (client id `anju-hub-<site>-ota`),
not on the hub's loop, so a device waiting for a chunk is answered while the
loop is busy (the simulator runs devices on that loop's thread). For a device
report (FW_REPORT) it stores what the device runs, moves the device's target
on, commits, and only then publishes the acknowledgement and the offer (or
"none"); for a chunk request it serves the bytes of a release the device is
targeted with. A frame that does not verify, or a report whose counter is not
above the last one stored, changes nothing and is counted.

Operator actions (`publish_release`, `update`, `status`) come from the HTTP
API (hub/ota/api.py) and need the `ota.*` permissions there.
"""
import datetime
import logging
import re
import zoneinfo
from collections import Counter

import paho.mqtt.client as paho

from hub.ota import OtaError, book as ota_book, plan, release as ota_release, wire

log = logging.getLogger("anju.hub.ota")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# the apps that run the OTA exchange (report, confirm, fetch): docs/ota.md
UPDATABLE = ("door_sensor", "smoke_sensor", "smart_lock")


def parse_config(site):
    """The `hub.ota` section: {"release_pubkey": 64 hex digits}, or None."""
    node = (getattr(site, "hub", None) or {}).get("ota")
    if node is None:
        return None
    if not isinstance(node, dict):
        raise OtaError("hub.ota must be a mapping")
    key = node.get("release_pubkey")
    if not isinstance(key, str) or not _HEX64.match(key.lower()):
        raise OtaError("hub.ota: key 'release_pubkey' must be the 64 hex digits "
                       "`anju release keygen` printed")
    unknown = sorted(set(node) - {"release_pubkey"})
    if unknown:
        raise OtaError("hub.ota: unknown key '%s'; allowed: release_pubkey" % unknown[0])
    return {"release_pubkey": key.lower()}


class OtaServer:
    def __init__(self, hub, cfg):
        self.hub = hub
        self.site = hub.site
        self.pubkey = cfg["release_pubkey"]
        self.book = ota_book.OtaBook(ota_book.path_for(hub.store.path))
        self.tz = zoneinfo.ZoneInfo(self.site.timezone)
        self.rejected = Counter()
        self.served = Counter()  # "chunks", "bytes", "reports", "offers"
        self.served_to = Counter()  # device -> chunk bytes sent to it
        self._chunk_counters = {}  # device -> last chunk request counter (replays are dropped)
        self._progress = {}  # device -> percent of the release served so far
        self._last_word = {}  # device -> when its last OTA frame verified (this run)
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-hub-%s-ota" % self.site.site_id)
        if hub.mqtt.login is not None:
            hub.mqtt.login.apply(self._client)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        topic = "anju/%s/+/ota/up" % self.site.site_id
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self._client.on_message = self._on_message
        hub.ota = self

    async def start(self):
        host, port = self.hub._mqtt_address
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    async def stop(self):
        self._client.disconnect()
        self._client.loop_stop()
        reset = getattr(self._client, "_reset_sockets", None)
        if reset is not None:
            reset()  # paho 2.2 keeps loop_start()'s socket pair open otherwise
        self.book.close()

    def idle(self):
        return True  # it answers in its own thread; nothing of it waits on the loop

    # ---- operator actions ------------------------------------------------------------
    def publish_release(self, doc):
        """A release uploaded by `anju fleet update`: checked, then stored."""
        rel = ota_release.from_upload(doc, self.pubkey)
        self.book.add_release(rel, self.hub.clock.now())
        log.info("release published", extra={"release": rel.id, "app": rel.app,
                                              "version": rel.version})
        return rel.describe()

    def update(self, release_id, devices, window):
        """Target `devices` with a published release, offered inside `window`."""
        if not isinstance(release_id, str) or self.book.release(release_id) is None:
            raise OtaError("release: no published release %r" % (release_id,))
        rel = self.book.release(release_id)
        plan.parse_window(window)
        if not isinstance(devices, list) or not devices:
            raise OtaError("devices must be a non-empty list of device ids")
        for did in devices:
            dev = self.site.devices.get(did) if isinstance(did, str) else None
            if dev is None:
                raise OtaError("devices: unknown device %r" % (did,))
            if dev.kind not in UPDATABLE:
                raise OtaError("devices: %s is a %s; only %s take updates so far (docs/ota.md)"
                               % (did, dev.kind, ", ".join(UPDATABLE)))
            if dev.kind != rel.app:
                raise OtaError("devices: %s is a %s, the release is for %s"
                               % (did, dev.kind, rel.app))
            if dev.transport != "mqtt":
                raise OtaError("devices: %s reports over %s; updates go over MQTT"
                               % (did, dev.transport))
        self.book.set_targets(sorted(set(devices)), release_id, rel.version, window,
                              self.hub.clock.now())
        log.info("update planned", extra={"release": release_id, "devices": len(devices),
                                          "window": window})
        return {"release": release_id, "version": rel.version, "devices": sorted(set(devices)),
                "window": window}

    def withdraw(self, devices, by):
        """Stop updating `devices`: their open targets become `withdrawn` (no
        more offers; a chunk request is answered with an error, so the device
        drops its copy). A device already running the release keeps it."""
        if not isinstance(devices, list) or not devices:
            raise OtaError("devices must be a non-empty list of device ids")
        for did in devices:
            if not isinstance(did, str) or did not in self.site.devices:
                raise OtaError("devices: unknown device %r" % (did,))
            target = self.book.target(did)
            if target is None or target["state"] not in plan.OPEN:
                raise OtaError("devices: %s has no update under way (%s)" % (
                    did, "no target" if target is None else "its target is " + target["state"]))
        now = self.hub.clock.now()
        done = sorted(set(devices))
        for did in done:
            self.book.set_target_state(did, "withdrawn", detail="withdrawn by " + by, at=now)
        log.info("update withdrawn", extra={"devices": len(done), "by": by})
        return {"withdrawn": done}

    def status(self, device_ids=None):
        now = self.hub.clock.now()
        out = []
        for did in sorted(device_ids or self.site.devices):
            dev = self.site.devices.get(did)
            if dev is None or dev.transport != "mqtt":
                continue
            fw, target = self.book.firmware(did), self.book.target(did)
            heard = self._last_word.get(did, fw["reported_at"] if fw else None)
            stalled = plan.stalled_for(target, heard, dev.heartbeat_s, now)
            if target is not None:
                target["stalled_s"] = None if stalled is None else int(stalled)
            out.append({"device": did, "kind": dev.kind, "firmware": fw, "target": target})
        return out

    def firmware(self, device_id):
        return self.book.firmware(device_id)

    # ---- the devices (MQTT thread) --------------------------------------------------
    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        if len(parts) != 5:
            return
        did = parts[2]
        try:
            self._handle(did, bytes(msg.payload))
        except Exception:  # a bug here must not stop the client's thread
            log.exception("OTA message not handled", extra={"device": did})

    def _handle(self, did, payload):
        dev = self.site.devices.get(did)
        if dev is None or dev.frame_key is None:
            self.rejected["unknown_device"] += 1
            return
        try:
            mtype, counter, body = wire.verify(did, dev.frame_key, payload)
            self._last_word[did] = self.hub.clock.now()
            if mtype == wire.T_FW_REPORT:
                self._report(dev, counter, wire.decode_report(body))
            else:
                self._chunk(dev, counter, wire.decode_chunk_request(body))
        except wire.Rejected as exc:
            self.rejected[exc.reason] += 1
            log.warning("OTA frame rejected: %s %s", exc.reason, exc.detail,
                        extra={"device": did, "reason": exc.reason})

    def _down(self, did):
        return "anju/%s/%s/ota/down" % (self.site.site_id, did)

    def _window_open(self, target):
        now = datetime.datetime.fromtimestamp(self.hub.clock.now(), self.tz)
        return plan.in_window(plan.parse_window(target["window"]), now)

    def _report(self, dev, counter, report):
        now = self.hub.clock.now()
        last = self.book.last_report_counter(dev.id)
        if counter < last:
            raise wire.Rejected("replayed", "report counter %d, last %d" % (counter, last))
        if counter > last:
            self.book.store_report(dev.id, counter, report, now)
            self.served["reports"] += 1
            target = self.book.target(dev.id)
            if target is not None and target["state"] in plan.OPEN:
                new = plan.state_after_report(target["version"], report)
                if new is not None and new != target["state"]:
                    self.book.set_target_state(dev.id, new, 100 if new == "done" else
                                               report["percent"], at=now)
                    log.info("update progress", extra={"device": dev.id, "state": new,
                                                       "version": report["version"]})
            for f in report["failures"]:
                log.warning("update failed on the device", extra={
                    "device": dev.id, "version": f["version"], "reason": f["reason"]})
        # stored (or a re-delivery of the stored one): acknowledge, then offer
        self._client.publish(self._down(dev.id), wire.ack(dev.frame_key, dev.id, counter), qos=1)
        target = self.book.target(dev.id)
        if (target is not None and plan.should_offer(target, report, self._window_open(target))
                and not self.book.failed_version(dev.id, target["version"])):
            rel = self.book.release(target["release"])
            self._client.publish(self._down(dev.id), wire.offer(rel.blob), qos=1)
            self.served["offers"] += 1
            if target["state"] == "waiting":
                self.book.set_target_state(dev.id, "offered", at=now)
        else:
            self._client.publish(self._down(dev.id), wire.NONE, qos=1)

    def _chunk(self, dev, counter, req):
        rid, index, offset, length = req
        if counter <= self._chunk_counters.get(dev.id, 0):
            raise wire.Rejected("replayed", "chunk request counter %d" % counter)
        self._chunk_counters[dev.id] = counter
        target = self.book.target(dev.id)
        rel = self.book.release(rid.hex())
        if rel is None or target is None or target["release"] != rel.id \
                or target["state"] not in plan.OPEN:
            self._client.publish(self._down(dev.id),
                                 wire.error(rid, "release not offered to this device"), qos=1)
            return
        if index >= len(rel.data) or offset > len(rel.data[index]):
            raise wire.Rejected("bad_body", "chunk_req past the release's files")
        data = rel.data[index][offset:offset + length]
        self._client.publish(self._down(dev.id), wire.chunk(rid, index, offset, data), qos=1)
        self.served["chunks"] += 1
        self.served["bytes"] += len(data)
        self.served_to[dev.id] += len(data)
