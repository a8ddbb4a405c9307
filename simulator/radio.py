"""A virtual BLE advertising channel between simulated devices and scanners.

Devices hand the radio the exact advertising data bytes their firmware built;
scanners (the bleak backend in `simulator.bleak_backend`) receive them parsed
the way a host controller stack reports them. Nothing is invented: what a
scanner sees is only what some device (or a test, through `inject`) put on
the air.

Time model. The radio has no clock of its own. A device starts advertising
with `advertise(address, adv_data, interval_us)`; the simulator, which owns
virtual time, then calls `deliver_window(address, window_ms)` to say "this
advertisement was on the air for window_ms", and the radio delivers
`copies_in_window(window_ms, interval_us)` copies: window / interval, at least
one, at most `max_copies_per_window`. `stop(address)` takes it off the air;
`stop(address, window_ms)` does both: delivers the window that just ended,
then takes it off the air (what a device's advertising burst looks like).

Delivery is synchronous: each copy calls every subscriber in the calling
thread before `deliver_window`/`inject` return, so asyncio code in the same
thread may call the radio directly; a subscriber must not block, and an
exception raised by a subscriber propagates to the caller (a broken scanner
fails the test instead of being hidden). `subscribe(callback)` returns the
function that unsubscribes.

Faults: `drop_rate` (each copy is lost with this probability, drawn from the
seeded `random.Random` given to the constructor so runs repeat exactly),
`jammed` (nothing is delivered at all), and `inject(address, raw)` puts
arbitrary bytes (forged, truncated, malformed) on the air as if sent from an
address.

Connections. A simulated board that advertises connectable (MicroPython's
`gap_advertise(..., connectable=True)`) and registered GATT services has a
`Peripheral` here: the host's copy of its attribute table and values. A
central (the bleak client backend in `simulator.bleak_backend`) calls
`connect(address, ...)`, which succeeds only while that address is on the
air connectable, in range (`out_of_range`) and the air is not jammed; the
advertisement stops, as the stacks stop it when a central connects. The
`Connection` reads (from the host's copy, as NimBLE answers reads itself),
writes, subscribes and disconnects; every write, connect, disconnect and MTU
exchange is handed to the peripheral's `deliver` as the board's IRQ events
(code and arguments as modbluetooth.c raises them), and what the board
notifies reaches the connection's `on_notify`, cut to the ATT MTU as a stack
cuts it (`tamper_notify` alters them on the way, as an attacker on the air
would). The radio itself never runs a board: whoever owns virtual time
(simulator.world.Simulation) does.

This module must never talk to real Bluetooth hardware and never decode
BTHome itself: it carries bytes and splits AD structures, nothing more.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
DEFAULT_RSSI = -60
MAX_LEGACY_ADV_LEN = 31

AD_FLAGS = 0x01
AD_UUID16_INCOMPLETE = 0x02
AD_UUID16_COMPLETE = 0x03
AD_UUID32_INCOMPLETE = 0x04
AD_UUID32_COMPLETE = 0x05
AD_UUID128_INCOMPLETE = 0x06
AD_UUID128_COMPLETE = 0x07
AD_NAME_SHORT = 0x08
AD_NAME_COMPLETE = 0x09
AD_TX_POWER = 0x0A
AD_SERVICE_DATA_16 = 0x16
AD_SERVICE_DATA_32 = 0x20
AD_SERVICE_DATA_128 = 0x21
AD_MANUFACTURER = 0xFF


class RadioError(Exception):
    """Root of the errors this module raises (misuse by the simulator)."""


def uuid16_to_str(value: int) -> str:
    return f"{value:08x}{BASE_UUID_SUFFIX}"


def _uuid_from_le(raw: bytes) -> str:
    if len(raw) in (2, 4):
        return uuid16_to_str(int.from_bytes(raw, "little"))
    h = raw[::-1].hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@dataclass(frozen=True)
class Reception:
    """One advertisement as a scanner hears it."""

    address: str
    rssi: int
    raw: bytes
    local_name: str | None = None
    service_data: dict[str, bytes] = field(default_factory=dict)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_uuids: list[str] = field(default_factory=list)
    tx_power: int | None = None


def parse_advertising_data(address: str, raw: bytes, rssi: int) -> Reception:
    """Split AD structures like a host stack: stop at the first malformed one."""
    name = None
    short_name = None
    service_data: dict[str, bytes] = {}
    manufacturer: dict[int, bytes] = {}
    uuids: list[str] = []
    tx_power = None
    i = 0
    while i < len(raw):
        length = raw[i]
        if length == 0 or i + 1 + length > len(raw):
            break  # zero padding or a structure running past the end
        ad_type = raw[i + 1]
        value = bytes(raw[i + 2 : i + 1 + length])
        i += 1 + length
        if ad_type in (AD_UUID16_INCOMPLETE, AD_UUID16_COMPLETE):
            width = 2
        elif ad_type in (AD_UUID32_INCOMPLETE, AD_UUID32_COMPLETE):
            width = 4
        elif ad_type in (AD_UUID128_INCOMPLETE, AD_UUID128_COMPLETE):
            width = 16
        else:
            width = 0
        if width:
            for j in range(0, len(value) - width + 1, width):
                uuid = _uuid_from_le(value[j : j + width])
                if uuid not in uuids:
                    uuids.append(uuid)
        elif ad_type == AD_NAME_COMPLETE:
            name = value.decode("utf-8", "replace")
        elif ad_type == AD_NAME_SHORT:
            short_name = value.decode("utf-8", "replace")
        elif ad_type == AD_TX_POWER and len(value) == 1:
            tx_power = int.from_bytes(value, "little", signed=True)
        elif ad_type == AD_SERVICE_DATA_16 and len(value) >= 2:
            service_data[_uuid_from_le(value[:2])] = value[2:]
        elif ad_type == AD_SERVICE_DATA_32 and len(value) >= 4:
            service_data[_uuid_from_le(value[:4])] = value[4:]
        elif ad_type == AD_SERVICE_DATA_128 and len(value) >= 16:
            service_data[_uuid_from_le(value[:16])] = value[16:]
        elif ad_type == AD_MANUFACTURER and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
    return Reception(
        address=address,
        rssi=rssi,
        raw=bytes(raw),
        local_name=name if name is not None else short_name,
        service_data=service_data,
        manufacturer_data=manufacturer,
        service_uuids=uuids,
        tx_power=tx_power,
    )


def normalize_address(address: str) -> str:
    parts = address.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise RadioError(f"not a BLE address: {address!r}")
    try:
        int("".join(parts), 16)
    except ValueError as exc:
        raise RadioError(f"not a BLE address: {address!r}") from exc
    return address.upper()


def copies_in_window(window_ms: int, interval_us: int, cap: int) -> int:
    """Advertising events in a window: window / interval, at least 1, at most cap."""
    if window_ms <= 0:
        return 0
    return max(1, min((window_ms * 1000) // interval_us, cap))


@dataclass
class _OnAir:
    adv_data: bytes
    interval_us: int
    rssi: int
    connectable: bool = False


Subscriber = Callable[[Reception], None]


class VirtualRadio:
    """The shared air of one simulated site."""

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        drop_rate: float = 0.0,
        max_copies_per_window: int = 50,
    ) -> None:
        self._rng = rng if rng is not None else random.Random(0)
        self.drop_rate = drop_rate
        self.jammed = False
        self.max_copies_per_window = max_copies_per_window
        self._on_air: dict[str, _OnAir] = {}
        self._subscribers: dict[object, Subscriber] = {}
        self.delivered = 0
        self.dropped = 0
        self.out_of_range: set[str] = set()  # addresses no central here can reach
        # an attacker on the air: fn(address, value handle, data) -> the data a
        # central receives instead of a notification the board sent
        self.tamper_notify: Callable[[str, int, bytes], bytes] | None = None
        self._peripherals: dict[str, Peripheral] = {}

    @property
    def drop_rate(self) -> float:
        return self._drop_rate

    @drop_rate.setter
    def drop_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise RadioError("drop_rate must be within 0..1")
        self._drop_rate = value

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        token = object()
        self._subscribers[token] = callback

        def unsubscribe() -> None:
            self._subscribers.pop(token, None)

        return unsubscribe

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def advertise(
        self, address: str, adv_data: bytes, interval_us: int, *, rssi: int = DEFAULT_RSSI,
        connectable: bool = False,
    ) -> None:
        """Put (or replace) a device's advertisement on the air."""
        if len(adv_data) > MAX_LEGACY_ADV_LEN:
            raise RadioError(f"legacy advertising data is at most 31 bytes, got {len(adv_data)}")
        if interval_us < 20_000:
            raise RadioError("advertising interval below 20 ms is not allowed by BLE")
        self._on_air[normalize_address(address)] = _OnAir(
            bytes(adv_data), interval_us, rssi, bool(connectable))

    def stop(self, address: str, window_ms: int | None = None) -> int:
        """Take the advertisement off the air; with window_ms, first deliver that window."""
        arrived = 0 if window_ms is None else self.deliver_window(address, window_ms)
        self._on_air.pop(normalize_address(address), None)
        return arrived

    def is_advertising(self, address: str) -> bool:
        return normalize_address(address) in self._on_air

    def is_connectable(self, address: str) -> bool:
        on_air = self._on_air.get(normalize_address(address))
        return on_air is not None and on_air.connectable

    # ---- connections -----------------------------------------------------------
    def peripheral(self, address: str, deliver: Callable[[list], None] | None = None
                   ) -> Peripheral:
        """The GATT server side of `address` (made on first use with `deliver`)."""
        address = normalize_address(address)
        p = self._peripherals.get(address)
        if p is None:
            if deliver is None:
                raise RadioError(f"{address} has no GATT server")
            p = self._peripherals[address] = Peripheral(self, address, deliver)
        elif deliver is not None:
            p.deliver = deliver
        return p

    def find_peripheral(self, address: str) -> Peripheral | None:
        """The GATT server side of `address`, if it has one."""
        return self._peripherals.get(normalize_address(address))

    def connect(
        self,
        address: str,
        *,
        on_notify: Callable[[int, bytes], None],
        on_disconnect: Callable[[], None],
        central: str = "C0:FF:EE:00:00:01",
        mtu: int = 517,
    ) -> Connection:
        """Connect a central to a peripheral advertising connectable in range."""
        address = normalize_address(address)
        on_air = self._on_air.get(address)
        if self.jammed or address in self.out_of_range:
            raise ConnectError(f"{address} did not answer (out of range)")
        if on_air is None:
            raise ConnectError(f"{address} is not advertising")
        if not on_air.connectable:
            raise ConnectError(f"{address} is not advertising connectable")
        p = self._peripherals.get(address)
        if p is None:
            raise ConnectError(f"{address} has no GATT server")
        self._on_air.pop(address, None)  # the stack stops advertising on a connection
        return p._connect(normalize_address(central), on_notify, on_disconnect, mtu)

    def deliver_window(self, address: str, window_ms: int) -> int:
        """Deliver the copies sent during window_ms; return how many arrived."""
        address = normalize_address(address)
        on_air = self._on_air.get(address)
        if on_air is None:
            return 0
        copies = copies_in_window(window_ms, on_air.interval_us, self.max_copies_per_window)
        arrived = 0
        for _ in range(copies):
            if self._transmit(address, on_air.adv_data, on_air.rssi):
                arrived += 1
        return arrived

    def inject(self, address: str, raw_adv: bytes, *, rssi: int = DEFAULT_RSSI) -> bool:
        """Send arbitrary bytes once as if from `address`; True if it arrived."""
        return self._transmit(normalize_address(address), bytes(raw_adv), rssi)

    def _transmit(self, address: str, raw: bytes, rssi: int) -> bool:
        # the draw happens even when jammed so a jam does not shift later drops
        lost = self._rng.random() < self._drop_rate
        if self.jammed or lost:
            self.dropped += 1
            return False
        reception = parse_advertising_data(address, raw, rssi)
        self.delivered += 1
        for callback in tuple(self._subscribers.values()):
            callback(reception)
        return True


