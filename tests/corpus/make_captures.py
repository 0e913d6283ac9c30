#!/usr/bin/env python3
"""The detection corpus's captures, made with scapy (run with /usr/bin/python3, which has
python3-scapy): one pcap per case directory under tests/corpus/cases/, written to OUTDIR as
CASE.pcap. Each is small and deterministic (fixed times from 2023-11-14T22:13:20Z, fixed
addresses: 10.0.0.0/8 is the city's, 203.0.113.0/24 the outside, 198.51.100.66 is on the
shipped blocklist). Where a detection depends on answers, the exchange is two-way: refused
probes get their RST, connections their SYN-ACK, ACK, data and FIN.

    /usr/bin/python3 tests/corpus/make_captures.py OUTDIR
"""
import os
import struct
import sys

from scapy.all import ARP, DNS, DNSQR, DNSRR, Ether, ICMP, IP, TCP, UDP, Raw

T0 = 1700000000.0
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


class Capture:
    def __init__(self):
        self.frames = []  # (time, bytes)

    def add(self, t, pkt):
        self.frames.append((t, bytes(pkt)))

    def repeat(self, t0, gap, count, pkt):
        raw = bytes(pkt)
        for i in range(count):
            self.frames.append((t0 + i * gap, raw))

    def write(self, path):
        self.frames.sort(key=lambda f: f[0])
        with open(path, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for t, raw in self.frames:
                sec = int(t)
                usec = int(round((t - sec) * 1e6))
                if usec == 1000000:
                    sec, usec = sec + 1, 0
                out.write(struct.pack("<IIII", sec, usec, len(raw), len(raw)))
                out.write(raw)


def eth(src=CLIENT_MAC, dst=SERVER_MAC):
    return Ether(src=src, dst=dst)


def connection(cap, t, client, server, sport, dport, payload=b"hello", reply=b"welcome"):
    """A complete TCP connection: handshake, one request and answer, FIN both ways."""
    c2s = lambda: eth() / IP(src=client, dst=server)
    s2c = lambda: eth(SERVER_MAC, CLIENT_MAC) / IP(src=server, dst=client)
    cap.add(t, c2s() / TCP(sport=sport, dport=dport, flags="S", seq=100))
    cap.add(t + 0.001, s2c() / TCP(sport=dport, dport=sport, flags="SA", seq=500, ack=101))
    cap.add(t + 0.002, c2s() / TCP(sport=sport, dport=dport, flags="A", seq=101, ack=501))
    cap.add(t + 0.003, c2s() / TCP(sport=sport, dport=dport, flags="PA", seq=101, ack=501) / Raw(payload))
    cap.add(t + 0.004, s2c() / TCP(sport=dport, dport=sport, flags="PA", seq=501, ack=101 + len(payload)) / Raw(reply))
    cap.add(t + 0.005, c2s() / TCP(sport=sport, dport=dport, flags="FA", seq=101 + len(payload), ack=501 + len(reply)))
    cap.add(t + 0.006, s2c() / TCP(sport=dport, dport=sport, flags="FA", seq=501 + len(reply), ack=102 + len(payload)))
    cap.add(t + 0.007, c2s() / TCP(sport=sport, dport=dport, flags="A", seq=102 + len(payload), ack=502 + len(reply)))


def refused(cap, t, client, server, sport, dport):
    """A SYN to a closed port and the RST that refuses it."""
    cap.add(t, eth() / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, flags="S", seq=100))
    cap.add(t + 0.0005, eth(SERVER_MAC, CLIENT_MAC) / IP(src=server, dst=client) /
            TCP(sport=dport, dport=sport, flags="RA", seq=0, ack=101))


def arp_reply(cap, t, mac, ip, target_ip, target_mac="02:00:00:00:00:32", dst=None):
    cap.add(t, Ether(src=mac, dst=dst or target_mac) /
            ARP(op=2, hwsrc=mac, psrc=ip, hwdst=target_mac, pdst=target_ip))


def dns_query(cap, t, client, name, qid, server="10.0.0.53", answer=True):
    q = eth() / IP(src=client, dst=server) / UDP(sport=40000 + qid % 20000, dport=53) / \
        DNS(id=qid, rd=1, qd=DNSQR(qname=name))
    cap.add(t, q)
    if answer:
        cap.add(t + 0.002, eth(SERVER_MAC, CLIENT_MAC) / IP(src=server, dst=client) /
                UDP(sport=53, dport=40000 + qid % 20000) /
                DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name),
                    an=DNSRR(rrname=name, ttl=300, rdata="10.9.9.9")))


# ---- attacks ----------------------------------------------------------------------------
def scan_vertical(cap):
    for port in range(1, 101):
        refused(cap, T0 + port * 0.01, "10.5.0.9", "10.5.0.20", 50000, port)


def scan_horizontal(cap):
    for h in range(1, 61):
        refused(cap, T0 + h * 0.01, "203.0.113.9", f"10.1.2.{h}", 50000, 445)


def ssh_guessing(cap):
    for i in range(8):
        connection(cap, T0 + i, "10.5.0.9", "10.5.0.20", 41000 + i, 22, b"SSH-2.0-guess", b"SSH-2.0-OpenSSH")


def rdp_guessing(cap):
    for i in range(8):
        connection(cap, T0 + i, "203.0.113.50", "10.1.3.10", 42000 + i, 3389, b"\x03\x00\x00\x13", b"\x03\x00\x00\x0b")


def syn_flood(cap):
    for i in range(1500):
        cap.add(T0 + i * 0.0006, eth() / IP(src="10.5.0.9", dst="10.5.0.20") /
                TCP(sport=1024 + i, dport=8080, flags="S", seq=i))


