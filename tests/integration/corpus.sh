#!/usr/bin/env bash
# The detection conformance corpus, in the suricata-verify style (issue 13, acceptance 1).
#
# A case is a directory tests/corpus/cases/CASE/ with
#   case.yaml     description, the capture it replays (made by tests/corpus/make_captures.py
#                 with scapy) and optionally `lists:`, list files of the pack replaced for
#                 this case (e.g. {blocklist.txt: [203.0.113.200/29]}) in a copy of rules/;
#   expected.txt  one line per expected alert, `RULE LABEL=VALUE,... COUNT [value=N|value>=N]`:
#                 COUNT firing lines with those labels (`details.NAME=VALUE` matches a list
#                 alert's details), and optionally the alert's final evidence (the value of
#                 its resolved line). No lines (comments only): the case must stay silent.
# Each case gets a fresh collector with the pack (rules/) and a JSON lines alert log, and a
# real agent replays its capture (-r). agent_disconnected, raised when the replay's session
# ends, proves every record was consumed and is not compared. Every capture ends with a
# packet 40 minutes on, past every hold-down, so each alert resolves and its resolved line
# carries the final evidence. A case passes when every expected line matches exactly COUNT
# firing lines, every firing line matches an expected line, and every alert resolved.
#
# Every case runs, and the test fails at the end if any failed, each failure shown with the
# case's expected lines and alert log. Cases in tests/corpus/known-bugs/ reproduce detection
# bugs (their case.yaml says which): they fail until the bug is fixed, and run only with
# CW_CORPUS_KNOWN_BUGS=1 (once fixed, a case moves to cases/). CW_CORPUS_CASES=REGEX runs
# only the cases whose names match.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v jq >/dev/null || fail "jq not found (apt-get install jq): the corpus cannot be checked"
/usr/bin/python3 -c 'import scapy.all, yaml' 2>"$WORK/python.err" ||
  fail "/usr/bin/python3 lacks scapy or yaml (apt-get install python3-scapy python3-yaml): $(tail -1 "$WORK/python.err")"
CORPUS="$SRC_DIR/tests/corpus"
started=$(date +%s.%N)

/usr/bin/python3 "$CORPUS/make_captures.py" "$WORK/captures" >"$WORK/captures.log" 2>&1 ||
  fail "make_captures.py failed: $(tail -5 "$WORK/captures.log")"

