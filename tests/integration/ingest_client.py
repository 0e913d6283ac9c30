#!/usr/bin/env python3
"""A misbehaving but certified ingest client, for the tests of the collector's session bounds.

Speaks just enough of the wire protocol (docs/wire-protocol.md) over mutual TLS:
  silent   HOST PORT PKI AGENT          handshake, then never send HELLO; exits when the
                                        collector closes the session ("closed" on stdout)
  hold     HOST PORT PKI AGENT N        N sessions that say HELLO; prints "acked A refused R"
                                        and holds the acked ones until killed
  stall    HOST PORT PKI AGENT N        N sessions that say HELLO, then send a BATCH header
                                        declaring 16 MiB and 64 KiB of it; prints "stalled N"
                                        and holds them until killed (or, with --until-closed,
                                        until the collector closes them all: "closed N")
  heavy    HOST PORT PKI AGENT N COUNT  N sessions that say HELLO, then send one BATCH of COUNT
                                        of the smallest compact SNMP-trap records (15 bytes
                                        each on the wire, 680 decoded); prints "heavy N acked
                                        A" (A: sessions whose batch was acknowledged) and holds
                                        them until killed
  connect  HOST PORT N                  N plain TCP connections that send nothing; prints
                                        "connected N" and holds them until killed
"""
import os
import socket
import ssl
import struct
import sys
import time

MAGIC = 0x50545743
HELLO, HELLO_ACK, BATCH, ACK, ERROR = 1, 2, 3, 4, 5


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def frame(ftype, payload, declared=None, checksum=None, flags=0):
    length = len(payload) if declared is None else declared
    crc = crc32c(payload) if checksum is None else checksum
    return struct.pack("<IBBHII", MAGIC, 1, ftype, flags, length, crc) + payload


def str8(s):
    b = s.encode()
    return bytes([len(b)]) + b


def tls_connect(host, port, pki, agent):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
    ctx.load_cert_chain(os.path.join(pki, agent + ".pem"), os.path.join(pki, agent + ".key"))
    ctx.check_hostname = False
    raw = socket.create_connection((host, port), timeout=60)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.settimeout(None)
    return s


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame_type(s):
    head = read_exact(s, 16)
    if head is None:
        return None
    _, _, ftype, _, length, _ = struct.unpack("<IBBHII", head)
    read_exact(s, length)
    return ftype


def hello(s, agent, flags=0):
    payload = str8(agent) + str8("seg-test") + str8("ingest_client.py") + os.urandom(8)
    s.sendall(frame(HELLO, payload, flags=flags))
    return read_frame_type(s)


def wait_closed(s):
    try:
        while s.recv(4096):
            pass
    except (OSError, ssl.SSLError):
        pass


def hold_forever():
    while True:
        time.sleep(3600)


def main(argv):
    mode = argv[1]
    if mode == "connect":
        host, port, n = argv[2], int(argv[3]), int(argv[4])
        held = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
        print("connected", len(held), flush=True)
        hold_forever()
    host, port, pki, agent = argv[2], int(argv[3]), argv[4], argv[5]
    if mode == "silent":
        s = tls_connect(host, port, pki, agent)
        print("handshake done", flush=True)
        wait_closed(s)
        print("closed", flush=True)
        return 0
    n = int(argv[6])
    if mode == "hold":
        acked, refused, held = 0, 0, []
        for _ in range(n):
            s = tls_connect(host, port, pki, agent)
            if hello(s, agent) == HELLO_ACK:
                acked += 1
                held.append(s)
            else:
                refused += 1
                s.close()
        print("acked", acked, "refused", refused, flush=True)
        hold_forever()
    if mode == "stall":
        held = []
        for _ in range(n):
            s = tls_connect(host, port, pki, agent)
            if hello(s, agent) != HELLO_ACK:
                print("no HELLO_ACK", flush=True)
                return 1
            s.sendall(frame(BATCH, os.urandom(64 * 1024), declared=16 << 20, checksum=0))
            held.append(s)
        print("stalled", len(held), flush=True)
        if "--until-closed" in argv:
            for s in held:
                wait_closed(s)
            print("closed", len(held), flush=True)
            return 0
        hold_forever()
    if mode == "heavy":
        # Compact records (HELLO and BATCH flag bit 1; bit 31 of the count): kind 4 (SNMP
        # trap), body length 13: time delta 0, no sender address, no target, no trap OID,
        # ifIndex 0, uptime 0, kind/version/inform/admin/oper/varbind count 1 2 0 0 0 0, no
        # varbinds.
        count = int(argv[7])
        record = bytes([4, 13]) + bytes(6) + bytes([1, 2, 0, 0, 0, 0]) + bytes(1)
        payload = struct.pack("<QI", 1, count | 0x80000000) + record * count
        batch = frame(BATCH, payload, flags=2)
        acked, held = 0, []
        for _ in range(n):
            s = tls_connect(host, port, pki, agent)
            if hello(s, agent, flags=2) != HELLO_ACK:
                print("no HELLO_ACK", flush=True)
                return 1
            s.sendall(batch)
            if read_frame_type(s) == ACK:
                acked += 1
            held.append(s)
        print("heavy", len(held), "acked", acked, flush=True)
        hold_forever()
    print("unknown mode", mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
