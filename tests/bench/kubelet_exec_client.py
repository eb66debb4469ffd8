#!/usr/bin/python3
"""Node-side exec latency: `/exec/{ns}/{pod}/{container}?command=true&output=1` straight
to kubelet servers (:10250), as the API server calls them, over WebSocket
(v5.channel.k8s.io), with a client certificate (the API server's kubelet client
certificate). The targets take turns, N samples each after 3 warm-ups. Each sample is
timed from the TCP connect until the connection is closed after the exit status
(channel 3) arrived; phases: tls (TCP + TLS handshake), upgrade (request until 101),
status (101 until the exit status), close (status until the server's close).
Prints one JSON object: {target: {"total_ms": {"p50", "p90"}, "<phase>_ms": {...}}}.
Usage: kubelet_exec_client.py <ca> <cert> <key> <N> <name>=<https://host:port/exec/...> ...
"""
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time


def read_frame(s, buf):
    """Reads one WebSocket frame: (opcode, payload, rest of buf)."""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            b = s.recv(65536)
            if not b:
                raise EOFError("connection closed mid-frame")
            buf += b
    need(2)
    op, ln = buf[0] & 0x0F, buf[1] & 0x7F
    off = 2
    if ln == 126:
        need(4)
        ln, off = struct.unpack("!H", buf[2:4])[0], 4
    elif ln == 127:
        need(10)
        ln, off = struct.unpack("!Q", buf[2:10])[0], 10
    need(off + ln)
    return op, buf[off:off + ln], buf[off + ln:]


def close_frame():
    mask = os.urandom(4)
    payload = struct.pack("!H", 1000)
    return bytes([0x88, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


def one(ctx, url):
    rest = url[len("https://"):]
    hostport, path = rest.split("/", 1)
    host, port = hostport.rsplit(":", 1)
    t0 = time.perf_counter()
    raw = socket.create_connection((host, int(port)), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname=host)
    t1 = time.perf_counter()
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: Upgrade\r\n"
               f"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise EOFError("no upgrade response")
        buf += b
    head, buf = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"{url}: {head.decode(errors='replace')}")
    t2 = time.perf_counter()
    status = None
    while status is None:
        op, payload, buf = read_frame(s, buf)
        if op == 8:
            raise RuntimeError(f"{url}: closed before the exit status")
        if op == 2 and payload[:1] == b"\x03" and len(payload) > 1:
            status = json.loads(payload[1:])
    t3 = time.perf_counter()
    if status.get("status") != "Success":
        raise RuntimeError(f"{url}: exit status {status}")
    # The session is over with the status; the server closes (WebSocket close, then TCP).
    try:
        while True:
            op, payload, buf = read_frame(s, buf)
            if op == 8:
                s.sendall(close_frame())
                break
        while s.recv(65536):
            pass
    except (EOFError, ssl.SSLError, OSError):
        pass
    t4 = time.perf_counter()
    s.close()
    ms = lambda a, b: (b - a) * 1000
    return {"total": ms(t0, t4), "tls": ms(t0, t1), "upgrade": ms(t1, t2),
            "status": ms(t2, t3), "close": ms(t3, t4)}


def pct(vals, p):
    v = sorted(vals)
    return round(v[min(len(v) - 1, int((len(v) - 1) * p + 0.5))], 1)


def main():
    ca, cert, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    targets = [a.split("=", 1) for a in sys.argv[5:]]
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False  # serving certificates name the node, not the address
    ctx.verify_mode = ssl.CERT_NONE  # the peer kubelet's is self-signed
    ctx.load_cert_chain(cert, key)
    samples = {name: [] for name, _ in targets}
    for _ in range(3):
        for _, url in targets:
            one(ctx, url)
    for _ in range(n):
        for name, url in targets:
            samples[name].append(one(ctx, url))
    out = {}
    for name, ss in samples.items():
        out[name] = {f"{k}_ms": {"p50": pct([s[k] for s in ss], 0.5),
                                 "p90": pct([s[k] for s in ss], 0.9)}
                     for k in ("total", "tls", "upgrade", "status", "close")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
