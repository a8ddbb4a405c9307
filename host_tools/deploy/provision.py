"""Provisioning: a device's keys, Wi-Fi and broker login into its config.json
on the board and its keys into the hub's registry, as one step.

The two stores cannot share a transaction, so the order makes a failure
leave neither changed:

1. the new config.json is written to the board as `config.json.part` and
   hashed there (the board's config.json is still the old one);
2. the registry takes the keys in one SQLite transaction (an invalid change
   or a failed commit: the `.part` is removed, nothing changed);
3. one rename on the board makes `config.json.part` the config.json.

If the board stops answering at step 3 the registry is put back to the keys
it held (a second transaction) and the error says so: the board holds its
old config.json (LittleFS renames atomically) or, if the rename did land
before the line went, the new one; running provision again settles either.

Keys are never printed (unless --show-keys), never logged, never in an error.
"""
import getpass
import json
import secrets

from host_tools.deploy import DeployFailed, Refused
from host_tools.deploy.deploy import check_config

CONFIG = "config.json"


def actor():
    return "provision:%s" % getpass.getuser()


def new_keys():
    """A fresh frame key (HMAC-SHA256) and BTHome bind key (AES-CCM)."""
    return {"frame_key": secrets.token_bytes(32).hex(), "bind_key": secrets.token_bytes(16).hex()}


def device_config(site_id, dev, keys, broker_host, broker_port, broker_password, wifi_ssid,
                  wifi_password):
    """config.json for one device (pure; anju.config validates it)."""
    cfg = {"device_id": dev.id, "site": site_id, "kind": dev.kind, "transport": dev.transport,
           "frame_key": keys["frame_key"], "bind_key": keys["bind_key"]}
    if dev.heartbeat_s:
        cfg["heartbeat_s"] = int(dev.heartbeat_s)
    if dev.transport == "mqtt":
        cfg["mqtt"] = {"host": broker_host, "port": int(broker_port)}
        if broker_password is not None:
            cfg["mqtt"]["password"] = broker_password
        cfg["wifi"] = {"ssid": wifi_ssid}
        if wifi_password is not None:
            cfg["wifi"]["password"] = wifi_password
    return cfg


def open_registry(db, kek_file):
    from hub.clock import SystemClock
    from hub.registry import kek
    from hub.registry.db import Registry, RegistryError
    try:
        return Registry.open(db, kek_file, SystemClock())
    except (kek.KekError, RegistryError) as exc:
        raise Refused(str(exc)) from exc


def provision(reg, link, device_id, broker, wifi, fresh_keys=True, by=None, out=print):
    """Steps 1-3 above; returns (config, keys). `broker` is (host, port,
    password or None), `wifi` (ssid, password or None)."""
    from hub import StoreError
    from hub.registry.db import RegistryError
    try:
        site = reg.site()
    except RegistryError as exc:
        raise Refused(str(exc)) from exc
    dev = site.devices.get(device_id)
    if dev is None:
        raise Refused("no device '%s' in the registry: add it first (anju registry add device %s "
                      "kind=... flat=... transport=...)" % (device_id, device_id))
    old = {"frame_key": dev.frame_key.hex() if dev.frame_key else None,
           "bind_key": dev.bind_key.hex() if dev.bind_key else None}
    if fresh_keys:
        keys = new_keys()
    else:
        keys = {"frame_key": old["frame_key"],
                "bind_key": old["bind_key"] or secrets.token_bytes(16).hex()}
    config = device_config(site.site_id, dev, keys, broker[0], broker[1], broker[2], wifi[0],
                           wifi[1])
    check_config(config, device_id)
    data = json.dumps(config).encode()
    # 1. staged on the board
    link.write(CONFIG, data, rename=False)
    from host_tools.deploy import plan
    staged = link.files().get(CONFIG + ".part")
    if staged is None or staged[1] != plan.sha256(data):
        link.remove(CONFIG + ".part")
        raise DeployFailed("%s.part on the board does not verify; nothing was changed" % CONFIG)
    # 2. the registry
    try:
        reg.update("devices", device_id, dict(keys), by or actor())
    except (RegistryError, StoreError) as exc:
        link.remove(CONFIG + ".part")
        raise Refused("the registry refused the keys (%s); the board was left as it was"
                      % exc) from exc
    # 3. the board's config
    try:
        link.rename(CONFIG)
    except DeployFailed as exc:
        try:
            reg.update("devices", device_id, old, by or actor())
        except (RegistryError, StoreError) as exc2:
            raise DeployFailed("%s, and the registry could not be put back (%s): run "
                               "anju provision again" % (exc, exc2)) from exc
        raise DeployFailed("%s; the registry was put back to the keys it held: run anju "
                           "provision again" % exc) from exc
    out("provisioned %s: keys in the registry and in config.json on the board%s"
        % (device_id, " (new keys)" if fresh_keys else " (the registry's keys)"))
    return config, keys
