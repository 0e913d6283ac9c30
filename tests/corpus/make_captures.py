#!/usr/bin/env python3
"""The detection corpus's captures, made with scapy.

    /usr/bin/python3 tests/corpus/make_captures.py OUTDIR     # Debian's python3-scapy

Writes OUTDIR/NAME.pcap for every capture below and prints one line per capture,
`NAME FRAMES`. A case (tests/corpus/cases/CASE/case.yaml) names the capture it replays;
several cases may replay one capture with different lists. The captures at the end
reproduce detection bugs (tests/corpus/known-bugs/). tests/integration/corpus.sh runs it all.

Everything is deterministic: frame times start at T0 (2026-11-21T22:50:38Z) and are computed,
never read from the clock; every MAC, address, port, sequence number, DNS id and DHCP xid is
fixed, so two runs write identical files. Addresses: 10.0.0.0/8 is the city's (the pack's
city_networks), 203.0.113.0/24 and 198.51.100.0/24 are the outside (RFC 5737). The shipped
blocklist holds 192.0.2.0/24 and 198.51.100.66: those appear only in the blocklist capture.
Stations on the segment have their own MAC (02:00 + the IPv4 address); outside hosts are
reached through the router's MAC. Where a detection depends on the answers, the exchange is
two-way: refused probes get their RST, open ports their SYN-ACK, connections their handshake,
data and close.

Every capture ends with one NTP exchange 40 minutes after T0 (`clock_tick`): it moves the
collector's event clock past every rule's hold-down (30 minutes at most: arp_spoofing), so
each alert resolves within a second of the replay and its resolved line carries the final
evidence that the corpus test compares.

Floods are written with a short snap length (as `tcpdump -s 96` would): the flow meter counts
bytes from the IP length field, so the flows are those of full-size packets, and the files
stay small.
"""
import hashlib
import os
import struct
import sys

from scapy.all import (ARP, BOOTP, DHCP, DNS, DNSQR, DNSRR, ICMP, IP, SNMP, TCP, UDP,
                       ASN1_OID, Ether, Raw, SNMPget, SNMPresponse, SNMPvarbind)

T0 = 1795301438.0
ROUTER_MAC = "02:00:00:00:00:fe"  # the segment's router: every outside host is behind it
BROADCAST = "ff:ff:ff:ff:ff:ff"
SNAP_FLOOD = 96                   # bytes kept per flood frame


def mac_of(ip):
    """A station's MAC: 02:00 and its IPv4 address; outside hosts are behind the router,
    which is also the gateway 10.20.0.1."""
    a = [int(x) for x in ip.split(".")]
    if a[0] != 10 or ip == "10.20.0.1":
        return ROUTER_MAC
    return "02:00:%02x:%02x:%02x:%02x" % tuple(a)


