#!/usr/bin/env python3
"""Writes the fuzz seed corpus (corpus/wire/). Each seed: one byte choosing the
conversation (0 client, 1 peer, 2 admin), then frames as docs/wire-protocol.md lays them out.
Re-run after a protocol change; the seeds are committed so `make fuzz` needs no Python."""
import os, struct, zlib

def s(text):  # UInt16-prefixed UTF-8 string
    b = text.encode()
    return struct.pack(">H", len(b)) + b

def b(data):  # UInt32-prefixed bytes
    return struct.pack(">I", len(data)) + data

def frame(mtype, payload, compress=False):
    flags = 0
    if compress:
        c = zlib.compressobj(1, zlib.DEFLATED, -15)
        payload = struct.pack(">I", len(payload)) + c.compress(payload) + c.flush()
        flags = 1
    return struct.pack(">HBBHI", 0x5643, 1, flags, mtype, len(payload)) + payload

hello = bytes([1, 1]) + s("panel-7") + s("seed 1.0")
seeds = {
    "client-hello-login": [0, frame(0x0001, hello) + frame(0x0101, s("ann") + b"\x01" + s("secret") + s("c-1"))],
    "client-token-login": [0, frame(0x0101, s("ann") + b"\x02" + b(bytes(range(32))) + s("c-1"))],
    "client-accepted": [0, frame(0x0102, struct.pack(">QQB", 7, 3, 1) + b"\x01" + s("10.0.0.2") + struct.pack(">H", 7000)
                                  + b(b"tok") + struct.pack(">I", 1000))],
    "client-refused": [0, frame(0x0103, b"\x01" + s("not the active server") + b"\x00" + struct.pack(">Q", 2))],
    "client-keys-media": [0, frame(0x0104, struct.pack(">I", 1)) + frame(0x0105, b"\x01\x01" + struct.pack(">I", 4) + b"\x01")
                          + frame(0x0106, struct.pack(">III", 1, 2, 3) + b(bytes(160))) + frame(0x0108, b"")],
    "client-redirect-goodbye": [0, frame(0x0107, s("10.0.0.2") + struct.pack(">HBQ", 7000, 1, 4)) + frame(0x0002, b"\x02" + s("bye"))],
    "client-ignorable": [0, frame(0x8123, b"xyz") + frame(0x0104, struct.pack(">I", 9))],
    "peer-hello-auth": [1, frame(0x0001, hello + b"\x01" + struct.pack(">Q", 5) + b(bytes(16))) + frame(0x0201, b(bytes(32)))],
    "peer-licence-compressed": [1, frame(0x0203, s("licensee = Fire Ops\n" * 100), compress=True)],
    "peer-config": [1, frame(0x0204, struct.pack(">QQ", 1, 9) + b(b"operator ann " * 200), compress=True)
                    + frame(0x0205, struct.pack(">QQQ", 10, 1, 1700000000000) + b(b"\x01\x02"))
                    + frame(0x0206, struct.pack(">Q", 10)) + frame(0x0207, struct.pack(">QQ", 9, 1))
                    + frame(0x020B, struct.pack(">QQ", 7, 2))],
    "peer-activation": [1, frame(0x0202, struct.pack(">Q", 1)) + frame(0x0208, struct.pack(">IQBI", 1, 2, 1, 3000))
                        + frame(0x0209, struct.pack(">IIQ", 1, 40, 3)) + frame(0x020A, struct.pack(">BBQIQ", 1, 2, 3, 4, 5))],
    "admin-session": [2, frame(0x0001, hello) + frame(0x0301, s("root") + s("pw"))
                      + frame(0x0302, struct.pack(">BBBQ", 3, 1, 2, 4)) + frame(0x0304, struct.pack(">IH", 1, 2) + b(b"status"))
                      + frame(0x0305, struct.pack(">IH", 1, 0) + b(b"ok"))],
    "garbage-http": [0, b"GET / HTTP/1.1\r\n\r\n"],
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "wire")
os.makedirs(out, exist_ok=True)
for name, (conversation, data) in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([conversation]) + data)
print(f"wrote {len(seeds)} seeds to {out}")
