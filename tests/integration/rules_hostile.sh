#!/usr/bin/env bash
# Hostile rule expressions (issue 11, item 3): 10,000 nested parentheses, 100,000 `not`s and
# a 60,000-term `or` chain used to segfault check-rules and, dropped into the rules directory
# and followed by SIGHUP, a running collector (the `or` chain passed check-rules and crashed
# on the first record). Each must now be refused by check-rules with file:line, and by a
# running collector's reload, which keeps its old rules and stays up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"

mkdir -p "$WORK/rules" "$WORK/hostile"
cat >"$WORK/rules/web.yaml" <<'YAML'
rules:
  - name: https_seen
    kind: match
    description: any HTTPS flow (test rule)
    runbook: none
    where: protocol == tcp and dst_port == 443
    group_by: [src, dst]
YAML
/usr/bin/python3 - "$WORK/hostile" <<'PY'
import sys
d = sys.argv[1]
exprs = {
    "parens": "(" * 10000 + "dst_port == 443" + ")" * 10000,
    "nots": "not " * 100000 + "dst_port == 443",
    "orchain": " or ".join("dst_port == %d" % (i % 65535) for i in range(60000)),
    # Under the size bound, over the nesting and node bounds:
    "parens40": "(" * 40 + "dst_port == 443" + ")" * 40,
    "nots40": "not " * 40 + "dst_port == 443",
    "or900": " or ".join(["ack"] * 900),
}
for name, e in exprs.items():
    with open("%s/%s.yaml" % (d, name), "w") as f:
        f.write("rules:\n  - name: hostile_%s\n    kind: match\n    description: x\n"
                "    runbook: none\n    where: %s\n    group_by: [src]\n" % (name, e))
PY
for name in parens nots orchain parens40 nots40 or900; do
  f="$WORK/hostile/$name.yaml"
  rc=0
  "$COLLECTOR_BIN" check-rules "$f" >"$WORK/check-$name.out" 2>&1 || rc=$?
  ((rc != 0 && rc < 128)) || fail "check-rules on $name: exit $rc (a crash is >= 128): $(head -c 300 "$WORK/check-$name.out")"
  grep -q "$f:6:" "$WORK/check-$name.out" || fail "check-rules on $name names no file:line: $(head -c 300 "$WORK/check-$name.out")"
  echo "check-rules $name: exit $rc: $(head -c 160 "$WORK/check-$name.out")"
done

cw_certs "$WORK/pki" reload-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$WORK/rules]"
cw_start_collector collector "$WORK/collector.yaml"
n=0
for name in parens nots orchain parens40 nots40 or900; do
  cp "$WORK/hostile/$name.yaml" "$WORK/rules/"
  kill -HUP "$COL_PID"
  n=$((n + 1))
  WANT=$n
  rejected() { [[ "$(cw_metric "$METRICS_PORT" citywatch_rules_reloads_total 'result="rejected"')" == "$WANT" ]]; }
  cw_wait_until 100 "reload $n ($name) rejected" rejected
  kill -0 "$COL_PID" 2>/dev/null || fail "the collector died on the $name reload"
  grep -q "$WORK/rules/$name.yaml:6:" "$WORK/collector.log" || fail "the log does not name $name.yaml:6"
  rm "$WORK/rules/$name.yaml"
done
cw_expect "rules loaded (still the old one)" \
  "$(cw_metric "$METRICS_PORT" citywatch_rules_reloads_total 'result="ok"')" 1
cw_stop "$COL_PID"
cw_expect "collector exit code" "$CW_EXIT" 0
echo "PASS: rules_hostile: 6 hostile expressions refused by check-rules and by 6 SIGHUP reloads; the collector stayed up"