def udp_flood(cap):
    # 60,000 datagrams in 10 s at one host: 6,000 packets/s, above udp_flood's 5,000.
    cap.repeat(T0, 10.0 / 60000, 60000, eth() / IP(src="10.5.0.9", dst="10.5.0.30") /
               UDP(sport=5000, dport=9999) / Raw(b"x" * 18))


def icmp_flood(cap):
    # 15,000 echo requests in 10 s: 1,500 packets/s, above icmp_flood's 1,000.
    cap.repeat(T0, 10.0 / 15000, 15000, eth() / IP(src="10.5.0.9", dst="10.5.0.31") /
               ICMP(type=8, id=7, seq=1) / Raw(b"p" * 32))


def dns_tunnel(cap):
    for i in range(10):
        label = ("%02d" % i) + "a7f3c9e1b5d2f8a4c6e0b9d1f7a3c5e2b8d4f6a0c1"
        dns_query(cap, T0 + i * 0.5, "10.5.0.9", f"{label}.tunnel.example", 100 + i)


def arp_spoof(cap):
    arp_reply(cap, T0, "02:00:00:00:00:aa", "10.5.0.1", "10.5.0.20")
    arp_reply(cap, T0 + 5, "02:00:00:00:00:ee", "10.5.0.1", "10.5.0.20")


def arp_gratuitous(cap):
    arp_reply(cap, T0, "02:00:00:00:00:aa", "10.5.0.10", "10.5.0.20")
    arp_reply(cap, T0 + 5, "02:00:00:00:00:ee", "10.5.0.10", "10.5.0.10",
              target_mac="ff:ff:ff:ff:ff:ff", dst="ff:ff:ff:ff:ff:ff")


def arp_reply_flood(cap):
    for i in range(300):
        arp_reply(cap, T0 + i * 0.01, "02:00:00:00:00:ee", "10.5.0.1", "10.5.0.50")


def blocklisted(cap):
    connection(cap, T0, "10.5.0.9", "198.51.100.66", 43000, 443)
    connection(cap, T0 + 2, "10.5.0.9", "198.51.100.66", 43001, 443)


def snmp_from_outside(cap):
    cap.add(T0, eth() / IP(src="203.0.113.7", dst="10.1.4.1") / UDP(sport=50161, dport=161) /
            Raw(b"\x30\x26\x02\x01\x01\x04\x06public\xa0\x19\x02\x01\x01\x02\x01\x00\x02\x01\x00"
                b"\x30\x0e\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x05\x00"))


def cleartext_admin(cap):
    connection(cap, T0, "203.0.113.8", "10.1.5.1", 44000, 23, b"admin\r\n", b"Password: ")


# ---- normal traffic that must stay silent ------------------------------------------------
def normal_browsing(cap):
    # A busy client: 40 web servers on 443, each answered and completed, and the DNS
    # lookups for them: no scan, no tunnel, nothing.
    for i in range(40):
        t = T0 + i * 0.2
        dns_query(cap, t, "10.5.0.9", f"www{i}.example.org", 200 + i)
        connection(cap, t + 0.05, "10.5.0.9", f"203.0.113.{100 + i}", 45000 + i, 443,
                   b"\x16\x03\x01" + b"c" * 200, b"\x16\x03\x03" + b"s" * 1200)


def normal_busy_server(cap):
    # 30 clients of one city web server, and two SSH logins by an administrator.
    for i in range(30):
        connection(cap, T0 + i * 0.1, f"10.6.0.{i + 10}", "10.5.0.20", 46000 + i, 443)
    connection(cap, T0 + 5, "10.5.0.9", "10.5.0.21", 47000, 22)
    connection(cap, T0 + 60, "10.5.0.9", "10.5.0.21", 47001, 22)


def normal_arp_dhcp(cap):
    # Hosts asking for their gateway and getting the same answer, a DHCP exchange, and a
    # host announcing itself gratuitously from its own MAC.
    for i in range(20):
        t = T0 + i
        cap.add(t, Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") /
                ARP(op=1, hwsrc=CLIENT_MAC, psrc="10.5.0.9", pdst="10.5.0.1"))
        arp_reply(cap, t + 0.001, "02:00:00:00:00:a1", "10.5.0.1", "10.5.0.9", CLIENT_MAC)
    cap.add(T0 + 30, Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") /
            IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) / Raw(b"\x01" + b"\x00" * 239))
    cap.add(T0 + 30.01, Ether(src="02:00:00:00:00:a1", dst=CLIENT_MAC) /
            IP(src="10.5.0.1", dst="10.5.0.77") / UDP(sport=67, dport=68) / Raw(b"\x02" + b"\x00" * 239))
    arp_reply(cap, T0 + 31, "02:00:00:00:00:a1", "10.5.0.1", "10.5.0.1",
              target_mac="ff:ff:ff:ff:ff:ff", dst="ff:ff:ff:ff:ff:ff")


CASES = {f.__name__: f for f in [
    scan_vertical, scan_horizontal, ssh_guessing, rdp_guessing, syn_flood, udp_flood,
    icmp_flood, dns_tunnel, arp_spoof, arp_gratuitous, arp_reply_flood, blocklisted,
    snmp_from_outside, cleartext_admin, normal_browsing, normal_busy_server, normal_arp_dhcp]}

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in CASES.items():
        cap = Capture()
        make(cap)
        cap.write(os.path.join(out, name + ".pcap"))
        print(name, len(cap.frames))
