#!/usr/bin/env bash
# The detection conformance corpus, in the suricata-verify style (issue 13): for each case a
# capture the project makes itself (tests/corpus/make_captures.py, scapy) and an expected-
# alerts file (tests/corpus/expected/CASE.txt: one line per alert, `RULE LABEL=VALUE,... N`,
# N the exact number of firing lines with those labels; an empty file is a case that must
# stay silent). Each case is replayed by a real agent (-r) into a fresh real collector with
# the shipped rule pack; the JSON lines alert log must hold every expected alert exactly N
# times and no other firing alert (agent_disconnected, raised when each replay's session
# ends, is the proof that every record was consumed, and is not compared).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v jq >/dev/null || fail "jq not found (apt-get install jq)"
CORPUS="$SRC_DIR/tests/corpus"
/usr/bin/python3 "$CORPUS/make_captures.py" "$WORK/captures" >"$WORK/captures.log" 2>&1 ||
  fail "make_captures.py failed (python3-scapy?): $(tail -3 "$WORK/captures.log")"
cw_certs "$WORK/pki" corpus-agent

cases=0 silent=0 expected_total=0 frames=0
for exp in "$CORPUS"/expected/*.txt; do
  name=$(basename "$exp" .txt)
  pcap="$WORK/captures/$name.pcap"
  [[ -f "$pcap" ]] || fail "case $name: no capture (make_captures.py has no function $name)"
  cw_collector_config "$WORK/$name.yaml" "$WORK/pki" "$WORK/state-$name" "rules:
  files: [$SRC_DIR/rules]
alerts:
  jsonl: $WORK/$name.jsonl"
  cw_start_collector "collector-$name" "$WORK/$name.yaml"
  cw_replay corpus-agent "$pcap"
  log="$WORK/$name.jsonl"
  consumed() { [[ -f "$log" ]] && grep -q '"rule":"agent_disconnected"' "$log"; }
  cw_wait_until 300 "case $name: agent_disconnected in the alert log" consumed
  cw_stop "$COL_PID"
  rm -rf "$WORK/corpus-agent-spool"  # the next case is another capture, not a resend

  firing=$(jq -c 'select(.state == "firing" and .rule != "agent_disconnected")' "$log")
  n_expected=0
  while read -r rule labels count; do
    [[ -z "$rule" || "$rule" == \#* ]] && continue
    filter=".rule == \"$rule\""
    IFS=, read -ra pairs <<<"$labels"
    for kv in "${pairs[@]}"; do filter+=" and .labels[\"${kv%%=*}\"] == \"${kv#*=}\""; done
    got=$(jq -c "select($filter)" <<<"$firing" | grep -c . || true)
    [[ "$got" == "$count" ]] ||
      fail "case $name: $rule {$labels}: expected $count firing alert(s), got $got; alerts: $(jq -c '{rule, labels, value}' <<<"$firing")"
    n_expected=$((n_expected + 1))
  done <"$exp"
  # Nothing else fires: every firing line matches some expected rule of the case.
  rules_expected=$(grep -v '^#' "$exp" | awk 'NF {print $1}' | sort -u | paste -sd'|' -)
  others=$(jq -r '.rule' <<<"$firing" | grep -vxE "${rules_expected:-^$}" | sort -u | paste -sd' ' - || true)
  [[ -z "$others" ]] || fail "case $name: unexpected alerts: $others: $(jq -c '{rule, labels, value, summary}' <<<"$firing")"
  total=$(grep -c . <<<"$firing" || true)
  expected_sum=$(grep -v '^#' "$exp" | awk 'NF {s += $3} END {print s + 0}')
  [[ "$total" == "$expected_sum" ]] ||
    fail "case $name: $total firing alerts, expected $expected_sum: $(jq -c '{rule, labels, value}' <<<"$firing")"
  f=$(awk -v n="$name" '$1 == n {print $2}' "$WORK/captures.log")
  frames=$((frames + f))
  cases=$((cases + 1))
  expected_total=$((expected_total + expected_sum))
  ((n_expected == 0)) && silent=$((silent + 1))
  summaries=$(jq -r '.summary' <<<"$firing" | paste -sd';' -)
  echo "PASS: corpus/$name: $expected_sum alert(s) as expected${summaries:+: $summaries}"
done
((cases > 0)) || fail "no cases in $CORPUS/expected"
echo "PASS: corpus: $cases cases, $cases captures ($frames frames), $expected_total expected alerts, $silent silent cases, nothing else fired"