class ConnectError(RadioError):
    """A central could not connect (not advertising connectable, out of range)."""


class GattError(RadioError):
    """An ATT error response; `code` is the ATT error code (Core spec Vol 3 F 3.4.1.1)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


ATT_INVALID_HANDLE = 0x01
ATT_READ_NOT_PERMITTED = 0x02
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_INVALID_VALUE_LENGTH = 0x0D

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

IRQ_CENTRAL_CONNECT = 1
IRQ_CENTRAL_DISCONNECT = 2
IRQ_GATTS_WRITE = 3
IRQ_GATTS_INDICATE_DONE = 20
IRQ_MTU_EXCHANGED = 21

MAX_ATTR_LEN = 512  # the longest attribute value ATT allows (a long write)
DEFAULT_ATTR_LEN = 20


@dataclass
class GattDescriptor:
    uuid: str
    handle: int
    flags: int


@dataclass
class GattCharacteristic:
    uuid: str
    handle: int  # the value handle (what MicroPython returns)
    flags: int
    cccd: int    # the Client Characteristic Configuration descriptor's handle, 0: none
    descriptors: list[GattDescriptor]


@dataclass
class GattService:
    uuid: str
    handle: int
    characteristics: list[GattCharacteristic]


class Peripheral:
    """The host's side of one board's GATT server: its table, the values (kept
    in step with the board's gatts_write), its connections."""

    def __init__(self, radio: VirtualRadio, address: str, deliver: Callable[[list], None]):
        self.radio = radio
        self.address = address
        self.deliver = deliver
        self.services: list[GattService] = []
        self.values: dict[int, bytes] = {}
        self.cap: dict[int, int] = {}
        self.append: dict[int, bool] = {}
        self.mtu = 23  # the board's preferred ATT MTU (config(mtu=...))
        self.connections: dict[int, Connection] = {}
        self._next_conn = 1
        self.notified = 0

    def _chars(self) -> dict[int, GattCharacteristic]:
        return {c.handle: c for s in self.services for c in s.characteristics}

    # from the board
    def register(self, table: list | None) -> None:
        """gatts_register_services' table (None: the stack went down)."""
        self.services = []
        self.values = {}
        self.cap = {}
        self.append = {}
        for suuid, shandle, chars in table or ():
            cs = []
            for cuuid, handle, flags, cccd, descs in chars:
                ds = [GattDescriptor(du, dh, df) for du, dh, df in descs]
                cs.append(GattCharacteristic(cuuid, handle, flags, cccd, ds))
                self.values[handle] = b""
                self.cap[handle] = DEFAULT_ATTR_LEN
                for d in ds:
                    self.values[d.handle] = b""
                    self.cap[d.handle] = DEFAULT_ATTR_LEN
            self.services.append(GattService(suuid, shandle, cs))

    def local_write(self, handle: int, data: bytes, send_update: bool) -> None:
        self.values[handle] = bytes(data)
        self.cap[handle] = max(self.cap.get(handle, DEFAULT_ATTR_LEN), len(data))
        if send_update:
            for conn in list(self.connections.values()):
                if conn.subscribed.get(handle):
                    conn._notified(handle, bytes(data))

    def set_buffer(self, handle: int, length: int, append: bool) -> None:
        self.cap[handle] = length
        self.append[handle] = append

    def notify(self, conn_handle: int, handle: int, data: bytes, indicate: bool = False) -> None:
        conn = self.connections.get(conn_handle)
        if conn is None:
            return  # the link went down before the board heard of it
        self.notified += 1
        conn._notified(handle, bytes(data))
        if indicate:  # the central's confirmation
            self.deliver([[IRQ_GATTS_INDICATE_DONE, conn_handle, handle, 0]])

    def disconnect(self, conn_handle: int) -> None:
        """The board ended a connection (gap_disconnect)."""
        conn = self.connections.pop(conn_handle, None)
        if conn is None:
            return
        conn._closed()
        self.deliver([[IRQ_CENTRAL_DISCONNECT, conn_handle, 0, conn.central_hex]])

    def gone(self) -> None:
        """The board's stack stopped (power off, reset, deep sleep): every link drops."""
        conns, self.connections = list(self.connections.values()), {}
        for conn in conns:
            conn._closed()
        self.register(None)

    # from a central
    def _connect(self, central, on_notify, on_disconnect, mtu) -> Connection:
        handle = self._next_conn
        self._next_conn += 1
        conn = Connection(self, handle, central, on_notify, on_disconnect)
        conn.mtu = max(23, min(mtu, self.mtu))
        self.connections[handle] = conn
        events = [[IRQ_CENTRAL_CONNECT, handle, 0, conn.central_hex]]
        if conn.mtu > 23:  # BlueZ exchanges the MTU at once
            events.append([IRQ_MTU_EXCHANGED, handle, conn.mtu])
        self.deliver(events)
        return conn


class Connection:
    """A central's link to a peripheral."""

    def __init__(self, peripheral: Peripheral, handle: int, central: str,
                 on_notify: Callable[[int, bytes], None], on_disconnect: Callable[[], None]):
        self.peripheral = peripheral
        self.handle = handle
        self.central = central
        self.central_hex = central.replace(":", "").lower()
        self.on_notify = on_notify
        self.on_disconnect = on_disconnect
        self.mtu = 23
        self.subscribed: dict[int, int] = {}  # value handle -> CCCD bits (1 notify, 2 indicate)
        self.connected = True

    def _check(self) -> None:
        if not self.connected:
            raise ConnectError(f"not connected to {self.peripheral.address}")

    def services(self) -> list[GattService]:
        self._check()
        return list(self.peripheral.services)

    def _char(self, handle: int) -> GattCharacteristic:
        c = self.peripheral._chars().get(handle)
        if c is None:
            raise GattError(ATT_INVALID_HANDLE, f"no characteristic at handle {handle}")
        return c

    def read(self, handle: int) -> bytes:
        self._check()
        c = self.peripheral._chars().get(handle)
        if c is None:
            for s in self.peripheral.services:
                for ch in s.characteristics:
                    if ch.cccd == handle:
                        return self.subscribed.get(ch.handle, 0).to_bytes(2, "little")
                    for d in ch.descriptors:
                        if d.handle == handle:
                            return self.peripheral.values.get(handle, b"")
            raise GattError(ATT_INVALID_HANDLE, f"no attribute at handle {handle}")
        if not c.flags & FLAG_READ:
            raise GattError(ATT_READ_NOT_PERMITTED, f"{c.uuid} is not readable")
        return self.peripheral.values.get(handle, b"")

    def write(self, handle: int, data: bytes, response: bool = True) -> None:
        self._check()
        c = self._char(handle)
        data = bytes(data)
        if response:
            if not c.flags & FLAG_WRITE:
                raise GattError(ATT_WRITE_NOT_PERMITTED, f"{c.uuid} takes no write request")
            if len(data) > MAX_ATTR_LEN:
                raise GattError(ATT_INVALID_VALUE_LENGTH, "longer than 512 bytes")
        else:
            if not c.flags & FLAG_WRITE_NO_RESPONSE:
                return  # a write command the server does not take is dropped
            data = data[: self.mtu - 3]
        p = self.peripheral
        cap = p.cap.get(handle, DEFAULT_ATTR_LEN)
        if p.append.get(handle):
            p.values[handle] = (p.values.get(handle, b"") + data)[:cap]
        else:
            p.values[handle] = data[:cap]
        p.deliver([[IRQ_GATTS_WRITE, self.handle, handle, data.hex()]])

    def subscribe(self, handle: int, bits: int) -> None:
        """Write the characteristic's CCCD: 1 notify, 2 indicate, 0 off."""
        self._check()
        c = self._char(handle)
        if not c.cccd:
            raise GattError(ATT_WRITE_NOT_PERMITTED, f"{c.uuid} neither notifies nor indicates")
        if bits:
            self.subscribed[handle] = bits
        else:
            self.subscribed.pop(handle, None)

    def disconnect(self) -> None:
        """The central ends the link."""
        if not self.connected:
            return
        p = self.peripheral
        p.connections.pop(self.handle, None)
        self.connected = False
        p.deliver([[IRQ_CENTRAL_DISCONNECT, self.handle, 0, self.central_hex]])

    def _notified(self, handle: int, data: bytes) -> None:
        if self.connected:
            data = data[: self.mtu - 3]
            tamper = self.peripheral.radio.tamper_notify
            if tamper is not None:
                data = tamper(self.peripheral.address, handle, data)
            self.on_notify(handle, data)

    def _closed(self) -> None:
        if self.connected:
            self.connected = False
            self.on_disconnect()