case_dirs=("$CORPUS"/cases/*/)
if [[ "${CW_CORPUS_KNOWN_BUGS:-0}" == 1 ]]; then  # none may be open: then there is nothing to add
  for d in "$CORPUS"/known-bugs/*/; do [[ -d "$d" ]] && case_dirs+=("$d"); done
fi
if [[ -n "${CW_CORPUS_CASES:-}" ]]; then  # a developer's shortcut: only these cases (a regex)
  only=()
  for d in "${case_dirs[@]}"; do [[ "$(basename "$d")" =~ ^($CW_CORPUS_CASES)$ ]] && only+=("$d"); done
  ((${#only[@]} > 0)) || fail "CW_CORPUS_CASES='$CW_CORPUS_CASES' matches no case"
  case_dirs=("${only[@]}")
fi

# case.yaml -> one line per case: NAME CAPTURE RULES_DIR; a case with lists gets its copy of
# rules/ with those list files replaced.
/usr/bin/python3 - "$SRC_DIR/rules" "$WORK" "${case_dirs[@]}" >"$WORK/manifest" 2>"$WORK/manifest.err" <<'PY' ||
import os, shutil, sys, yaml
rules, work, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
made = {l.split()[0] for l in open(os.path.join(work, "captures.log")) if l.strip()}
for d in dirs:
    name = os.path.basename(os.path.normpath(d))
    where = os.path.join(d, "case.yaml")
    with open(where) as f:
        case = yaml.safe_load(f)
    unknown = set(case) - {"description", "capture", "lists", "known_bug"}
    if unknown or not case.get("description") or not case.get("capture"):
        sys.exit(f"{where}: needs description and capture; unknown keys: {sorted(unknown)}")
    if not os.path.isfile(os.path.join(d, "expected.txt")):
        sys.exit(f"{d}: no expected.txt")
    capture = case["capture"].removesuffix(".pcap")
    if capture not in made:
        sys.exit(f"{where}: make_captures.py makes no capture {case['capture']}")
    case_rules = rules
    if case.get("lists"):
        case_rules = os.path.join(work, "rules-" + name)
        shutil.copytree(rules, case_rules)
        for file, entries in case["lists"].items():
            path = os.path.join(case_rules, "lists", file)
            if os.path.sep in file or not os.path.isfile(path):
                sys.exit(f"{where}: lists: the pack has no list file lists/{file}")
            with open(path, "w") as out:
                out.write(f"# replaced for the corpus case {name}\n")
                out.writelines(f"{e}\n" for e in entries or [])
    print(name, capture, case_rules)
PY
  fail "bad case: $(cat "$WORK/manifest.err")"
[[ -s "$WORK/manifest" ]] || fail "no cases in $CORPUS/cases"

# expected.txt -> OUT, a JSON array of {line, rule, labels, count, op, value}.
expected_json() {
  local file=$1 json=$2 n=0 rule labels count evidence extra
  local out="[]"
  while read -r rule labels count evidence extra; do
    n=$((n + 1))
    [[ -z "$rule" || "$rule" == \#* ]] && continue
    [[ -z "$extra" && "$count" =~ ^[0-9]+$ && "$labels" == *=* ]] ||
      fail "$file:$n: expected 'RULE LABEL=VALUE,... COUNT [value=N|value>=N]', got: $rule $labels $count $evidence $extra"
    [[ -z "$evidence" || "$evidence" =~ ^value(=|>=)[0-9.]+$ ]] ||
      fail "$file:$n: evidence must be value=N or value>=N, got: $evidence"
    out=$(jq -c --arg line "$file:$n" --arg rule "$rule" --arg labels "$labels" --argjson count "$count" \
      --arg ev "$evidence" '. + [{line: $line, rule: $rule, count: $count,
        labels: ($labels | split(",") | map(split("=") | {(.[0]): (.[1:] | join("="))}) | add),
        op: (if $ev == "" then null else ($ev | capture("^value(?<op>>?=)(?<v>.*)$") | .op) end),
        value: (if $ev == "" then null else ($ev | capture("^value>?=(?<v>.*)$") | .v | tonumber) end)}]' <<<"$out")
  done <"$file"
  echo "$out" >"$json"
}
# Every case's expected.txt is checked before any case runs.
while read -r name capture rules_dir; do
  dir=$CORPUS/cases/$name
  [[ -d "$dir" ]] || dir=$CORPUS/known-bugs/$name
  expected_json "$dir/expected.txt" "$WORK/$name.expected.json"
done <"$WORK/manifest"

# The comparison, over the case's whole alert log: a list of errors, empty when it passes.
COMPARE='
def field($a; $k): if ($k | startswith("details.")) then ($a.details // {})[$k[8:]] else $a.labels[$k] end;
def matches($e): . as $a | $a.rule == $e.rule and all($e.labels | to_entries[]; field($a; .key) == .value);
def show: "\(.rule) {\(.key)}";
[.[] | select(.rule != "agent_disconnected")] as $log
| [$log[] | select(.state == "firing")] as $firing
| [$log[] | select(.state == "resolved")] as $resolved
| def final($a): [$resolved[] | select(.rule == $a.rule and .key == $a.key)] | last | .value;
  [ ($exp[] as $e | [$firing[] | select(matches($e))] as $got
      | (if ($got | length) != $e.count
         then "\($e.line): \($e.rule) {\($e.labels | to_entries | map("\(.key)=\(.value)") | join(","))}: expected \($e.count) firing alert(s), got \($got | length)"
         else empty end),
        (if $e.op == null then empty else
           $got[] | final(.) as $v
           | select($v != null and (if $e.op == "=" then $v != $e.value else $v < $e.value end))
           | "\($e.line): \(show): final value \($v), expected value\($e.op)\($e.value)" end)),
    ($firing[] | . as $a | [$exp[] | select(. as $e | $a | matches($e))] as $m
      | if ($m | length) == 0 then "unexpected alert: \(show): \(.summary)"
        elif ($m | length) > 1 then "\(show) matches several expected lines: \([$m[].line] | join(", "))"
        else empty end),
    ($firing[] | select(final(.) == null) | "\(show) fired but did not resolve")
  ]'

cw_certs "$WORK/pki" corpus-agent
cases=0 silent=0 expected_total=0 frames=0 failed=()
declare -A captures_used=()
while read -r -u 3 name capture rules_dir; do
  dir=$CORPUS/cases/$name
  [[ -d "$dir" ]] || dir=$CORPUS/known-bugs/$name
  exp=$(cat "$WORK/$name.expected.json")
  log=$WORK/$name.jsonl
  CW_LOGS=()  # a failure shows this case's daemon logs only
  cw_collector_config "$WORK/$name.yaml" "$WORK/pki" "$WORK/state-$name" "rules:
  files: [$rules_dir]
alerts:
  jsonl: $log"
  cw_start_collector "collector-$name" "$WORK/$name.yaml"
  rm -rf "$WORK/corpus-agent-spool"  # a fresh agent: nothing left from the previous case
  cw_replay corpus-agent "$WORK/captures/$capture.pcap"
  consumed() { [[ -f "$log" ]] && grep -q '"rule":"agent_disconnected"' "$log"; }
  cw_wait_until 300 "case $name: agent_disconnected in the alert log" consumed
  # The capture's last packet is 40 minutes on: every alert resolves at the next tick (1 s).
  resolved() {
    jq -s -e '[.[] | select(.rule != "agent_disconnected")] | ([.[] | select(.state == "firing") | [.rule, .key]] | unique) -
      ([.[] | select(.state == "resolved") | [.rule, .key]] | unique) | length == 0' "$log" >/dev/null
  }
  for ((i = 0; i < 50; i++)); do resolved && break; sleep "$CW_POLL"; done
  cw_stop "$COL_PID"

  errors=$(jq -s -r --argjson exp "$exp" "$COMPARE | .[]" "$log") || fail "case $name: jq failed on $log"
  if [[ -n "$errors" ]]; then
    bug=$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get("known_bug") or "")' "$dir/case.yaml")
    echo "FAIL: corpus/$name (capture $capture.pcap${bug:+; known bug: $bug}):" >&2
    sed 's/^/  /' <<<"$errors" >&2
    echo "  expected ($dir/expected.txt):" >&2
    grep -v '^#' "$dir/expected.txt" | grep . | sed 's/^/    /' >&2 || echo "    (nothing: a silent case)" >&2
    echo "  the alert log ($name.jsonl, agent_disconnected left out):" >&2
    jq -c 'select(.rule != "agent_disconnected") | {state, rule, key, value, summary}' "$log" | sed 's/^/    /' >&2
    failed+=("$name")
    continue
  fi

  n_exp=$(jq 'length' <<<"$exp")
  n_alerts=$(jq '[.[].count] | add // 0' <<<"$exp")
  cases=$((cases + 1))
  expected_total=$((expected_total + n_alerts))
  ((n_exp == 0)) && silent=$((silent + 1))
  captures_used[$capture]=1
  frames=$((frames + $(awk -v c="$capture" '$1 == c {print $2}' "$WORK/captures.log")))
  if ((n_exp == 0)); then
    echo "PASS: corpus/$name: silent, as expected ($capture.pcap)"
  else
    fired=$(jq -s -r '[.[] | select(.state == "resolved" and .rule != "agent_disconnected") | "\(.rule) {\(.key)} = \(.value)"] | join("; ")' "$log")
    echo "PASS: corpus/$name: $n_alerts alert(s) as expected ($capture.pcap): $fired"
  fi
done 3<"$WORK/manifest"

((${#failed[@]} == 0)) || { CW_LOGS=(); fail "corpus: ${#failed[@]} case(s) failed: ${failed[*]} (details above)"; }
elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
cw_log "$frames frames replayed in ${elapsed} s"
echo "PASS: corpus: $cases cases, ${#captures_used[@]} captures, $expected_total expected alerts, $silent silent cases"
