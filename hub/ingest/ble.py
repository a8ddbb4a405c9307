"""The hub's BLE receiver: bleak advertisements in, verified BTHome readings out.

`BleReceiver` scans with bleak (BlueZ on a Pi; `simulator.bleak_backend` in
tests, chosen by the scanner factory), hands every BTHome v2 advertisement
(service data UUID 0xFCD2) of a known device to `bthome-ble` with that
device's bind key, checks the library's flags and reports one result per
advertisement to `on_result`:

- `BleReading(device_id, address, counter, values, received_at, rssi)`, with
  `values` holding the objects this advertisement carried among `opening`
  (bool), `tamper` (bool), `battery` (int %), `voltage_mv` (int);
- `BleRejected(address, device_id, reason, received_at)`, reason one of
  `truncated`, `unknown_device`, `not_encrypted`, `bad_tag`, `bad_body`
  (docs/protocol.md). Advertisements without BTHome service data are
  somebody else's and are ignored.

Replay and repeats. The receiver does not decide freshness: the pipeline's
strictly increasing per-device counter in SQLite does. bthome-ble keeps an
in-memory counter and, for a lower counter, skips the advertisement while
leaving its success flags and previous values in place; so before every
update the receiver resets that counter (`reset_encryption_counter`) and
marks the parser "not verified yet" (`decryption_failed = True`, its
documented meaning), and only `decryption_failed is False` afterwards counts
as "this advertisement decrypted". An old advertisement replayed therefore
comes out as a reading with its old counter (the pipeline counts it
`replayed`). A byte-identical repeat of the last accepted advertisement (the
firmware repeats each one for its advertising window) is not decrypted again
and comes out as a reading with the same counter and values (the pipeline
counts it `duplicate`); it is never dropped here.

Errors: `BleError` (a `hub.HubError`) is the root here; `BleScannerError`,
also a `hub.TransportError`, wraps the scanner's failures to start or stop. This module must never log or repr a bind key and
never parse BTHome measurements by hand (the counter is read from its fixed
place in the layout).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Protocol, Union

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bthome_ble import BTHomeBluetoothDeviceData
from bthome_ble.parser import EncryptionScheme
from habluetooth import BluetoothServiceInfoBleak

from hub import HubError, TransportError

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
SOURCE = "anju-hub"

# service data: device_info(1), at least one object (2), counter(4), MIC(4)
_MIN_ENCRYPTED_LEN = 1 + 2 + 4 + 4
_FLAG_ENCRYPTED = 0x01
_BTHOME_VERSION = 2

REASON_TRUNCATED = "truncated"
REASON_UNKNOWN_DEVICE = "unknown_device"
REASON_NOT_ENCRYPTED = "not_encrypted"
REASON_BAD_TAG = "bad_tag"
REASON_BAD_BODY = "bad_body"

# bthome-ble entity keys -> reading keys
_SENSOR_KEYS = {"battery": "battery", "voltage": "voltage_mv"}
_BINARY_KEYS = {"opening": "opening", "tamper": "tamper", "smoke": "smoke"}


class BleError(HubError):
    """Root of the errors raised by the BLE receiver."""


class BleScannerError(BleError, TransportError):
    """The scanner could not be started or stopped."""


class Clock(Protocol):
    def now(self) -> float: ...


@dataclass(frozen=True)
class DeviceKeys:
    device_id: str
    bind_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.bind_key) != 16:
            raise ValueError(f"bind key of {self.device_id} must be 16 bytes")


@dataclass(frozen=True)
class BleReading:
    device_id: str
    address: str
    counter: int
    values: dict[str, Any]
    received_at: float
    rssi: Optional[int] = None


@dataclass(frozen=True)
class BleRejected:
    address: str
    device_id: Optional[str]
    reason: str
    received_at: float


BleResult = Union[BleReading, BleRejected]
DetectionCallback = Callable[[BLEDevice, AdvertisementData], None]
ScannerFactory = Callable[[DetectionCallback], Any]
KeyLookup = Union[Callable[[str], Optional[DeviceKeys]], Mapping[str, DeviceKeys]]


def bleak_scanner(detection_callback: DetectionCallback) -> BleakScanner:
    """The real scanner (BlueZ on Linux)."""
    return BleakScanner(detection_callback=detection_callback)


def read_counter(service_data: bytes) -> int:
    """The encryption counter: the 4 bytes before the MIC, little-endian."""
    return int.from_bytes(service_data[-8:-4], "little")


class _DeviceState:
    """One bthome-ble parser per device, and the last accepted advertisement."""

    __slots__ = ("bind_key", "parser", "last_data", "last_counter", "last_values", "seen")

    def __init__(self, bind_key: bytes) -> None:
        self.bind_key = bind_key
        self.parser = BTHomeBluetoothDeviceData(bind_key)
        self.last_data: Optional[bytes] = None
        self.last_counter = 0
        self.last_values: dict[str, Any] = {}
        # value objects of the previous update: bthome-ble's update dicts keep
        # entries from earlier advertisements, fresh ones are new objects
        self.seen: dict[Any, Any] = {}


class BleReceiver:
    """Turns BTHome advertisements into `BleReading` / `BleRejected`."""

    def __init__(
        self,
        lookup: KeyLookup,
        on_result: Callable[[BleResult], None],
        clock: Clock,
        scanner_factory: ScannerFactory = bleak_scanner,
    ) -> None:
        self._lookup = lookup if callable(lookup) else lookup.get
        self._on_result = on_result
        self._clock = clock
        self._scanner_factory = scanner_factory
        self._scanner: Any = None
        self._devices: dict[str, _DeviceState] = {}

    @property
    def running(self) -> bool:
        return self._scanner is not None

    async def start(self) -> None:
        if self._scanner is not None:
            raise BleError("BLE receiver already started")
        scanner = self._scanner_factory(self._on_advertisement)
        try:
            await scanner.start()
        except (BleakError, OSError) as exc:  # OSError: no system D-Bus
            raise BleScannerError(f"cannot start BLE scanning: {exc}") from exc
        self._scanner = scanner

    async def stop(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            await scanner.stop()
        except (BleakError, OSError) as exc:
            raise BleScannerError(f"cannot stop BLE scanning: {exc}") from exc

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        service_data = adv.service_data.get(BTHOME_UUID)
        if service_data is None:
            return
        self._on_result(self.handle(device, adv, service_data))

    def handle(self, device: BLEDevice, adv: AdvertisementData, service_data: bytes) -> BleResult:
        """Verify and decode one BTHome advertisement (the scanner callback's work)."""
        now = self._clock.now()
        address = device.address.upper()
        keys = self._lookup(address)
        if keys is None:
            return BleRejected(address, None, REASON_UNKNOWN_DEVICE, now)
        layout_fault = _layout_fault(service_data)
        if layout_fault is not None:
            return BleRejected(address, keys.device_id, layout_fault, now)

        state = self._devices.get(address)
        if state is None or state.bind_key != keys.bind_key:
            state = self._devices[address] = _DeviceState(keys.bind_key)
        if state.last_data == service_data:
            return BleReading(
                keys.device_id, address, state.last_counter, dict(state.last_values), now, adv.rssi
            )

        info = BluetoothServiceInfoBleak(
            name=adv.local_name or device.name or address,
            address=address,
            rssi=adv.rssi,
            manufacturer_data=adv.manufacturer_data,
            service_data=adv.service_data,
            service_uuids=adv.service_uuids,
            source=SOURCE,
            device=device,
            advertisement=adv,
            connectable=False,
            time=now,
            tx_power=adv.tx_power,
        )
        parser = state.parser
        parser.reset_encryption_counter()
        parser.decryption_failed = True
        update = parser.update(info)
        current = {**update.entity_values, **update.binary_entity_values}
        fresh = {key: value for key, value in current.items() if state.seen.get(key) is not value}
        state.seen = current

        values = None
        if parser.encryption_scheme is not EncryptionScheme.BTHOME_BINDKEY:
            reason = REASON_NOT_ENCRYPTED
        elif parser.decryption_failed or not parser.bindkey_verified:
            reason = REASON_BAD_TAG
        elif parser.last_service_info is not info:
            reason = REASON_BAD_BODY  # decrypted, but no object bthome-ble could parse
        else:
            values = _reading_values(fresh)
            reason = REASON_BAD_BODY
        if values is None:
            return BleRejected(address, keys.device_id, reason, now)

        counter = read_counter(service_data)
        state.last_data = bytes(service_data)
        state.last_counter = counter
        state.last_values = values
        return BleReading(keys.device_id, address, counter, dict(values), now, adv.rssi)


def _layout_fault(service_data: bytes) -> Optional[str]:
    """Reject what cannot be an anju BTHome v2 advertisement before decrypting."""
    if not service_data:
        return REASON_TRUNCATED
    device_info = service_data[0]
    if device_info >> 5 != _BTHOME_VERSION:
        return REASON_BAD_BODY
    if device_info & _FLAG_ENCRYPTED and len(service_data) < _MIN_ENCRYPTED_LEN:
        return REASON_TRUNCATED
    return None


def _reading_values(fresh: Mapping[Any, Any]) -> Optional[dict[str, Any]]:
    """Map bthome-ble's values to reading keys; None if nothing usable or out of range."""
    values: dict[str, Any] = {}
    for device_key, value in fresh.items():
        if device_key.key in _BINARY_KEYS:
            values[_BINARY_KEYS[device_key.key]] = bool(value.native_value)
        elif device_key.key in _SENSOR_KEYS:
            values[_SENSOR_KEYS[device_key.key]] = value.native_value
    if "voltage_mv" in values:
        values["voltage_mv"] = round(values["voltage_mv"] * 1000)
    if "battery" in values:
        values["battery"] = int(values["battery"])
        if not 0 <= values["battery"] <= 100:
            return None
    return values or None
