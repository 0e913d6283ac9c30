#!/usr/bin/env bash
# `citywatch-agent decode` on a packet capture (issue 13): the real segment-a capture is
# metered as `citywatch-agent -r` meters it and its flows and packet events are printed as
# JSON lines. Checked against tshark on the same file: frames, IP packets and IP bytes in the
# flows, and the DNS queries among the packet events (each one a query tshark sees).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
for tool in tshark jq; do command -v "$tool" >/dev/null || { echo "SKIP: $tool not found" >&2; exit 77; }; done
[[ -f "$SEGMENT_A" ]] || fail "segment-a.pcap not found at $SEGMENT_A (../shared/testdata is needed)"

"$AGENT_BIN" decode "$SEGMENT_A" >"$WORK/records.jsonl" 2>"$WORK/summary.json" ||
  fail "decode failed: $(cat "$WORK/summary.json")"
S=$(tail -1 "$WORK/summary.json")
frames=$(tshark -n -r "$SEGMENT_A" 2>/dev/null | wc -l)
ip_packets=$(tshark -n -r "$SEGMENT_A" -Y 'ip or ipv6' 2>/dev/null | wc -l)
ip_bytes=$(tshark -n -r "$SEGMENT_A" -Y 'ip or ipv6' -T fields -e ip.len -e ipv6.plen 2>/dev/null |
  awk -F'\t' '{ s += ($1 != "" ? $1 : $2 + 40) } END { print s + 0 }')
cw_expect "frames metered" "$(jq -r .frames_metered <<<"$S")" "$frames"
cw_expect "packets in the printed flows" \
  "$(jq -s '[.[] | select(.kind == "flow") | .packets] | add' "$WORK/records.jsonl")" "$ip_packets"
cw_expect "bytes in the printed flows (IP lengths)" \
  "$(jq -s '[.[] | select(.kind == "flow") | .bytes] | add' "$WORK/records.jsonl")" "$ip_bytes"
cw_expect "flows printed = summary" "$(grep -c '"kind":"flow"' "$WORK/records.jsonl")" "$(jq -r .flows <<<"$S")"
# Packet events are budgeted per key and per kind (docs/packet-capture.md), so not every
# query is an event; every event must be a query tshark saw.
jq -r 'select(.kind == "packet_event" and .event == "dns_query") | [.src, .dst, .name] | @tsv' \
  "$WORK/records.jsonl" | sort -u >"$WORK/event-queries"
tshark -n -r "$SEGMENT_A" -Y 'dns.flags.response == 0 && !icmp' -T fields -e ip.src -e ip.dst \
  -e dns.qry.name 2>/dev/null | sort -u >"$WORK/tshark-queries"
n_event_queries=$(wc -l <"$WORK/event-queries")
((n_event_queries > 0)) || fail "no dns_query event"
missing=$(comm -23 "$WORK/event-queries" "$WORK/tshark-queries" | head -3)
[[ -z "$missing" ]] || fail "dns_query events tshark does not see: $missing"
events=$(jq -r .packet_events <<<"$S")
((events > 1000)) || fail "only $events packet events from a capture with an nmap scan"
# --mode exports on the same file prints no record: it has no flow exports.
"$AGENT_BIN" decode --mode exports "$SEGMENT_A" >"$WORK/exports.jsonl" 2>/dev/null || fail "decode --mode exports failed"
cw_expect "records with --mode exports" "$(wc -l <"$WORK/exports.jsonl")" 0

echo "PASS: decode metered segment-a: $frames frames, $ip_packets IP packets / $ip_bytes bytes in $(jq -r .flows <<<"$S") flows (= tshark), $events packet events (its $n_event_queries distinct DNS queries all in tshark's)"
