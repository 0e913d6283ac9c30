#!/usr/bin/env bash
# Acceptance: a broken rule file on SIGHUP is rejected with FILE:LINE, the running rules keep
# working, and a good file is then taken (version and load time exported). Also
# `citywatch-collector check-rules` on good and broken files.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v jq >/dev/null || { echo "SKIP: jq not found" >&2; exit 77; }

# The shipped pack validates.
out=$("$COLLECTOR_BIN" check-rules "$SRC_DIR/rules") || fail "check-rules rules/ failed: $out"
[[ "$out" == *"rules,"*"OK"* ]] || fail "check-rules said: $out"

mkdir -p "$WORK/rules"
cat >"$WORK/rules/web.yaml" <<'YAML'
rules:
  - name: https_seen
    kind: match
    description: any HTTPS flow (test rule)
    runbook: none
    where: protocol == tcp and dst_port == 443
    group_by: [src, dst]
YAML
cw_certs "$WORK/pki" reload-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$WORK/rules]
alerts:
  jsonl: $WORK/alerts.jsonl"
cw_start_collector collector "$WORK/collector.yaml"
version() { cw_scrape "$METRICS_PORT" | sed -n 's/^citywatch_rules_info{version="\([0-9a-f]*\)"} 1$/\1/p'; }
v1=$(version)
[[ -n "$v1" ]] || fail "no citywatch_rules_info with value 1"

# Break the file: a typo'd key on line 8 and an unknown field on line 6.
cat >"$WORK/rules/web.yaml" <<'YAML'
rules:
  - name: https_seen
    kind: match
    description: any HTTPS flow (test rule)
    runbook: none
    where: protocol == tcp and dst_prt == 443
    group_by: [src, dst]
    severty: critical
YAML
if "$COLLECTOR_BIN" check-rules "$WORK/rules/web.yaml" >"$WORK/check.out" 2>&1; then fail "check-rules accepted a broken file"; fi
grep -q "$WORK/rules/web.yaml:6:.*unknown field 'dst_prt'" "$WORK/check.out" || fail "check-rules: $(cat "$WORK/check.out")"
grep -q "$WORK/rules/web.yaml:8:.*severty: unknown key" "$WORK/check.out" || fail "check-rules: $(cat "$WORK/check.out")"

kill -HUP "$COL_PID"
# (The collector may also have seen the change by itself: it looks at its files every 5 s.)
rejected() { (( $(cw_metric "$METRICS_PORT" citywatch_rules_reloads_total 'result="rejected"') >= 1 )); }
cw_wait_until 100 "reloads_total{result=rejected} >= 1" rejected
grep -q "reload rejected" "$WORK/collector.log" || fail "no 'reload rejected' in the log"
grep -q "$WORK/rules/web.yaml:6:" "$WORK/collector.log" || fail "the log does not name web.yaml:6"
cw_expect "rules version after a rejected reload" "$(version)" "$v1"

# The old rules still work: HTTPS traffic through an agent raises https_seen.
cw_make_small_pcap "$WORK/small.pcap"
cw_replay reload-agent "$WORK/small.pcap"
fired() { [[ -f "$WORK/alerts.jsonl" ]] && jq -s -e 'any(.[]; .rule=="https_seen" and .state=="firing" and .labels.dst=="10.0.0.2")' "$WORK/alerts.jsonl" >/dev/null; }
cw_wait_until 100 "https_seen firing from the old rules" fired

# A good file is taken: new version, reloads_total{result=ok} at least 2 (start + reload).
sed -i 's/dst_prt/dst_port/; s/severty/severity/' "$WORK/rules/web.yaml"
kill -HUP "$COL_PID"
reloaded() { (( $(cw_metric "$METRICS_PORT" citywatch_rules_reloads_total 'result="ok"') >= 2 )); }
cw_wait_until 100 "reloads_total{result=ok} >= 2" reloaded
v2=$(version)
[[ -n "$v2" && "$v2" != "$v1" ]] || fail "version did not change on a good reload ($v1 -> $v2)"
load_ts=$(cw_metric "$METRICS_PORT" citywatch_rules_load_timestamp_seconds)
awk -v t="$load_ts" 'BEGIN { exit !(t > 1600000000) }' || fail "citywatch_rules_load_timestamp_seconds is $load_ts"

echo "PASS: broken reload rejected with web.yaml:6 and :8 (check-rules too), version $v1 kept and its rule still fired; good reload took version $v2"
