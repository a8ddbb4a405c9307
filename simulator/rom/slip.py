"""SLIP framing (RFC 1055) as the ESP ROM loader uses it: every packet starts
and ends with 0xC0; 0xC0 inside a packet is sent as 0xDB 0xDC, 0xDB as 0xDB 0xDD.
Bytes outside a packet are noise (a boot log, a stray byte) and are skipped."""
END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD


def encode(packet):
    """One packet as the bytes sent on the line."""
    body = bytes(packet).replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


class Decoder:
    """Incremental decoder: feed() what the line delivered, get whole packets.

    A packet with an invalid escape is dropped (counted in `bad_frames`), as
    the ROM drops it; decoding resumes at the next 0xC0. Empty frames (two
    0xC0 in a row, used to resynchronise) are not packets."""

    def __init__(self):
        self._buf = None  # None: between packets
        self._escape = False
        self.bad_frames = 0

    def feed(self, data):
        packets = []
        for b in bytes(data):
            if self._buf is None:
                if b == END:
                    self._buf = bytearray()
                continue
            if self._escape:
                self._escape = False
                if b == ESC_END:
                    self._buf.append(END)
                elif b == ESC_ESC:
                    self._buf.append(ESC)
                else:
                    self.bad_frames += 1
                    self._buf = bytearray() if b == END else None
                continue
            if b == ESC:
                self._escape = True
            elif b == END:
                if self._buf:
                    packets.append(bytes(self._buf))
                    self._buf = None
                # an empty frame: the END just seen may open the next packet
                else:
                    self._buf = bytearray()
            else:
                self._buf.append(b)
        return packets
