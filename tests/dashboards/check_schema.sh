#!/usr/bin/env bash
# Type-checks every Grafana dashboard JSON in DASHBOARD_DIR against Grafana's own published
# schema, the npm package @grafana/schema (exact version pinned in package-lock.json here).
#
#   tests/dashboards/check_schema.sh DASHBOARD_DIR
#
# Each dashboard becomes `export const dashboard: Dashboard = <the JSON literal>;` (plus one
# const per panel typed Panel/RowPanel and one per query typed DataQuery, see generate.mjs) and
# `tsc --noEmit --strict` checks them. Any type error fails (exit 1) naming the dashboard.
# Deliberately broken copies of one dashboard are checked in the same tsc run and MUST be
# rejected, otherwise the check is toothless and fails too.
#
# Needs node and npm. npm's download cache lives in ${XDG_CACHE_HOME:-$HOME/.cache}/citywatch-npm;
# node_modules and the generated files live in a temp dir removed at exit, never in the tree.
# CW_KEEP=1 keeps that temp dir (generated .ts, tsconfig.json, tsc.log) for debugging.
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 DASHBOARD_DIR" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
DASH_DIR=$1
for tool in node npm; do
  command -v "$tool" >/dev/null ||
    { echo "FAIL: $tool not found (install Debian's npm package: scripts/install-deps.sh)" >&2; exit 1; }
done
shopt -s nullglob
dashboards=("$DASH_DIR"/*.json)
shopt -u nullglob
((${#dashboards[@]} > 0)) || { echo "FAIL: no dashboards (*.json) in $DASH_DIR" >&2; exit 1; }

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/citywatch-npm
mkdir -p "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-schema.XXXXXX")
trap '[[ -n ${CW_KEEP:-} ]] || rm -rf "$WORK"' EXIT

# Install the pinned typescript and @grafana/schema; tsc resolves '@grafana/schema' from
# $WORK/node_modules, so the generated .ts files live under $WORK as well.
cp "$HERE/package.json" "$HERE/package-lock.json" "$WORK/"
if ! (cd "$WORK" && npm ci --cache "$CACHE" --prefer-offline --ignore-scripts --no-audit \
  --no-fund --loglevel=error >"$WORK/npm.log" 2>&1); then
  cat "$WORK/npm.log" >&2
  echo "FAIL: npm ci of the pinned @grafana/schema/typescript failed (npm registry reachable?)" >&2
  exit 1
fi
schema_version=$(node -p 'require(process.argv[1]).version' \
  "$WORK/node_modules/@grafana/schema/package.json")
tsc_version=$(node -p 'require(process.argv[1]).version' "$WORK/node_modules/typescript/package.json")

mkdir "$WORK/gen"
# The manifest names generated files relative to $WORK, as tsc (run in $WORK) prints them.
manifest=$(node "$HERE/generate.mjs" "$WORK/gen" "${dashboards[@]}" | sed "s|$WORK/||g")

# One program with every generated file. skipLibCheck only skips checking the package's own
# .d.ts internals; our files are still checked against its types. "types": [] keeps stray
# @types packages out.
{
  printf '{\n  "compilerOptions": {\n'
  printf '    "strict": true, "noEmit": true, "skipLibCheck": true, "types": [],\n'
  printf '    "target": "ES2022", "lib": ["ES2022"], "module": "ESNext",\n'
  printf '    "moduleResolution": "Bundler", "pretty": false\n'
  printf '  },\n  "files": ['
  cut -f1 <<<"$manifest" | sed 's/.*/"&"/' | paste -sd, -
  printf ']\n}\n'
} >"$WORK/tsconfig.json"
set +e
(cd "$WORK" && node node_modules/typescript/bin/tsc -p tsconfig.json) >"$WORK/tsc.log" 2>&1
tsc_rc=$?
set -e

# tsc prints "FILE(LINE,COL): error TSxxxx: message" with continuation lines indented; group
# them per generated file.
errors_for() { # GENERATED_TS: prints that file's errors, each with the offending source line
  awk -v f="$1" '
    index($0, f "(") == 1 { on = 1; print; next }
    /^[^ ]/ { on = 0 }
    on { print }' "$WORK/tsc.log" |
    while IFS= read -r line; do
      echo "    $line"
      if [[ $line =~ \(([0-9]+),[0-9]+\):\ error ]]; then
        echo "      > $(sed -n "${BASH_REMATCH[1]}p" "$WORK/$1" | sed 's/^ *//')"
      fi
    done
}

failed=0 n_dash=0 n_panels=0 n_mutants=0
# error_messages GENERATED_TS: the distinct "error TSnnnn: message" texts, without positions.
error_messages() { errors_for "$1" | grep -o 'error TS.*' | sort -u; }

while IFS=$'\t' read -r gen kind label panels original; do
  errs=$(errors_for "$gen")
  if [[ $kind == dashboard ]]; then
    n_dash=$((n_dash + 1)) n_panels=$((n_panels + panels))
    if [[ -n $errs ]]; then
      echo "FAIL: $label does not match @grafana/schema $schema_version ($(grep -c ': error TS' <<<"$errs") errors; '>' lines are from the generated ${gen##*/}):" >&2
      echo "$errs" >&2
      failed=1
    fi
  else
    n_mutants=$((n_mutants + 1))
    # Only errors the unbroken original does not have count (it may fail the check itself).
    new=$(comm -23 <(error_messages "$gen") <(error_messages "$original"))
    if [[ -z $new ]]; then
      echo "FAIL: the schema check is toothless: tsc accepted the $label" >&2
      failed=1
    else
      echo "ok: tsc rejects the $label: $(head -n1 <<<"$new")"
    fi
  fi
done <<<"$manifest"

# Anything tsc reported that is not attributed to a generated file (e.g. the module could not be
# resolved, or a bad option) is a failure of the check itself.
if ((tsc_rc != 0)) && grep -qv '^gen/\|^ ' "$WORK/tsc.log"; then
  echo "FAIL: tsc $tsc_version reported errors outside the dashboards:" >&2
  grep -v '^gen/\|^ ' "$WORK/tsc.log" >&2
  failed=1
fi
if ((tsc_rc == 0 && n_mutants > 0)); then failed=1; fi # mutants must have made tsc fail
((failed == 0)) || exit 1
echo "PASS: $n_dash dashboards, $n_panels panels type-check against @grafana/schema $schema_version (tsc $tsc_version --strict); $n_mutants broken copies rejected"
