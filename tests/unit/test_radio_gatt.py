"""GATT connections on the virtual radio (simulator/radio.py) with a recorded
board in place of a simulated one: who may connect, what the board hears (the
IRQ events modbluetooth.c raises), what a central may read and write, and
what a notification looks like on the way back."""
from __future__ import annotations

import pytest

from simulator.radio import (
    FLAG_NOTIFY,
    FLAG_READ,
    FLAG_WRITE,
    ConnectError,
    GattError,
    VirtualRadio,
)

ADDR = "24:0A:C4:00:00:01"
SVC = "5e1f0001-9a6d-4c3b-8e2f-61b0d3a4c5e7"
TABLE = [[SVC, 17, [["5e1f0002-9a6d-4c3b-8e2f-61b0d3a4c5e7", 19, FLAG_READ | FLAG_NOTIFY, 20, []],
                    ["5e1f0003-9a6d-4c3b-8e2f-61b0d3a4c5e7", 22, FLAG_WRITE, 0, []]]]]


def board(radio, connectable=True):
    events: list = []
    radio.advertise(ADDR, b"\x02\x01\x06", 100_000, connectable=connectable)
    server = radio.peripheral(ADDR, events.extend)
    server.register(TABLE)
    return server, events


def central(radio):
    heard: list = []
    lost: list = []
    conn = radio.connect(ADDR, on_notify=lambda h, d: heard.append((h, d)),
                         on_disconnect=lambda: lost.append(1))
    return conn, heard, lost


def test_only_a_connectable_advertiser_in_range_can_be_connected():
    radio = VirtualRadio()
    with pytest.raises(ConnectError, match="not advertising"):
        central(radio)
    board(radio, connectable=False)
    with pytest.raises(ConnectError, match="connectable"):
        central(radio)
    board(radio)
    radio.out_of_range.add(ADDR)
    with pytest.raises(ConnectError, match="range"):
        central(radio)
    radio.out_of_range.clear()
    radio.jammed = True
    with pytest.raises(ConnectError):
        central(radio)
    radio.jammed = False
    conn, _, _ = central(radio)
    assert conn.connected and not radio.is_advertising(ADDR)


def test_the_board_hears_connect_mtu_write_and_disconnect_as_irq_events():
    radio = VirtualRadio()
    server, events = board(radio)
    server.mtu = 64
    conn, _, _ = central(radio)
    assert events == [[1, conn.handle, 0, "c0ffee000001"], [21, conn.handle, 64]]
    assert conn.mtu == 64
    conn.write(22, b"\x01" * 30)
    assert events[-1] == [3, conn.handle, 22, "01" * 30]
    assert server.values[22] == b"\x01" * 20  # the default 20-byte value keeps 20
    server.set_buffer(22, 64, False)
    conn.write(22, b"\x02" * 30)
    assert server.values[22] == b"\x02" * 30
    conn.disconnect()
    assert events[-1] == [2, conn.handle, 0, "c0ffee000001"]
    with pytest.raises(ConnectError):
        conn.read(19)


def test_reads_and_writes_follow_the_characteristics_flags():
    radio = VirtualRadio()
    server, _ = board(radio)
    conn, _, _ = central(radio)
    server.local_write(19, b"nonce", False)
    assert conn.read(19) == b"nonce"
    with pytest.raises(GattError) as err:
        conn.read(22)
    assert err.value.code == 0x02
    with pytest.raises(GattError) as err:
        conn.write(19, b"x")
    assert err.value.code == 0x03
    with pytest.raises(GattError) as err:
        conn.write(99, b"x")
    assert err.value.code == 0x01
    conn.write(22, b"dropped", response=False)  # a command the server does not take
    assert server.values[22] == b""


def test_notifications_are_cut_to_the_mtu_and_send_update_reaches_subscribers_only():
    radio = VirtualRadio()
    server, _ = board(radio)
    conn, heard, _ = central(radio)  # MTU 23: notifications carry 20 bytes
    server.notify(conn.handle, 19, bytes(range(30)))
    assert heard == [(19, bytes(range(20)))]
    server.local_write(19, b"upd", True)
    assert len(heard) == 1  # not subscribed
    conn.subscribe(19, 1)
    assert conn.read(20) == b"\x01\x00"
    server.local_write(19, b"upd", True)
    assert heard[-1] == (19, b"upd")
    radio.tamper_notify = lambda a, h, d: d[::-1]
    server.notify(conn.handle, 19, b"abc")
    assert heard[-1] == (19, b"cba")


def test_the_board_ending_the_link_or_its_boot_tells_the_central():
    radio = VirtualRadio()
    server, events = board(radio)
    conn, _, lost = central(radio)
    server.disconnect(conn.handle)
    assert lost == [1] and not conn.connected
    assert events[-1][0] == 2
    radio.advertise(ADDR, b"\x02\x01\x06", 100_000, connectable=True)
    conn2, _, lost2 = central(radio)
    server.gone()
    assert lost2 == [1] and not conn2.connected and server.services == []
