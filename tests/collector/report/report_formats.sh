#!/usr/bin/env bash
# Acceptance 4: `citywatch report` on a generated, deterministic history (gen_history.py)
# gives HTML, CSV and Markdown whose figures agree with each other and with SQL on the store;
# with MODE=render the HTML is also rendered in headless Chromium (no console errors) and a
# screenshot is taken (kept when CITYWATCH_SCREENSHOT_DIR is set).
#   report_formats.sh CITYWATCH_BIN SOURCE_DIR [formats|render]
set -uo pipefail
CW=$(readlink -f "$1")
SRC=$(readlink -f "$2")
MODE=${3:-formats}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-report.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# to_minutes N: CSV lines whose field N is nanoseconds -> minutes with 1 decimal, rounded
# the way the report rounds (C printf on a double), not SQLite's decimal printf.
to_minutes() { awk -F, -v OFS=, -v n="$1" '{ $n = sprintf("%.1f", $n / 60e9); print }'; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not found" >&2; exit 77; }

/usr/bin/python3 "$SRC/tests/collector/report/gen_history.py" "$CW" "$WORK/uptime.sqlite" 7 \
  || fail "gen_history.py failed"
NOW=1767225600  # 2026-01-01T00:00:00Z: the open outage has run 4 days
PERIOD=2025-03
"$CW" report --db "$WORK/uptime.sqlite" --period $PERIOD --tz Europe/Berlin --target 25 \
  --slo 99.9 --format all -o "$WORK/r" --now $NOW || fail "citywatch report failed"
for f in html csv md; do [[ -s "$WORK/r.$f" ]] || fail "no $f output"; done

# Period bounds in UTC from Python's own tz database reader, independent of ours.
read -r P0 P1 < <(/usr/bin/python3 -c '
from datetime import datetime; from zoneinfo import ZoneInfo
z = ZoneInfo("Europe/Berlin")
print(int(datetime(2025,3,1,tzinfo=z).timestamp())*10**9, int(datetime(2025,4,1,tzinfo=z).timestamp())*10**9)')
NOWNS=$((NOW * 1000000000))
# Per site: incidents (outages attached to another's, root_outage_id set, are not counted
# again; flaps excluded) and minutes clipped to the period, devices + segments.
sql_sites=$(sqlite3 -csv "$WORK/uptime.sqlite" "
  SELECT e.site, COUNT(*), SUM(MIN(COALESCE(o.end_ns, $NOWNS), $P1) - MAX(o.start_ns, $P0))
  FROM outages o JOIN entities e ON e.id = o.entity_id
  WHERE o.flap = 0 AND e.kind != 'interface' AND o.root_outage_id IS NULL AND o.start_ns < $P1
    AND COALESCE(o.end_ns, $NOWNS) > $P0
  GROUP BY e.site ORDER BY e.site" | to_minutes 3)
csv_sites=$(awk -F, '$1 == "site" { print $2 "," $6 "," $7 }' "$WORK/r.csv")
[[ -n "$sql_sites" ]] || fail "the SQL query found no outages in $PERIOD"
[[ "$sql_sites" == "$csv_sites" ]] || fail "CSV sites differ from SQL:
SQL:
$sql_sites
CSV:
$csv_sites"

# Markdown's site table, same columns.
md_sites=$(awk '/^## Sites/ {on=1; next} /^## / {on=0} on && /^\| [a-z]/ {
  n = split($0, c, "|"); gsub(/ /, "", c[2]); gsub(/ /, "", c[4]); gsub(/ /, "", c[5]);
  print c[2] "," c[4] "," c[5] }' "$WORK/r.md")
[[ "$md_sites" == "$csv_sites" ]] || fail "Markdown sites differ from CSV:
$md_sites
---
$csv_sites"

# HTML's site table (the one after <h2>Sites</h2>), same columns.
html_sites=$(tr -d '\n' <"$WORK/r.html" | sed 's#<h2>Sites</h2>#\n#; s#<h2>Segments</h2>#\n#' |
  sed -n 2p | sed 's#<tr><td>#\n#g' | sed -n '2,$p' |
  awk -F'</td><td>' '{ print $1 "," $3 "," $4 }')
[[ "$html_sites" == "$csv_sites" ]] || fail "HTML sites differ from CSV:
$html_sites
---
$csv_sites"

# City line: availability and minutes identical in all three; minutes match SQL's total.
csv_city=$(awk -F, '$1 == "city" { print $5 "," $6 "," $7 "," $13 "," $14 }' "$WORK/r.csv")
sql_total=$(sqlite3 "$WORK/uptime.sqlite" "
  SELECT COUNT(*), SUM(MIN(COALESCE(o.end_ns, $NOWNS), $P1) - MAX(o.start_ns, $P0))
  FROM outages o JOIN entities e ON e.id = o.entity_id
  WHERE o.flap = 0 AND e.kind != 'interface' AND o.root_outage_id IS NULL AND o.start_ns < $P1
    AND COALESCE(o.end_ns, $NOWNS) > $P0" | sed 's/|/,/' | to_minutes 2)
[[ "$(cut -d, -f2,3 <<<"$csv_city")" == "$sql_total" ]] ||
  fail "city outages,minutes: CSV $csv_city, SQL $sql_total"

# Dependencies (issue 17): the per-device line counts every outage; it differs from the
# headline by exactly the dependents (count and minutes), in CSV, Markdown, HTML and SQL.
#   check_dependencies REPORT_BASENAME FROM_NS TO_NS: prints "per device X = incidents Y +
#   dependents Z; incidents,dependents N,M" for the PASS line.
check_dependencies() {
  local r="$WORK/$1" p0=$2 p1=$3
  sql_q() {  # sql_q CONDITION: outages,minutes of devices + segments in the period
    sqlite3 "$WORK/uptime.sqlite" "
    SELECT COUNT(*), SUM(MIN(COALESCE(o.end_ns, $NOWNS), $p1) - MAX(o.start_ns, $p0))
    FROM outages o JOIN entities e ON e.id = o.entity_id
    WHERE o.flap = 0 AND e.kind != 'interface' AND $1 AND o.start_ns < $p1
      AND COALESCE(o.end_ns, $NOWNS) > $p0" | sed 's/|/,/' | to_minutes 2
  }
  local sql_all sql_dep sql_root csv_pd csv_dep csv_root sql_inc csv_inc md_inc html_inc pd_md pd_html
  sql_all=$(sql_q 1)
  sql_dep=$(sql_q "o.root_outage_id IS NOT NULL")
  sql_root=$(sql_q "o.root_outage_id IS NULL")
  csv_root=$(awk -F, '$1 == "city" { print $6 "," $7 }' "$r.csv")
  csv_pd=$(awk -F, '$1 == "city_per_device" { print $6 "," $7 }' "$r.csv")
  csv_dep=$(awk -F, '$1 == "city" { print $15 "," $16 }' "$r.csv")
  [[ "${sql_dep%%,*}" -gt 0 ]] || fail "$1: the history has no dependent outages"
  [[ "$csv_root" == "$sql_root" ]] || fail "$1: incidents,minutes: CSV $csv_root, SQL $sql_root"
  [[ "$csv_pd" == "$sql_all" ]] || fail "$1: per-device outages,minutes: CSV $csv_pd, SQL $sql_all"
  [[ "$csv_dep" == "$sql_dep" ]] || fail "$1: dependent outages,minutes: CSV $csv_dep, SQL $sql_dep"
  (( ${csv_pd%%,*} == ${csv_root%%,*} + ${csv_dep%%,*} )) ||
    fail "$1: per-device outages ${csv_pd%%,*} != incidents ${csv_root%%,*} + dependents ${csv_dep%%,*}"
  awk -v a="${csv_pd#*,}" -v b="${csv_root#*,}" -v c="${csv_dep#*,}" \
    'BEGIN { d = a - b - c; exit !(d < 0.11 && d > -0.11) }' ||
    fail "$1: per-device minutes ${csv_pd#*,} != incident minutes ${csv_root#*,} + dependent minutes ${csv_dep#*,}"
  pd_md="| all sites (per device) | $(awk -F, '$1 == "city_per_device" { print $5 " | " $6 " | " $7 }' "$r.csv") |"
  grep -qF "$pd_md" "$r.md" || fail "$1: Markdown per-device line differs from CSV ($pd_md)"
  pd_html="<tr><td>all sites (per device)</td><td>$(awk -F, '$1 == "city_per_device" { print $5 "</td><td>" $6 "</td><td>" $7 }' "$r.csv")</td>"
  grep -qF "$pd_html" "$r.html" || fail "$1: HTML per-device line differs from CSV"
  # Incidents with dependents: one per root outage; their dependents those SQL attaches.
  sql_inc=$(sqlite3 "$WORK/uptime.sqlite" "
    SELECT COUNT(DISTINCT o.root_outage_id), COUNT(*) FROM outages o
    JOIN entities e ON e.id = o.entity_id JOIN outages r ON r.id = o.root_outage_id
    WHERE o.flap = 0 AND e.kind != 'interface' AND o.start_ns < $p1
      AND COALESCE(o.end_ns, $NOWNS) > $p0 AND r.start_ns < $p1
      AND COALESCE(r.end_ns, $NOWNS) > $p0" | sed 's/|/,/')
  csv_inc=$(awk -F, '$1 == "incident" { n++; d += $15 } END { print n "," d }' "$r.csv")
  [[ "$csv_inc" == "$sql_inc" ]] || fail "$1: incidents,dependents: CSV $csv_inc, SQL $sql_inc"
  md_inc=$(awk '/^## Incidents with dependents/ {on=1; next} /^## / {on=0} on && /^\| [a-z]/ {n++} END {print n+0}' "$r.md")
  html_inc=$(tr -d '\n' <"$r.html" | sed 's#<h2>Incidents with dependents#\n#; s#<h2>Availability per site#\n#' |
    sed -n 2p | grep -o '<tr><td>' | wc -l)
  [[ "$md_inc" == "${csv_inc%%,*}" && "$html_inc" == "${csv_inc%%,*}" ]] ||
    fail "$1: incident rows: CSV ${csv_inc%%,*}, Markdown $md_inc, HTML $html_inc"
  echo "per device $csv_pd = incidents $csv_root + dependents $csv_dep (SQL $sql_all = $sql_root + $sql_dep); incidents with dependents,dependents $csv_inc (SQL $sql_inc)"
}
deps_month=$(check_dependencies r "$P0" "$P1") || exit 1
# A whole generated year, in UTC.
"$CW" report --db "$WORK/uptime.sqlite" --period 2025 --tz UTC --format all -o "$WORK/y" \
  --now $NOW || fail "citywatch report --period 2025 failed"
deps_year=$(check_dependencies y 1735689600000000000 1767225600000000000) || exit 1
grep -q "| all sites | $(cut -d, -f1 <<<"$csv_city") | $(cut -d, -f2 <<<"$csv_city") | $(cut -d, -f3 <<<"$csv_city") |" "$WORK/r.md" ||
  fail "Markdown city line differs from CSV ($csv_city)"
grep -q "<tr><td>all sites</td><td>$(cut -d, -f1 <<<"$csv_city")</td><td>$(cut -d, -f2 <<<"$csv_city")</td><td>$(cut -d, -f3 <<<"$csv_city")</td>" "$WORK/r.html" ||
  fail "HTML city line differs from CSV ($csv_city)"
target=$(cut -d, -f4 <<<"$csv_city")
grep -q "at most $target min" "$WORK/r.md" || fail "Markdown target differs from CSV ($target)"
grep -q "at most $target min" "$WORK/r.html" || fail "HTML target differs from CSV ($target)"
# Weekly minutes add up to the city's minutes (within rounding of each week).
weeks_sum=$(awk -F, '$1 == "week" { s += $7 } END { printf "%.1f", s }' "$WORK/r.csv")
awk -v a="$weeks_sum" -v b="$(cut -d, -f3 <<<"$csv_city")" 'BEGIN { d = a - b; exit !(d < 0.5 && d > -0.5) }' ||
  fail "weekly minutes sum $weeks_sum differs from the period's $(cut -d, -f3 <<<"$csv_city")"

# The open outage (started 2025-12-28) counts in December, clipped at the period's end.
"$CW" report --db "$WORK/uptime.sqlite" --period 2025-12 --tz UTC --format csv --now $NOW -o "$WORK/dec.csv" ||
  fail "December report failed"
open_min=$(awk -F, '$1 == "device" && $2 == "water-plant-sw21" { print $7 }' "$WORK/dec.csv")
[[ "$open_min" == 5760.0 ]] || fail "the outage open since 2025-12-28 00:00Z: $open_min min in December, expected 4 days = 5760.0"
sql_open=$(sqlite3 "$WORK/uptime.sqlite" "SELECT SUM(MIN(COALESCE(end_ns, $NOWNS), 1767225600000000000) - MAX(start_ns, 1764547200000000000)) FROM outage_view WHERE kind = 'device' AND device_name = 'water-plant-sw21' AND flap = 0 AND start_ns < 1767225600000000000 AND COALESCE(end_ns, $NOWNS) > 1764547200000000000" | to_minutes 1)
[[ -n "$open_min" && "$open_min" == "$sql_open" ]] || fail "open outage device: CSV '$open_min', SQL '$sql_open'"

if [[ "$MODE" == render ]]; then
  CHROMIUM=$(command -v chromium || command -v chromium-browser) ||
    { echo "SKIP: chromium not found (scripts/install-deps.sh installs it)" >&2; exit 77; }
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$WORK/chromium" \
    --enable-logging=stderr --v=0 --hide-scrollbars --window-size=1200,2200 \
    --screenshot="$WORK/report.png" "file://$WORK/r.html" >"$WORK/chromium.log" 2>&1 ||
    { cat "$WORK/chromium.log" >&2; fail "chromium exited with an error"; }
  [[ -s "$WORK/report.png" ]] || { cat "$WORK/chromium.log" >&2; fail "no screenshot"; }
  if grep -E 'CONSOLE|Uncaught|Failed to load|ERR_FILE_NOT_FOUND' "$WORK/chromium.log" >&2; then
    fail "the page logged errors in Chromium"
  fi
  size=$(stat -c %s "$WORK/report.png")
  ((size > 20000)) || fail "screenshot only $size bytes: blank page?"
  if [[ -n "${CITYWATCH_SCREENSHOT_DIR:-}" ]]; then
    mkdir -p "$CITYWATCH_SCREENSHOT_DIR" && cp "$WORK/report.png" "$WORK/r.html" "$WORK/r.md" "$WORK/r.csv" "$CITYWATCH_SCREENSHOT_DIR/"
  fi
  echo "PASS: HTML rendered by $("$CHROMIUM" --version 2>/dev/null | head -n1) without console errors, screenshot $size bytes"
fi
echo "PASS: $PERIOD report: sites (outages,minutes) CSV = Markdown = HTML = SQL: $(tr '\n' ' ' <<<"$csv_sites"); city $csv_city (SQL $sql_total); $PERIOD: $deps_month; 2025: $deps_year (CSV = Markdown = HTML = SQL); weekly sum $weeks_sum; open outage clipped in 2025-12: $open_min min = SQL"