class Capture:
    def __init__(self):
        self.frames = []  # (time, bytes, original length)

    def add(self, t, pkt, snap=None):
        raw = bytes(pkt)
        self.frames.append((t, raw[:snap] if snap else raw, len(raw)))

    def repeat(self, times, pkt, snap=None):
        """The same frame (built once) at each of `times`: floods."""
        raw = bytes(pkt)
        cut = raw[:snap] if snap else raw
        self.frames.extend((t, cut, len(raw)) for t in times)

    def write(self, path):
        self.frames.sort(key=lambda f: f[0])  # stable: frames at one time keep their order
        with open(path, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
            for t, raw, orig in self.frames:
                usec = int(round(t * 1e6))
                out.write(struct.pack("<IIII", usec // 1000000, usec % 1000000, len(raw), orig))
                out.write(raw)


def ip(src, dst):
    return Ether(src=mac_of(src), dst=mac_of(dst)) / IP(src=src, dst=dst)


# ---- TCP ---------------------------------------------------------------------------------
class Tcp:
    """One TCP connection, two-way, with real sequence numbers."""

    def __init__(self, cap, client, server, sport, dport, isn_c=1000, isn_s=500000):
        self.cap, self.c, self.s, self.sport, self.dport = cap, client, server, sport, dport
        self.cseq, self.sseq = isn_c, isn_s

    def _c(self, t, flags, data=b"", seq=None, ack=True):
        p = ip(self.c, self.s) / TCP(sport=self.sport, dport=self.dport, flags=flags,
                                     seq=self.cseq if seq is None else seq,
                                     ack=self.sseq if ack else 0, window=64240)
        self.cap.add(t, p / Raw(data) if data else p)

    def _s(self, t, flags, data=b"", ack=True):
        p = ip(self.s, self.c) / TCP(sport=self.dport, dport=self.sport, flags=flags,
                                     seq=self.sseq, ack=self.cseq if ack else 0, window=65160)
        self.cap.add(t, p / Raw(data) if data else p)

    def syn(self, t):
        self._c(t, "S", ack=False)
        self.cseq += 1

    def synack(self, t):
        self._s(t, "SA")
        self.sseq += 1

    def refuse(self, t):
        """A closed port: RST+ACK answering the SYN (RFC 9293 3.10.7.1)."""
        self.cap.add(t, ip(self.s, self.c) / TCP(sport=self.dport, dport=self.sport, flags="RA",
                                                 seq=0, ack=self.cseq))

    def handshake(self, t, rtt=0.002):
        self.syn(t)
        self.synack(t + rtt / 2)
        self._c(t + rtt, "A")
        return t + rtt

    def c_send(self, t, data, rtt=0.002):
        self._c(t, "PA", data)
        self.cseq += len(data)
        self._s(t + rtt / 2, "A")
        return t + rtt / 2

    def s_send(self, t, data, rtt=0.002):
        self._s(t, "PA", data)
        self.sseq += len(data)
        self._c(t + rtt / 2, "A")
        return t + rtt / 2

    def close(self, t, who="server", rtt=0.002):
        """An orderly close: the side `who` sends the first FIN."""
        first, second = (self._s, self._c) if who == "server" else (self._c, self._s)
        first(t, "FA")
        if who == "server":
            self.sseq += 1
        else:
            self.cseq += 1
        second(t + rtt / 2, "FA")
        if who == "server":
            self.cseq += 1
        else:
            self.sseq += 1
        first(t + rtt, "A")
        return t + rtt

    def abort(self, t):
        """The client aborts (RST+ACK), as Windows closes a socket with SO_LINGER 0."""
        self._c(t, "RA")

    def half_open(self, t, rtt=0.002):
        """nmap -sS finding an open port: SYN, SYN-ACK, and the scanner's bare RST."""
        self.syn(t)
        self.synack(t + rtt / 2)
        self._c(t + rtt, "R", ack=False)


def session(cap, t, client, server, sport, dport, exchange, close="server", rtt=0.002, isn=1000):
    """A complete connection: handshake, the exchange [(side, bytes)...], then `close`
    (server/client: orderly, that side's FIN first; abort: client RST+ACK; None: left open)."""
    c = Tcp(cap, client, server, sport, dport, isn_c=isn, isn_s=isn * 7 + 500000)
    t = c.handshake(t, rtt)
    for side, data in exchange:
        t = (c.c_send if side == "c" else c.s_send)(t + rtt, data, rtt)
    if close == "abort":
        c.abort(t + rtt)
    elif close:
        t = c.close(t + rtt, close, rtt)
    return c


def refused(cap, t, client, server, sport, dport):
    c = Tcp(cap, client, server, sport, dport)
    c.syn(t)
    c.refuse(t + 0.0005)


def unanswered(cap, t, client, server, sport, dport, retransmit=1.0):
    """A filtered port: the SYN and one retransmission (the same attempt), no answer."""
    c = Tcp(cap, client, server, sport, dport)
    c.syn(t)
    c.cseq -= 1
    if retransmit:
        c.syn(t + retransmit)


def half_open(cap, t, client, server, sport, dport):
    Tcp(cap, client, server, sport, dport).half_open(t)


TLS_HELLO = b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + bytes(range(32)) + b"\x00" * 165
TLS_SERVER = b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + bytes(range(32, 64)) + b"\x00" * 1200
TLS_DATA = b"\x17\x03\x03\x01\x00" + b"\xa5" * 256
SSH_C = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
SSH_S = b"SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u1\r\n"


def ssh_login_attempt(cap, t, client, server, sport, close="server", isn=1000):
    """An SSH connection that tries passwords and is closed: banners, key exchange, the
    encrypted authentication requests and failures, then the close."""
    return session(cap, t, client, server, sport, 22,
                   [("s", SSH_S), ("c", SSH_C), ("c", b"\x00\x00\x05\xdc" + b"k" * 1496),
                    ("s", b"\x00\x00\x04\x3c" + b"K" * 1084), ("c", b"\x00\x00\x00\x2c" + b"n" * 44),
                    ("s", b"\x00\x00\x01\xfc" + b"N" * 508), ("c", b"\x00\x00\x00\x4c" + b"p" * 76),
                    ("s", b"\x00\x00\x00\x1c" + b"f" * 28), ("c", b"\x00\x00\x00\x4c" + b"q" * 76),
                    ("s", b"\x00\x00\x00\x1c" + b"g" * 28)],
                   close=close, isn=isn)


# ---- UDP: DNS, NTP, SNMP, DHCP -----------------------------------------------------------
def dns_exchange(cap, t, client, name, qid, qtype="A", server="10.20.0.53", rcode=0,
                 answer=None, sport=None):
    sport = sport or 30000 + qid % 30000
    cap.add(t, ip(client, server) / UDP(sport=sport, dport=53) /
            DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype)))
    an = None
    if rcode == 0 and answer is not None:
        an = DNSRR(rrname=name, type=qtype, ttl=60, rdata=answer)
    cap.add(t + 0.003, ip(server, client) / UDP(sport=53, dport=sport) /
            DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype), an=an))


