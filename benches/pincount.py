#!/usr/bin/env python3
"""Count OpenFlow 1.3 PACKET_INs: connect to a switch's ptcp: listener, say
HELLO, answer ECHO_REQUESTs, and after the first PACKET_IN count them for
SECS seconds; print the rate. Usage: pincount.py PORT SECS"""
import socket, struct, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(struct.pack("!BBHIHHI", 4, 0, 16, 1, 1, 8, 1 << 4))
# A "service" connection (to a ptcp: listener) gets packet-ins only once it
# sets a miss_send_len, as OVS has it (ovs-ofctl monitor does the same).
s.sendall(struct.pack("!BBHIHH", 4, 9, 12, 2, 0, 0xffff))
s.settimeout(secs + 30)
buf, count, t0, dt = b"", 0, None, 0.0
while True:
    d = s.recv(1 << 20)
    if not d:
        raise SystemExit("closed")
    buf += d
    # Walk the messages by offset (slicing per message would copy the rest
    # of a big read each time: the client, not the switch, would be measured).
    at = 0
    while len(buf) - at >= 8:
        t = buf[at + 1]
        l = struct.unpack_from("!H", buf, at + 2)[0]
        if len(buf) - at < l:
            break
        if t == 2:
            s.sendall(struct.pack("!BBH", 4, 3, 8) + buf[at + 4:at + 8])
        elif t == 1:
            raise SystemExit(f"error {buf[at + 8:at + 12].hex()}")
        elif t == 10:
            if t0 is None:
                t0 = time.perf_counter()
            count += 1
        at += max(l, 8)
    buf = buf[at:]
    if t0 is not None:
        dt = time.perf_counter() - t0
        if dt >= secs:
            break
print(f"{round(count / dt)} packet_ins/s")
