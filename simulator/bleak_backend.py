"""A bleak scanner backend that listens to a `simulator.radio.VirtualRadio`.

The hub builds its scanner exactly as on a Pi, only naming this backend:

    BleakScanner(detection_callback=cb, backend=VirtualScannerBackend, radio=radio)

`bleak.BleakScanner` passes `radio=` through to this class. The backend turns
every reception into bleak's own `AdvertisementData` and `BLEDevice` (through
`BaseBleakScanner.create_or_update_device`) and calls the registered
detection callbacks (`call_detection_callbacks`), as the BlueZ backend does
for D-Bus property changes. Service-UUID filtering follows bleak's
`is_allowed_uuid`, like BlueZ it only sees UUIDs listed in the advertisement's
UUID lists, not service-data UUIDs.

One difference from BlueZ to keep in mind: BlueZ (with DuplicateData off)
may coalesce identical repeats of an advertisement; the virtual radio
delivers every copy that was not dropped, the harder case for the hub.

This module must never import a platform backend or touch real Bluetooth.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Optional

from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.exc import BleakError

from simulator.radio import Reception, VirtualRadio


class VirtualScannerBackend(BaseBleakScanner):
    """`BaseBleakScanner` over a virtual radio; `radio` is required."""

    def __init__(
        self,
        detection_callback: Optional[AdvertisementDataCallback],
        service_uuids: Optional[list[str]],
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        radio: VirtualRadio,
        bluez: Optional[dict[str, Any]] = None,
        cb: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if radio is None:
            raise BleakError("VirtualScannerBackend needs radio=VirtualRadio")
        self._radio = radio
        self._scanning_mode = scanning_mode
        self._unsubscribe: Optional[Callable[[], None]] = None

    @property
    def scanning(self) -> bool:
        return self._unsubscribe is not None

    async def start(self) -> None:
        if self._unsubscribe is not None:
            raise BleakError("scanner already started")
        self.seen_devices = {}
        self._unsubscribe = self._radio.subscribe(self._on_reception)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_reception(self, reception: Reception) -> None:
        if not self.is_allowed_uuid(reception.service_uuids):
            return
        advertisement = AdvertisementData(
            local_name=reception.local_name,
            manufacturer_data=dict(reception.manufacturer_data),
            service_data=dict(reception.service_data),
            service_uuids=list(reception.service_uuids),
            tx_power=reception.tx_power,
            rssi=reception.rssi,
            platform_data=(reception.address, reception.raw),
        )
        device = self.create_or_update_device(
            reception.address,
            reception.address,
            reception.local_name,
            {"source": "virtual-radio", "raw": reception.raw},
            advertisement,
        )
        self.call_detection_callbacks(device, advertisement)
