"""bleak backends over a `simulator.radio.VirtualRadio`: a scanner and a client.

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

The client backend connects to a simulated board's GATT server through the
radio, with the same client code that runs against BlueZ:

    BleakClient(address, backend=VirtualClientBackend, radio=radio, sim=sim)

`connect` fails (BleakDeviceNotFoundError) unless the board advertises
connectable and is in range; it exchanges the MTU at once as BlueZ does, and
discovers the services the board registered. Reads come from the host's copy of
the values, writes, subscriptions and disconnects reach the board as its IRQ
events at the scheduler's time, and what the board notifies calls the
callback given to `start_notify`. With `sim` (a simulator.world.Simulation)
every operation that the board hears is followed by `sim.step()`, so its IRQ
handler (and whatever it does at once) has run when the call returns; what
the board does later needs virtual time to pass: `drive(sim, coro)` runs a
coroutine while advancing the simulation in small steps.

This module must never import a platform backend or touch real Bluetooth.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Literal, Optional

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError

from simulator.radio import (
    FLAG_INDICATE,
    FLAG_NOTIFY,
    ConnectError,
    Connection,
    GattError,
    RadioError,
    Reception,
    VirtualRadio,
)

CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"
_PROPERTIES = ((0x0001, "broadcast"), (0x0002, "read"), (0x0004, "write-without-response"),
               (0x0008, "write"), (0x0010, "notify"), (0x0020, "indicate"),
               (0x0040, "authenticated-signed-writes"))


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


class VirtualClientBackend(BaseBleakClient):
    """`BaseBleakClient` over a virtual radio; `radio` is required, `sim` runs
    the board after each operation it hears."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        radio: VirtualRadio,
        sim: Any = None,
        disconnected_callback: Optional[Callable[[], None]] = None,
        timeout: float = 10.0,
        services: Optional[set[str]] = None,
        bluez: Optional[dict[str, Any]] = None,
        winrt: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        if radio is None:
            raise BleakError("VirtualClientBackend needs radio=VirtualRadio")
        self._radio = radio
        self._sim = sim
        self._services_filter = services
        self._conn: Optional[Connection] = None
        self._callbacks: dict[int, NotifyCallback] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    # ---- connection -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._conn.mtu if self._conn is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._conn is not None and self._conn.connected

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            return
        self._loop = asyncio.get_running_loop()
        try:
            self._conn = self._radio.connect(
                self.address, on_notify=self._on_notify, on_disconnect=self._on_link_lost)
        except ConnectError as exc:
            raise BleakDeviceNotFoundError(self.address, str(exc)) from exc
        except RadioError as exc:
            raise BleakError(str(exc)) from exc
        await self._run_board()
        if not self.is_connected:
            raise BleakError(f"{self.address} dropped the connection at once")
        self.services = self._discover()

    async def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self._callbacks.clear()
        if conn is not None and conn.connected:
            conn.disconnect()
            await self._run_board()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not simulated")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not simulated")

    def _discover(self) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for svc in self._link().services():
            if self._services_filter is not None and svc.uuid not in self._services_filter:
                continue
            service = BleakGATTService(svc, svc.handle, svc.uuid)
            collection.add_service(service)
            for ch in svc.characteristics:
                props = [name for bit, name in _PROPERTIES if ch.flags & bit]
                characteristic = BleakGATTCharacteristic(
                    ch, ch.handle, ch.uuid, props,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3, service)
                collection.add_characteristic(characteristic)
                if ch.cccd:
                    collection.add_descriptor(
                        BleakGATTDescriptor(None, ch.cccd, CCCD_UUID, characteristic))
                for d in ch.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(d, d.handle, d.uuid, characteristic))
        return collection

    def _link(self) -> Connection:
        if self._conn is None or not self._conn.connected:
            raise BleakError("Not connected")
        return self._conn

    async def _run_board(self) -> None:
        """Let the board take what it heard (its IRQ runs at the current time)."""
        if self._sim is not None:
            await self._sim.step()

    # ---- I/O ------------------------------------------------------------------
    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        try:
            return bytearray(self._link().read(characteristic.handle))
        except GattError as exc:
            raise BleakGATTProtocolError(exc.code) from exc

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        try:
            return bytearray(self._link().read(descriptor.handle))
        except GattError as exc:
            raise BleakGATTProtocolError(exc.code) from exc

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any,
                              response: bool) -> None:
        try:
            self._link().write(characteristic.handle, bytes(data), response)
        except GattError as exc:
            raise BleakGATTProtocolError(exc.code) from exc
        await self._run_board()

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise BleakGATTProtocolError(0x03)  # the boards here register no writable descriptor

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        ch = characteristic.obj
        bits = 1 if ch.flags & FLAG_NOTIFY else 2 if ch.flags & FLAG_INDICATE else 0
        try:
            self._link().subscribe(characteristic.handle, bits)
        except GattError as exc:
            raise BleakGATTProtocolError(exc.code) from exc
        self._callbacks[characteristic.handle] = callback

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._callbacks.pop(characteristic.handle, None)
        if self.is_connected:
            self._link().subscribe(characteristic.handle, 0)

    # ---- from the radio (while the board runs) --------------------------------
    def _on_notify(self, handle: int, data: bytes) -> None:
        callback = self._callbacks.get(handle)
        if callback is not None:
            callback(bytearray(data))

    def _on_link_lost(self) -> None:
        """The board ended the link (gap_disconnect, reset, power off)."""
        self._callbacks.clear()
        self._conn = None
        if self._disconnected_callback is not None and self._loop is not None:
            try:
                self._loop.call_soon(self._disconnected_callback)
            except RuntimeError:
                pass  # the loop is closed: nobody is left to tell


async def drive(sim: Any, coro: Any, *, tick_s: float = 0.01, limit_s: float = 120.0) -> Any:
    """Run `coro` (a central's exchange) while the simulation's virtual clock
    advances in steps of `tick_s`, so the boards it talks to run their loops;
    at most `limit_s` of virtual time, then the coroutine is cancelled."""
    task = asyncio.ensure_future(coro)
    end = sim.clock.now() + limit_s
    try:
        while not task.done():
            await asyncio.sleep(0)
            if task.done():
                break
            if sim.clock.now() >= end:
                task.cancel()
                break
            await sim.run_until(sim.clock.now() + tick_s)
    finally:
        if not task.done():
            task.cancel()
    return await task
