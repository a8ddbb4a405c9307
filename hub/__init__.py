"""anju hub: hears devices over MQTT and BLE, verifies, stores, runs the safety
rules and forwards alarms upstream until they are delivered.

Exceptions (each translated at its boundary with ``raise ... from exc``)::

    HubError
    ├── ConfigError        site configuration or scenario file is invalid
    ├── StoreError         the SQLite store cannot be opened or written
    └── TransportError     a broker or radio could not be reached in time

Rejected device frames are not exceptions: they are results, counted by reason.
"""


class HubError(Exception):
    """Root of the hub's exceptions."""


class ConfigError(HubError):
    """Invalid configuration; the message names the file, line and key."""


class StoreError(HubError):
    """The event store failed."""


class TransportError(HubError):
    """A broker or radio failed or timed out."""
