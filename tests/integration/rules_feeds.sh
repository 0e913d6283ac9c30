#!/usr/bin/env bash
# Threat feeds and one alert per conversation (issue 13, acceptance 5), against the real
# collector fed by a real agent: a Spamhaus DROP feed and a Suricata iprep feed load; the
# collector reloads them by itself when their files change (rewritten by `mv` as a cron job
# does, or in place), with no SIGHUP; addresses match at the range edges (IPv4 and IPv6); a
# conversation in both directions with a listed address is one alert naming the list, the
# entry and its SBL id; a malformed line is rejected with FILE:LINE and the old list stays.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v jq >/dev/null || { echo "SKIP: jq not found" >&2; exit 77; }

R=$WORK/rules
mkdir -p "$R"
cat >"$R/feeds.yaml" <<'YAML'
lists:
  - name: drop
    file: drop.txt
    format: spamhaus_drop
  - name: reputation
    file: reputation.csv
    format: iprep
    min_score: 50
rules:
  - name: listed_conversation
    kind: list
    record: flow
    description: Traffic with an address on the Spamhaus DROP list.
    runbook: Find the internal host; block the range.
    summary: "Traffic between {peer} and {listed}, listed on {list} as {list_entry} ({list_reference})"
    severity: critical
    list: drop
    fields: [src, dst]
    conversation: true
  - name: bad_reputation
    kind: list
    record: flow
    description: Traffic with an address of bad reputation.
    runbook: Check the host.
    list: reputation
    fields: [src, dst]
    conversation: true
YAML
printf '; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n' >"$R/drop.txt"
printf '# ip,category,score\n203.0.113.0/24,1,20\n' >"$R/reputation.csv"  # below min_score

cw_certs "$WORK/pki" feeds-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$R]
alerts:
  jsonl: $WORK/alerts.jsonl"
cw_start_collector collector "$WORK/collector.yaml"
entries() { cw_metric "$METRICS_PORT" citywatch_rules_list_entries "list=\"$1\""; }
cw_expect "entries of drop at start" "$(entries drop)" 1
cw_expect "entries of reputation at start (score 20 < min_score 50)" "$(entries reputation)" 0

# A feed update as cron does it: a new file moved over the old one. Then one rewritten in
# place. The collector notices both without a signal.
printf '; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n198.51.100.0/24 ; SBL1234\n2001:db8:bad::/48 ; SBL5678\n' \
  >"$R/drop.txt.new"
mv "$R/drop.txt.new" "$R/drop.txt"
printf '# ip,category,score\n203.0.113.0/24,1,90\n' >"$R/reputation.csv"
updated() { [[ "$(entries drop)" == 3 && "$(entries reputation)" == 1 ]]; }
cw_wait_until 150 "the collector to reload the changed feeds by itself (drop 3, reputation 1 entries)" updated
grep -q "a rule or list file changed; reloading" "$WORK/collector.log" || fail "no reload logged"

# Traffic: a conversation with 198.51.100.255 (the /24's last address) in both directions,
# one with 2001:db8:bad:ffff:ffff:ffff:ffff:ffff (the /48's last), a probe from 203.0.113.0
# (the iprep range's first), and 198.51.101.0 just past the DROP range: no alert for it.
/usr/bin/python3 - "$WORK/feeds.pcap" <<'PY' || fail "scapy failed"
import sys
from scapy.all import Ether, IP, IPv6, TCP, Raw, wrpcap
E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
t = 1700000000.0
pkts = []
def conv(mk, a, b, sport, n=6):
    global t
    for i in range(n):
        fwd = i % 2 == 0
        p = E / mk(src=a if fwd else b, dst=b if fwd else a) / TCP(
            sport=sport if fwd else 443, dport=443 if fwd else sport, flags="S" if i == 0 else "A") / Raw(b"x" * 50)
        p.time = t
        t += 0.05
        pkts.append(p)
conv(IP, "10.0.0.5", "198.51.100.255", 40000)
conv(IPv6, "fd00::5", "2001:db8:bad:ffff:ffff:ffff:ffff:ffff", 40001)
conv(IP, "203.0.113.0", "10.0.0.7", 40002, n=1)
conv(IP, "10.0.0.6", "198.51.101.0", 40003)
wrpcap(sys.argv[1], pkts)
PY
cw_replay feeds-agent "$WORK/feeds.pcap"
firing() { jq -s -c "[.[] | select(.state == \"firing\" and .rule == \"$1\")]" "$WORK/alerts.jsonl"; }
all_fired() {
  [[ -f "$WORK/alerts.jsonl" ]] &&
    [[ "$(firing listed_conversation | jq length)" == 2 && "$(firing bad_reputation | jq length)" == 1 ]]
}
cw_wait_until 150 "2 listed_conversation alerts and 1 bad_reputation alert" all_fired
sleep 2  # anything else the records would raise has arrived by now
cw_expect "listed_conversation alerts (one per conversation, both directions seen)" \
  "$(firing listed_conversation | jq length)" 2
v4=$(firing listed_conversation | jq -c '.[] | select(.labels.listed == "198.51.100.255")')
[[ -n "$v4" ]] || fail "no alert for 198.51.100.255: $(firing listed_conversation)"
cw_expect "its peer" "$(jq -r .labels.peer <<<"$v4")" 10.0.0.5
cw_expect "its list entry" "$(jq -r .details.list_entry <<<"$v4")" 198.51.100.0/24
cw_expect "its SBL id" "$(jq -r .details.list_reference <<<"$v4")" SBL1234
cw_expect "its summary" "$(jq -r .summary <<<"$v4")" \
  "Traffic between 10.0.0.5 and 198.51.100.255, listed on drop as 198.51.100.0/24 (SBL1234)"
v6=$(firing listed_conversation | jq -r '.[] | select(.labels.peer == "fd00::5") | .details.list_entry')
cw_expect "the IPv6 conversation's entry" "$v6" 2001:db8:bad::/48
cw_expect "the iprep alert's reference" "$(firing bad_reputation | jq -r '.[0].details.list_reference')" \
  "category 1 score 90"
if jq -s -e 'any(.[]; .labels.listed == "198.51.101.0" or .labels.peer == "198.51.101.0")' \
  "$WORK/alerts.jsonl" >/dev/null; then
  fail "198.51.101.0, just past the DROP range, raised an alert"
fi

# A malformed line: rejected with FILE:LINE, the old list stays, and it is not retried.
printf '198.51.102.0/33 ; SBL9\n' >>"$R/drop.txt"
rejected() { (( $(cw_metric "$METRICS_PORT" citywatch_rules_reloads_total 'result="rejected"') >= 1 )); }
cw_wait_until 150 "the broken feed to be rejected" rejected
grep -q "$R/drop.txt:5: expected an IP address or CIDR, got '198.51.102.0/33'" "$WORK/collector.log" ||
  fail "the log does not name drop.txt:5: $(grep -A3 'reload rejected' "$WORK/collector.log")"
cw_expect "entries of drop after the rejected reload (the old list stays)" "$(entries drop)" 3
sleep 6  # one more look at the files: the same broken file is not reloaded again
cw_expect "rejected reloads of the same broken file" \
  "$(cw_metric "$METRICS_PORT" citywatch_rules_reloads_total 'result="rejected"')" 1

echo "PASS: DROP and iprep feeds reloaded on change without SIGHUP (3 and 1 entries); 2 conversations in both directions -> 2 alerts naming 198.51.100.0/24 SBL1234 and 2001:db8:bad::/48; iprep 'category 1 score 90'; edge 198.51.101.0 silent; a bad line rejected at drop.txt:5, old list kept"