def clock_tick(cap):
    """40 minutes on: one NTP exchange between two city hosts (see the module's docstring)."""
    t = T0 + 2400
    sent = struct.pack("!II", int(t) + 2208988800, 0)  # NTP time: seconds since 1900
    cap.add(t, ip("10.99.0.10", "10.99.0.1") / UDP(sport=123, dport=123) /
            Raw(b"\x23" + bytes(39) + sent))                       # v4 client request
    cap.add(t + 0.001, ip("10.99.0.1", "10.99.0.10") / UDP(sport=123, dport=123) /
            Raw(b"\x24\x02\x06\xe9" + bytes(20) + sent + sent + sent))  # v4 server, stratum 2


def arp(cap, t, op, hwsrc, psrc, pdst, hwdst="00:00:00:00:00:00", dst=None):
    cap.add(t, Ether(src=hwsrc, dst=dst or (BROADCAST if op == 1 else hwdst)) /
            ARP(op=op, hwsrc=hwsrc, psrc=psrc, hwdst=hwdst, pdst=pdst))


def arp_resolve(cap, t, asker, target, target_mac=None):
    """`asker` asks who has `target` (broadcast) and gets the answer from `target_mac`."""
    target_mac = target_mac or mac_of(target)
    arp(cap, t, 1, mac_of(asker), asker, target)
    arp(cap, t + 0.0004, 2, target_mac, target, asker, hwdst=mac_of(asker))


def token(seed, n, alphabet="abcdefghijklmnopqrstuvwxyz234567"):
    """n deterministic characters that look encoded (base32 by default)."""
    out, i = "", 0
    while len(out) < n:
        for b in hashlib.sha256(f"{seed}/{i}".encode()).digest():
            out += alphabet[b % len(alphabet)]
        i += 1
    return out[:n]


# ---- attacks ------------------------------------------------------------------------------
def scan_vertical(cap):
    # nmap -sS of ports 1-100 of 10.20.0.20 from 10.20.0.9: 95 closed ports refused (RST),
    # 22, 80 and 443 open (SYN-ACK, then the scanner's bare RST), 2 filtered (no answer).
    for port in range(1, 101):
        t = T0 + port * 0.01
        if port in (22, 80, 443):
            half_open(cap, t, "10.20.0.9", "10.20.0.20", 61000, port)
        elif port in (25, 88):
            unanswered(cap, t, "10.20.0.9", "10.20.0.20", 61000, port)
        else:
            refused(cap, t, "10.20.0.9", "10.20.0.20", 61000, port)
    clock_tick(cap)


def scan_horizontal(cap):
    # A worm from outside sweeps tcp/445 over 10.1.2.1-60 in 1.2 s: 40 hosts refuse, 10 answer
    # (the scanner resets: half-open), 10 are firewalled (no answer).
    for h in range(1, 61):
        t = T0 + h * 0.02
        dst = f"10.1.2.{h}"
        if h % 6 == 0:
            half_open(cap, t, "203.0.113.9", dst, 50000 + h, 445)
        elif h % 6 == 3:
            unanswered(cap, t, "203.0.113.9", dst, 50000 + h, 445)
        else:
            refused(cap, t, "203.0.113.9", dst, 50000 + h, 445)
    clock_tick(cap)


def ssh_guessing(cap):
    # hydra from outside: 12 SSH connections in 55 s, each closed by the server after failed
    # passwords.
    for i in range(12):
        ssh_login_attempt(cap, T0 + i * 5, "198.51.100.23", "10.20.0.22", 40100 + i, isn=1000 + i)
    clock_tick(cap)


