"""A broker that misbehaves, for link-fault scenarios and tests.

Listens on a free loopback port and answers MQTT CONNECT the way a broken
site broker does: `refuse` sends CONNACK with return code 5 (not authorised:
a broker whose password file lost the device), `silent` accepts TCP and never
answers (a hung broker, or a firewall that swallows the packets), `down` is a
broker that is not running: the port is bound but nothing listens, so every
connection is refused (ECONNREFUSED). A device
whose link fault is set connects here instead of the real broker
(simulator/mp/common/socket.py), so its firmware meets the fault on its own
MQTT client. Counts what it saw; never sends anything else.

A silent broker's silence is passed in virtual time: the device's socket
knows it is connected to one and lets a read wait out its timeout on the
virtual clock (the siren's timer keeps running) instead of waiting seconds of
real time for bytes that will never come.
"""
import socket
import threading

MODES = ("refuse", "silent", "down")


class FaultBroker:
    def __init__(self, mode):
        if mode not in MODES:
            raise ValueError("fault broker mode %r; allowed: %s" % (mode, ", ".join(MODES)))
        self.mode = mode
        self.connects = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.host, self.port = self._sock.getsockname()
        self._conns = []
        self._stop = threading.Event()
        self._thread = None
        if mode == "down":
            return  # bound, never listening: connections are refused
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._serve, name="fault-broker-" + mode,
                                        daemon=True)
        self._thread.start()

    def _serve(self):
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # closed
            self._conns.append(conn)
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        conn.settimeout(5.0)
        try:
            first = conn.recv(1)
            if first and first[0] >> 4 == 1:  # CONNECT
                self.connects += 1
                if self.mode == "refuse":
                    conn.sendall(b"\x20\x02\x00\x05")
        except OSError:
            pass  # the device gave up first: what a real broker sees too

    def close(self):
        self._stop.set()
        self._sock.close()
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(2)
