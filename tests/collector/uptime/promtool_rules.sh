#!/usr/bin/env bash
# `promtool check rules` on every rule file in rules/prometheus/ and `promtool test rules` on
# every test file in rules/prometheus/tests/. Both must pass with no failure.
#   promtool_rules.sh SOURCE_DIR
set -uo pipefail
SRC=$(readlink -f "$1")
command -v promtool >/dev/null || { echo "SKIP: promtool not found" >&2; exit 77; }
cd "$SRC/rules/prometheus" || exit 1
shopt -s nullglob
rules=(*.yml *.yaml)
tests=(tests/*.yml tests/*.yaml)
((${#rules[@]} > 0)) || { echo "FAIL: no rule files in rules/prometheus" >&2; exit 1; }
((${#tests[@]} > 0)) || { echo "FAIL: no promtool tests in rules/prometheus/tests" >&2; exit 1; }
promtool check rules "${rules[@]}" || { echo "FAIL: promtool check rules" >&2; exit 1; }
# Every rule file should be exercised by some test file; one without is named.
for r in "${rules[@]}"; do
  grep -qs -- "$r" "${tests[@]}" || echo "WARNING: $r has no promtool test in tests/" >&2
done
(cd tests && promtool test rules "${tests[@]#tests/}") || { echo "FAIL: promtool test rules" >&2; exit 1; }
echo "PASS: promtool check rules (${rules[*]}) and test rules (${tests[*]})"
