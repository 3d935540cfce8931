#!/usr/bin/env python3
"""Send N OpenFlow 1.3 FLOW_MOD adds (a BARRIER every 1000) in one stream
and time until the last BARRIER_REPLY: a pipelined controller's rate."""
import socket, struct, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
def msg(t, xid, body):
    return struct.pack("!BBHI", 4, t, 8 + len(body), xid) + body
def flow_mod(i):
    oxm = struct.pack("!IH", 0x80000a02, 0x0800) + struct.pack("!I", 0x80001804) + bytes([198, 18, i // 256 % 256, i % 256])
    m = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
    m += b"\0" * ((8 - len(m) % 8) % 8)
    acts = struct.pack("!HH4x", 24, 8) + struct.pack("!HHIH6x", 0, 16, 1, 0xffe5)
    inst = struct.pack("!HH4x", 4, 8 + len(acts)) + acts
    body = struct.pack("!QQBBHHHIIIH2x", 0, 0, 0, 0, 0, 0, 100, 0xffffffff, 0xffffffff, 0xffffffff, 0)
    return msg(14, i, body + m + inst)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(msg(0, 1, struct.pack("!HHI", 1, 8, 1 << 4)))
buf = b""
def read_msgs():
    global buf
    out = []
    while True:
        while len(buf) >= 8:
            l = struct.unpack("!H", buf[2:4])[0]
            if len(buf) < l: break
            out.append(buf[:l]); buf = buf[l:]
        if out: return out
        d = s.recv(65536)
        if not d: raise SystemExit("closed")
        buf += d
batch = b"".join(flow_mod(i) + (msg(20, i, b"") if (i + 1) % 1000 == 0 else b"") for i in range(n))
t0 = time.perf_counter()
s.sendall(batch)
barriers = 0
while barriers < n // 1000:
    for m in read_msgs():
        if m[1] == 1: raise SystemExit(f"error {m[8:12].hex()}")
        barriers += m[1] == 21
dt = time.perf_counter() - t0
print(f"{round(n / dt)} flow_mods/s")