def rdp_guessing(cap):
    # 10 RDP connections from outside in 45 s (X.224 connection request and confirm, TLS,
    # a failed NLA login), each closed by the server: guessing, and RDP answering the outside.
    for i in range(10):
        session(cap, T0 + i * 5, "203.0.113.50", "10.1.3.10", 42000 + i, 3389,
                [("c", b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00"),
                 ("s", b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x02\x00\x00\x00"),
                 ("c", TLS_HELLO), ("s", TLS_SERVER), ("c", TLS_DATA), ("s", TLS_DATA[:64])],
                isn=2000 + i)
    clock_tick(cap)


def telnet_guessing(cap):
    # Mirai-style: 6 Telnet logins from outside to a camera in 25 s, closed by the device.
    for i in range(6):
        session(cap, T0 + i * 5, "203.0.113.31", "10.1.5.2", 43000 + i, 23,
                [("s", b"\xff\xfd\x18\xff\xfd\x20"), ("c", b"\xff\xfc\x18\xff\xfc\x20"),
                 ("s", b"login: "), ("c", b"root\r\n"), ("s", b"Password: "), ("c", b"xc3511\r\n"),
                 ("s", b"\r\nLogin incorrect\r\n")], isn=3000 + i)
    clock_tick(cap)


def smb_exposed(cap):
    # An SMB2 negotiate from outside, answered by a city file server.
    session(cap, T0, "198.51.100.45", "10.1.3.20", 44500, 445,
            [("c", b"\x00\x00\x00\x66\xfeSMB" + b"\x00" * 98), ("s", b"\x00\x00\x01\x00\xfeSMB" + b"\x01" * 252)],
            close="client")
    clock_tick(cap)


def http_admin_outside(cap):
    # A router's web admin on 8080, reached from outside: login page and a POST.
    session(cap, T0, "203.0.113.8", "10.1.5.1", 44000, 8080,
            [("c", b"GET /admin HTTP/1.1\r\nHost: 10.1.5.1:8080\r\n\r\n"),
             ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n<form action=/login method=post></form>"),
             ("c", b"POST /login HTTP/1.1\r\nContent-Length: 24\r\n\r\nuser=admin&password=admin"),
             ("s", b"HTTP/1.1 302 Found\r\nLocation: /status\r\n\r\n")])
    clock_tick(cap)


def snmp_outside(cap):
    # SNMPv2c gets of sysDescr from outside, answered; and the city's NMS polling the same
    # switch from inside (not a finding).
    oid = ASN1_OID("1.3.6.1.2.1.1.1.0")
    for i, (src, sport) in enumerate([("203.0.113.7", 50161), ("203.0.113.7", 50162),
                                      ("10.20.0.5", 40161), ("203.0.113.7", 50163)]):
        t = T0 + i
        cap.add(t, ip(src, "10.1.4.1") / UDP(sport=sport, dport=161) /
                SNMP(version=1, community="public", PDU=SNMPget(id=100 + i, varbindlist=[SNMPvarbind(oid=oid)])))
        cap.add(t + 0.002, ip("10.1.4.1", src) / UDP(sport=161, dport=sport) /
                SNMP(version=1, community="public",
                     PDU=SNMPresponse(id=100 + i, varbindlist=[SNMPvarbind(oid=oid, value=b"Cisco IOS 15.2")])))
    clock_tick(cap)


def syn_flood(cap):
    # 3,000 SYNs in 2 s to 10.20.0.80:8080 from spoofed outside addresses (203.0.113.1-250,
    # each with its own ports). The server answers the first 1,000 with SYN-ACK until its
    # backlog is full; nobody completes a handshake.
    for i in range(3000):
        t = T0 + i * (2.0 / 3000)
        src, sport = f"203.0.113.{1 + i % 250}", 10000 + i // 250
        c = Tcp(cap, src, "10.20.0.80", sport, 8080, isn_c=7000 + i, isn_s=900000 + i)
        c.syn(t)
        if i < 1000:
            c.synack(t + 0.0002)
    clock_tick(cap)


def udp_flood(cap):
    # A DNS reflection flood: 50 open resolvers (198.51.100.1-50) send 1,600 responses each,
    # 80,000 in 8 s (10,000 packets/s) to 10.20.0.30.
    templates = [ip(f"198.51.100.{r}", "10.20.0.30") / UDP(sport=53, dport=47000) /
                 DNS(id=4242, qr=1, ra=1, qd=DNSQR(qname="example.org", qtype="ANY"),
                     an=DNSRR(rrname="example.org", type="TXT", ttl=300, rdata="v" * 200) /
                     DNSRR(rrname="example.org", type="TXT", ttl=300, rdata="w" * 200))
                 for r in range(1, 51)]
    for r, tpl in enumerate(templates):
        cap.repeat([T0 + (k * 50 + r) / 10000 for k in range(1600)], tpl, SNAP_FLOOD)
    clock_tick(cap)


def icmp_flood(cap):
    # ping -f from 3 outside hosts at 10.20.0.31: 600 echo requests/s each for 10 s, all
    # answered. 1,800 requests/s reach the target; each sender gets 600 replies/s.
    for s in range(3):
        src = f"203.0.113.{70 + s}"
        req = ip(src, "10.20.0.31") / ICMP(type=8, id=0x4d00 + s, seq=1) / Raw(b"\x00" * 56)
        rep = ip("10.20.0.31", src) / ICMP(type=0, id=0x4d00 + s, seq=1) / Raw(b"\x00" * 56)
        times = [T0 + (k * 3 + s) / 1800 for k in range(6000)]
        cap.repeat(times, req, SNAP_FLOOD)
        cap.repeat([t + 0.0001 for t in times], rep, SNAP_FLOOD)
    clock_tick(cap)


def dns_tunnel(cap):
    # An iodine-like tunnel: 20 TXT queries in 10 s from 10.20.0.9, each name carrying 52
    # base32 characters in one label under t.exfil.example, each answered.
    for i in range(20):
        name = f"{token(f'tunnel{i}', 52)}.t.exfil.example"
        dns_exchange(cap, T0 + i * 0.5, "10.20.0.9", name, 500 + i, qtype="TXT", answer=token(f"r{i}", 60))
    clock_tick(cap)


def dns_many_subdomains(cap):
    # A slow DNS beacon: 150 A queries in 150 s from 10.20.0.12, each a fresh 16-hex-digit
    # label under c2.example (short labels: not long_labels), answered NXDOMAIN.
    for i in range(150):
        name = f"{token(f'beacon{i}', 16, '0123456789abcdef')}.c2.example"
        dns_exchange(cap, T0 + i, "10.20.0.12", name, 700 + i, rcode=3)
    clock_tick(cap)


def arp_spoof(cap):
    # arpspoof -r: the gateway 10.20.0.1 and the host 10.20.0.9 learn each other's MAC, then
    # 02:00:00:00:00:ee tells each that the other is at ee, every 2 s for 20 s.
    arp_resolve(cap, T0, "10.20.0.9", "10.20.0.1", ROUTER_MAC)
    arp_resolve(cap, T0 + 1, "10.20.0.1", "10.20.0.9")
    ee = "02:00:00:00:00:ee"
    for i in range(10):
        t = T0 + 10 + i * 2
        arp(cap, t, 2, ee, "10.20.0.1", "10.20.0.9", hwdst=mac_of("10.20.0.9"))
        arp(cap, t + 0.001, 2, ee, "10.20.0.9", "10.20.0.1", hwdst=ROUTER_MAC)
    clock_tick(cap)


def arp_takeover(cap):
    # 10.20.0.10 and 10.20.0.11 answer for themselves; then 02:00:00:00:00:ee claims both in
    # gratuitous ARP, one as a request (arping -U), one as a reply (arping -A).
    arp_resolve(cap, T0, "10.20.0.9", "10.20.0.10")
    arp_resolve(cap, T0 + 1, "10.20.0.9", "10.20.0.11")
    ee = "02:00:00:00:00:ee"
    arp(cap, T0 + 5, 1, ee, "10.20.0.10", "10.20.0.10")
    arp(cap, T0 + 6, 2, ee, "10.20.0.11", "10.20.0.11", hwdst=BROADCAST, dst=BROADCAST)
    clock_tick(cap)


def arp_poison_flood(cap):
    # The gateway answers for itself; then ettercap-style poisoning: 300 replies in 3 s from
    # 02:00:00:00:00:ee claiming 10.20.0.1, to 10.20.0.50.
    arp_resolve(cap, T0, "10.20.0.50", "10.20.0.1", ROUTER_MAC)
    ee = "02:00:00:00:00:ee"
    for i in range(300):
        arp(cap, T0 + 5 + i * 0.01, 2, ee, "10.20.0.1", "10.20.0.50", hwdst=mac_of("10.20.0.50"))
    clock_tick(cap)


def blocklist_shipped(cap):
    # Both kinds of entry of the shipped blocklist: a workstation talks HTTPS to 198.51.100.66
    # (twice), and 192.0.2.44 (in 192.0.2.0/24) tries Telnet on a city host and is refused.
    for i in range(2):
        session(cap, T0 + i * 3, "10.20.0.9", "198.51.100.66", 45000 + i, 443,
                [("c", TLS_HELLO), ("s", TLS_SERVER), ("c", TLS_DATA)], close="client", isn=4000 + i)
    refused(cap, T0 + 10, "192.0.2.44", "10.20.0.25", 51515, 23)
    clock_tick(cap)


def c2_beacon(cap):
    # A workstation beacons over HTTPS to 203.0.113.203 every 10 s for a minute, and fetches
    # a page from 203.0.113.190 once. Neither is on the shipped blocklist; a feed listing
    # 203.0.113.200/29 names the first.
    for i in range(7):
        session(cap, T0 + i * 10, "10.20.0.40", "203.0.113.203", 46000 + i, 443,
                [("c", TLS_HELLO), ("s", TLS_SERVER), ("c", TLS_DATA), ("s", TLS_DATA)], isn=5000 + i)
    session(cap, T0 + 15, "10.20.0.40", "203.0.113.190", 46100, 443,
            [("c", TLS_HELLO), ("s", TLS_SERVER)], close="client")
    clock_tick(cap)


# ---- normal traffic that must stay silent --------------------------------------------------
WEB = [f"203.0.113.{100 + i}" for i in range(20)] + [f"198.51.100.{100 + i}" for i in range(20)]


def normal_web_browsing(cap):
    # A workstation browses: A and AAAA lookups for 40 sites, then HTTPS (HTTP for 5 of them)
    # to each, every handshake completed; closes by the server, by the client, and Windows'
    # abortive RST+ACK.
    for i, server in enumerate(WEB):
        t = T0 + i * 0.7
        name = f"www.site{i}.example"
        dns_exchange(cap, t, "10.20.0.9", name, 1000 + 2 * i, answer=server)
        dns_exchange(cap, t + 0.004, "10.20.0.9", name, 1001 + 2 * i, qtype="AAAA", rcode=0)
        port = 80 if i % 8 == 7 else 443
        hello = b"GET / HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n" if port == 80 else TLS_HELLO
        session(cap, t + 0.02, "10.20.0.9", server, 49152 + i, port,
                [("c", hello), ("s", TLS_SERVER), ("c", TLS_DATA), ("s", TLS_DATA * 4)],
                close=["server", "client", "abort"][i % 3], rtt=0.03, isn=6000 + i)
    clock_tick(cap)


def normal_busy_client(cap):
    # A busy client opens connections to 40 different servers on 443 within 2 s; every one
    # is answered with SYN-ACK and completed, and stays open (ended by the meter's idle
    # timeout). Not a scan.
    for i, server in enumerate(WEB):
        c = Tcp(cap, "10.20.0.9", server, 50000 + i, 443, isn_c=8000 + i)
        t = c.handshake(T0 + i * 0.05, 0.02)
        c.c_send(t + 0.001, TLS_HELLO, 0.02)
        c.s_send(t + 0.03, TLS_SERVER, 0.02)
    clock_tick(cap)


def normal_dns(cap):
    # A city resolver serving 20 workstations for 2 minutes: ordinary names (A, AAAA), mail
    # and directory lookups (MX, SRV), reverse lookups (IPv4 and IPv6), CDN names, typos
    # answered NXDOMAIN, and Windows asking for wpad, repeated; the resolver's own upstream
    # queries go to an outside server.
    names = [("www.city.example", "A"), ("www.city.example", "AAAA"), ("mail.example.net", "MX"),
             ("_ldap._tcp.dc._msdcs.city.example", "SRV"), ("time.example.com", "A"),
             ("25.113.0.203.in-addr.arpa", "PTR"),
             ("b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa", "PTR"),
             ("d111111abcdef8.cloudfront.net", "A"), ("e12345.dscb.akamaiedge.net", "A"),
             ("r4---sn-aigl6nze.googlevideo.com", "A"), ("www.msftconnecttest.com", "A"),
             ("outlook.office365.com", "AAAA"), ("safebrowsing.googleapis.com", "A")]
    qid = 2000
    for k in range(20):
        client = f"10.20.1.{10 + k}"
        for j, (name, qtype) in enumerate(names[k % 4::2]):
            t = T0 + k * 5 + j * 0.5
            dns_exchange(cap, t, client, name, qid, qtype=qtype, answer="203.0.113.80" if qtype == "A" else None)
            qid += 1
        dns_exchange(cap, T0 + k * 5 + 3, client, "wpad.city.example", qid, rcode=3)
        dns_exchange(cap, T0 + k * 5 + 3.5, client, f"www.exmaple{k}.org", qid + 1, rcode=3)
        qid += 2
    for j, (name, qtype) in enumerate(names):
        dns_exchange(cap, T0 + 0.1 + j, "10.20.0.53", name, 3000 + j, qtype=qtype, server="198.51.100.53",
                     answer="203.0.113.80" if qtype == "A" else None, sport=53000 + j)
    clock_tick(cap)


def normal_arp_dhcp(cap):
    # A laptop joins: DHCP discover, offer, request, ack; ARP probes for its new address
    # (sender 0.0.0.0) and two gratuitous announcements from its own MAC; then it resolves
    # the gateway. 20 other hosts resolve the gateway too and get the same answer, and the
    # gateway re-announces itself gratuitously from its own MAC. Later the laptop renews.
    laptop, server, lease = "02:00:00:00:10:01", "10.20.0.2", "10.20.0.77"
    opts = lambda kind: [("message-type", kind), ("server_id", server), ("subnet_mask", "255.255.255.0"),
                         ("router", "10.20.0.1"), ("lease_time", 3600), "end"]
    boot = lambda op, ciaddr="0.0.0.0", yiaddr="0.0.0.0": BOOTP(op=op, xid=0x3903F326, chaddr=bytes.fromhex("020000001001"),
                                                               ciaddr=ciaddr, yiaddr=yiaddr, flags=0)
    cap.add(T0, Ether(src=laptop, dst=BROADCAST) / IP(src="0.0.0.0", dst="255.255.255.255") /
            UDP(sport=68, dport=67) / boot(1) / DHCP(options=[("message-type", "discover"), "end"]))
    cap.add(T0 + 0.01, Ether(src=mac_of(server), dst=laptop) / IP(src=server, dst=lease) /
            UDP(sport=67, dport=68) / boot(2, yiaddr=lease) / DHCP(options=opts("offer")))
    cap.add(T0 + 0.02, Ether(src=laptop, dst=BROADCAST) / IP(src="0.0.0.0", dst="255.255.255.255") /
            UDP(sport=68, dport=67) / boot(1) /
            DHCP(options=[("message-type", "request"), ("requested_addr", lease), ("server_id", server), "end"]))
    cap.add(T0 + 0.03, Ether(src=mac_of(server), dst=laptop) / IP(src=server, dst=lease) /
            UDP(sport=67, dport=68) / boot(2, yiaddr=lease) / DHCP(options=opts("ack")))
    for i in range(3):
        arp(cap, T0 + 0.1 + i * 0.2, 1, laptop, "0.0.0.0", lease)
    for i in range(2):
        arp(cap, T0 + 1 + i * 2, 1, laptop, lease, lease)
    arp(cap, T0 + 3.5, 1, laptop, lease, "10.20.0.1")
    arp(cap, T0 + 3.5004, 2, ROUTER_MAC, "10.20.0.1", lease, hwdst=laptop)
    for k in range(20):
        arp_resolve(cap, T0 + 5 + k, f"10.20.0.{100 + k}", "10.20.0.1", ROUTER_MAC)
    arp(cap, T0 + 30, 2, ROUTER_MAC, "10.20.0.1", "10.20.0.1", hwdst=BROADCAST, dst=BROADCAST)
    cap.add(T0 + 60, Ether(src=laptop, dst=mac_of(server)) / IP(src=lease, dst=server) /
            UDP(sport=68, dport=67) / boot(1, ciaddr=lease) / DHCP(options=[("message-type", "request"), "end"]))
    cap.add(T0 + 60.01, Ether(src=mac_of(server), dst=laptop) / IP(src=server, dst=lease) /
            UDP(sport=67, dport=68) / boot(2, ciaddr=lease, yiaddr=lease) / DHCP(options=opts("ack")))
    clock_tick(cap)


def normal_public_web_server(cap):
    # The city's public web server 10.0.7.80 (on lists/public-servers.txt in its case):
    # 50 outside visitors in 10 s, on HTTP (80) and HTTPS (443), every request answered.
    for i in range(50):
        src = f"203.0.113.{100 + i}" if i < 25 else f"198.51.100.{100 + i}"
        port = 80 if i % 2 else 443
        req = b"GET / HTTP/1.1\r\nHost: www.city.example\r\n\r\n" if port == 80 else TLS_HELLO
        session(cap, T0 + i * 0.2, src, "10.0.7.80", 40000 + i, port,
                [("c", req), ("s", TLS_SERVER)], close=["server", "client"][i % 2], rtt=0.03, isn=9000 + i)
    clock_tick(cap)


def normal_ssh_admin(cap):
    # An administrator's SSH sessions to a server within a minute (log in, check, copy a file
    # with scp): 3 connections, closed by the server as OpenSSH does after the session.
    for i in range(3):
        ssh_login_attempt(cap, T0 + i * 20, "10.20.0.9", "10.20.0.22", 41000 + i, isn=10000 + i)
    clock_tick(cap)


def normal_refused_retries(cap):
    # An application retrying a database that is down: 20 attempts to 10.20.0.60:5432 in a
    # minute, each refused; and a monitoring server checking 8 service ports of one host
    # every 30 s (5 of them closed, refused).
    for i in range(20):
        refused(cap, T0 + i * 3, "10.20.0.61", "10.20.0.60", 52000 + i, 5432)
    for rnd in range(3):
        for j, port in enumerate([22, 25, 53, 80, 110, 143, 443, 993]):
            t = T0 + rnd * 30 + j * 0.1
            if port in (22, 80, 443):
                session(cap, t, "10.20.0.5", "10.20.0.70", 53000 + rnd * 10 + j, port,
                        [("s", b"220 ready\r\n")], isn=11000 + rnd * 10 + j)
            else:
                refused(cap, t, "10.20.0.5", "10.20.0.70", 53000 + rnd * 10 + j, port)
    clock_tick(cap)


# ---- known bugs (tests/corpus/known-bugs/: run with CW_CORPUS_KNOWN_BUGS=1) ----------------
def ssh_admin_client_closes(cap):
    # The same 3 administrator SSH sessions, closed by the client first (FIN from the client,
    # the server's FIN, the client's last ACK).
    for i in range(3):
        ssh_login_attempt(cap, T0 + i * 20, "10.20.0.9", "10.20.0.22", 41000 + i, close="client", isn=10000 + i)
    clock_tick(cap)


def nvr_camera_streams(cap):
    # A video recorder (10.20.5.10) receives 10 camera streams (RTP over UDP) of 150
    # packets/s each for 59 s: 1,500 packets/s in all, under a third of udp_flood's 5,000.
    for c in range(10):
        cam = f"10.20.5.{100 + c}"
        pkt = ip(cam, "10.20.5.10") / UDP(sport=50000 + 2 * c, dport=40000 + 2 * c) / \
            Raw(b"\x80\x60" + bytes(10) + b"\x47" * 1316)
        cap.repeat([T0 + (k * 10 + c) / 1500 for k in range(150 * 59)], pkt, SNAP_FLOOD)
    clock_tick(cap)


def https_client_resets(cap):
    # A browser on Linux: 40 HTTPS connections, each completed and used; the client closes
    # with RST+ACK while the server still sends, and its kernel answers the server's segment
    # in flight with a bare RST (RFC 9293 3.10.7.1: no socket any more, the segment had ACK).
    for i, server in enumerate(WEB):
        t = T0 + i * 0.05
        c = session(cap, t, "10.20.0.9", server, 51000 + i, 443,
                    [("c", TLS_HELLO), ("s", TLS_SERVER), ("c", TLS_DATA)], close=None, rtt=0.02, isn=12000 + i)
        c.abort(t + 0.2)
        c._s(t + 0.21, "PA", TLS_DATA)
        c._c(t + 0.211, "R", ack=False)  # seq: the ACK of the segment it answers
    clock_tick(cap)


def dns_elb_service(cap):
    # A workstation uses a web service behind an AWS load balancer (the name from AWS's
    # documentation): the name's TTL is 60 s, so it is looked up (A and AAAA) every minute.
    name = "my-load-balancer-1234567890.us-west-2.elb.amazonaws.com"
    for i in range(5):
        dns_exchange(cap, T0 + i * 60, "10.20.0.9", name, 13000 + 2 * i, answer="203.0.113.60")
        dns_exchange(cap, T0 + i * 60 + 0.004, "10.20.0.9", name, 13001 + 2 * i, qtype="AAAA")
    clock_tick(cap)


CAPTURES = {f.__name__: f for f in [
    scan_vertical, scan_horizontal, ssh_guessing, rdp_guessing, telnet_guessing, smb_exposed,
    http_admin_outside, snmp_outside, syn_flood, udp_flood, icmp_flood, dns_tunnel,
    dns_many_subdomains, arp_spoof, arp_takeover, arp_poison_flood, blocklist_shipped, c2_beacon,
    normal_web_browsing, normal_busy_client, normal_dns, normal_arp_dhcp,
    normal_public_web_server, normal_ssh_admin, normal_refused_retries,
    ssh_admin_client_closes, nvr_camera_streams, https_client_resets, dns_elb_service]}

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_captures.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in CAPTURES.items():
        cap = Capture()
        make(cap)
        cap.write(os.path.join(out, name + ".pcap"))
        print(name, len(cap.frames))
