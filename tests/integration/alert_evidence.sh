#!/usr/bin/env bash
# Evidence that grows while an alert fires (issue 13, acceptance 3), through the real agent
# and collector: a capture made here with scapy has an outside host SYN-scanning tcp/445
# across 10.1.2.1-253 in 2 seconds (each probe refused), then ordinary traffic 6 minutes
# later. The pack's port_scan_horizontal fires at its threshold (25 hosts), the JSONL sink
# writes an update line as the count grows, and the resolved line, written once the replayed
# event clock passes the 5-minute hold-down (no wall-clock wait), says 253 hosts with the
# scan's duration. The same capture has a gratuitous ARP reply moving 10.1.2.10 to another
# MAC: arp_gratuitous_takeover names both MACs; then that MAC floods the segment with 300
# ARP replies claiming the gateway 10.1.2.1 in 3 s, while the real gateway answers 5 times:
# arp_reply_flood names the MAC and the address, and its final line says 300 (acceptance 4).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v jq >/dev/null || { echo "SKIP: jq not found" >&2; exit 77; }

/usr/bin/python3 - "$WORK/scan.pcap" <<'PY' || fail "scapy failed"
import sys
from scapy.all import Ether, IP, TCP, wrpcap
t0 = 1700000000.0
pkts = []
for h in range(1, 254):
    t = t0 + h * 0.008
    syn = Ether(src="02:00:00:00:00:09", dst="02:00:00:00:00:01") / IP(src="203.0.113.9", dst=f"10.1.2.{h}") / TCP(sport=50000, dport=445, flags="S", seq=1000)
    syn.time = t
    rst = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:09") / IP(src=f"10.1.2.{h}", dst="203.0.113.9") / TCP(sport=445, dport=50000, flags="RA", ack=1001)
    rst.time = t + 0.0005
    pkts += [syn, rst]
# ARP: 10.1.2.10 answers for itself from ...:aa, then ...:ee claims it in a gratuitous reply.
from scapy.all import ARP
owner = Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01") / ARP(op=2, hwsrc="02:00:00:00:00:aa", psrc="10.1.2.10", hwdst="02:00:00:00:00:01", pdst="10.1.2.1")
owner.time = t0 + 5
spoof = Ether(src="02:00:00:00:00:ee", dst="ff:ff:ff:ff:ff:ff") / ARP(op=2, hwsrc="02:00:00:00:00:ee", psrc="10.1.2.10", hwdst="ff:ff:ff:ff:ff:ff", pdst="10.1.2.10")
spoof.time = t0 + 6
pkts += [owner, spoof]
for i in range(300):
    p = Ether(src="02:00:00:00:00:ee", dst="02:00:00:00:00:32") / ARP(op=2, hwsrc="02:00:00:00:00:ee", psrc="10.1.2.1", hwdst="02:00:00:00:00:32", pdst="10.1.2.50")
    p.time = t0 + 10 + i * 0.01
    pkts.append(p)
for i in range(5):
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:32") / ARP(op=2, hwsrc="02:00:00:00:00:01", psrc="10.1.2.254", hwdst="02:00:00:00:00:32", pdst="10.1.2.50")
    p.time = t0 + 10 + i * 0.5
    pkts.append(p)
pkts.sort(key=lambda p: p.time)
# Ordinary traffic 6 minutes later moves the event clock past the rule's 5-minute hold-down.
for i in range(4):
    p = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / IP(src="10.1.2.7", dst="10.1.2.8") / TCP(sport=40000, dport=443, flags="A")
    p.time = t0 + 360 + i
    pkts.append(p)
wrpcap(sys.argv[1], pkts)
PY

cw_certs "$WORK/pki" evidence-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$SRC_DIR/rules]
alerts:
  jsonl: $WORK/alerts.jsonl"
cw_start_collector collector "$WORK/collector.yaml"
cw_replay evidence-agent "$WORK/scan.pcap"

scan() { jq -s -c '[.[] | select(.rule == "port_scan_horizontal" and .labels.src == "203.0.113.9")]' "$WORK/alerts.jsonl"; }
resolved() { [[ -f "$WORK/alerts.jsonl" ]] && [[ "$(scan | jq -r '.[-1].state')" == resolved ]]; }
cw_wait_until 300 "port_scan_horizontal to fire and resolve on the replayed event clock" resolved
lines=$(scan)
states=$(jq -r '[.[].state] | join(",")' <<<"$lines")
values=$(jq -r '[.[].value] | join(",")' <<<"$lines")
cw_expect "first line" "$(jq -r '.[0].state + " " + (.[0].value | tostring)' <<<"$lines")" "firing 25"
[[ "$states" == firing,*update*,resolved ]] || fail "expected firing, update(s), resolved; got $states ($values)"
jq -e '[.[].value] as $v | all(range(1; $v | length); $v[.] >= $v[. - 1])' <<<"$lines" >/dev/null ||
  fail "the value went down: $values"
cw_expect "the resolved line's value (hosts probed)" "$(jq -r '.[-1].value' <<<"$lines")" 253
cw_expect "its examples (bounded)" "$(jq -r '.[-1].examples | length' <<<"$lines")" 5
duration=$(jq -r '.[-1].duration_seconds' <<<"$lines")
awk -v d="$duration" 'BEGIN { exit !(d >= 1.9 && d <= 2.1) }' ||
  fail "duration_seconds is $duration, the scan lasted 2.0 s of capture time (first to last probe)"
cw_expect "first_seen (capture time of the scan)" "$(jq -r '.[-1].first_seen' <<<"$lines" | cut -c1-19)" "2023-11-14T22:13:20"

# The gratuitous ARP takeover names the address and both MACs.
arp=$(jq -s -c '[.[] | select(.rule == "arp_gratuitous_takeover" and .state == "firing")]' "$WORK/alerts.jsonl")
cw_expect "arp_gratuitous_takeover alerts" "$(jq length <<<"$arp")" 1
cw_expect "its labels" "$(jq -r '.[0].labels | .src + " " + .mac + " " + .prev_mac' <<<"$arp")" \
  "10.1.2.10 02:00:00:00:00:ee 02:00:00:00:00:aa"

# The ARP reply flood: one alert naming the MAC and the address it claims, 300 replies.
flood=$(jq -s -c '[.[] | select(.rule == "arp_reply_flood")]' "$WORK/alerts.jsonl")
cw_expect "arp_reply_flood firing lines" "$(jq '[.[] | select(.state == "firing")] | length' <<<"$flood")" 1
cw_expect "its labels" "$(jq -r '.[0].labels | .mac + " " + .src' <<<"$flood")" "02:00:00:00:00:ee 10.1.2.1"
flood_resolved() { [[ "$(jq -s -r '[.[] | select(.rule == "arp_reply_flood")][-1].state' "$WORK/alerts.jsonl")" == resolved ]]; }
cw_wait_until 100 "arp_reply_flood resolved on the replayed event clock" flood_resolved
flood=$(jq -s -c '[.[] | select(.rule == "arp_reply_flood")]' "$WORK/alerts.jsonl")
cw_expect "replies counted by its last line" "$(jq -r '.[-1].value' <<<"$flood")" 300
cw_log "arp_reply_flood: $(jq -r '.[0].summary' <<<"$flood")"

echo "PASS: gratuitous ARP takeover of 10.1.2.10 (aa -> ee) alerted; ARP reply flood from ee claiming 10.1.2.1 alerted once, 300 replies; port_scan_horizontal lines $states with values $values; resolved after the replayed hold-down with 253 hosts over ${duration} s"
