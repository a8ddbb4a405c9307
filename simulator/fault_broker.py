"""A broker that misbehaves, for link-fault scenarios and tests.

Listens on a free loopback port and answers MQTT CONNECT the way a broken
site broker does: `refuse` sends CONNACK with return code 5 (not authorised:
a broker whose password file lost the device), `silent` accepts TCP and never
answers (a hung broker, or a firewall that swallows the packets). A device
whose link fault is set connects here instead of the real broker
(simulator/shims.py, the device socket), so its firmware meets the fault on
its own MQTT client. Counts what it saw; never sends anything else.
"""
import socket
import threading

MODES = ("refuse", "silent")


class FaultBroker:
    def __init__(self, mode):
        if mode not in MODES:
            raise ValueError("fault broker mode %r; allowed: %s" % (mode, ", ".join(MODES)))
        self.mode = mode
        self.connects = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.host, self.port = self._sock.getsockname()
        self._conns = []
        self._stop = threading.Event()
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
        self._thread.join(2)
