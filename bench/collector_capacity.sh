#!/usr/bin/env bash
# Capacity of ONE collector with the full rule pack (rules/), its ledger and outage store on
# PostgreSQL (a private server started here with tests/integration/pg_lib.sh, fsync on), fed
# by N agents on loopback (STEPS, default 1 2 4 8). Every agent has its own id, certificate
# and segment and reads the same >= 1M-packet file offline (-r; segment-a.pcap repeated
# COPIES=35 times, built and cached under BUILD_DIR/bench-data as bench/vs_softflowd.sh does;
# about 500,000 records per read), given K times so that a step holds about RECORDS records
# in all (default 10,000,000; the spool may hold 4 GiB).
#
# So that the collector is what is measured, the agents read their files first, while the
# collector is not yet up: their spools fill (records wait there as they would behind a
# slow collector). Then the collector starts on the port they retry, they connect and drain
# their spools as fast as it acks. After WARMUP seconds (default 2) comes the busy interval:
# WINDOW seconds (default 15), cut short when an agent has sent everything. Over that interval:
#   rec/s        citywatch_collector_records_received_total, increase / seconds
#   batch/s      citywatch_collector_batches_received_total, increase / seconds
#   p50, p99     citywatch_collector_ledger_commit_seconds: the buckets' increase,
#                interpolated as histogram_quantile does
#   mean_ms      the histogram's _sum increase / _count increase
#   commit%      the histogram's _sum increase / seconds: share of the collector's event-loop
#                thread (which decodes, commits, applies rules: one thread) spent in commits
#   col%         collector CPU (utime+stime of its PID, all threads) / seconds, % of one core
#   col s/100k   collector CPU seconds per 100,000 records; rss_MB: its peak RSS (VmHWM)
#   pg%, pg s/100k   the same for the PostgreSQL server: the postmaster (its own and its
#                reaped children's time, /proc/PG_PID/stat fields 14-17) plus its live children
#   agents%      all agents' CPU / seconds (they only read their spool, TLS and wait for acks)
#   pg tx/s, pg rows/s   pg_stat_database: xact_commit and tup_inserted+tup_updated+
#                tup_deleted, increase / seconds (PostgreSQL publishes these at most once a
#                second: +-1 s at each end); wal_kB/s from pg_stat_wal (the whole server)
#   other%       every other process on the machine (/proc/stat busy time minus the above,
#                this script's own curl/psql included): the noise the figures were taken in
# Then one step again on the SQLite store (SQLITE_STEP agents, default 4), and one on
# PostgreSQL with small batches (SMALL_STEP agents, default 8, batch.max_records SMALL_BATCH,
# default 100: an agent of a quiet segment seals a batch every second, well before 1,000
# records), where the commit rate, not the record rate, is the limit.
# Each step has a fresh collector, a fresh database (or state_dir) and fresh spools. Builds
# nothing. Every process started here is stopped by PID (lib.sh's cw_spawn and cw_cleanup).
# usage: bench/collector_capacity.sh [BUILD_DIR]   (default: build)
#   env: STEPS ("1 2 4 8"), SQLITE_STEP (4), SMALL_STEP (8), SMALL_BATCH (100) (empty STEPS,
#        SQLITE_STEP or SMALL_STEP: skipped), WINDOW (15), WARMUP (2), RECORDS (10000000),
#        COPIES (35)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(realpath "${1:-build}")
STEPS=${STEPS-1 2 4 8}
SQLITE_STEP=${SQLITE_STEP-4}
SMALL_STEP=${SMALL_STEP-8}
SMALL_BATCH=${SMALL_BATCH:-100}
WINDOW=${WINDOW:-15}
WARMUP=${WARMUP:-2}
RECORDS=${RECORDS:-10000000}
PER_READ=500000       # records an agent makes of one read of the file (499,969 measured)
COPIES=${COPIES:-35}  # 35 x 29,331 frames = 1.03M

source "$root/tests/integration/lib.sh"
source "$root/tests/integration/pg_lib.sh"
cw_init "$build/agent/app/citywatch-agent" "$build/collector/app/citywatch-collector" "$root"
cw_need_segment_a
HZ=$(getconf CLK_TCK)

# The big capture, shared with bench/vs_softflowd.sh (same name, same construction).
cache="$build/bench-data"
big="$cache/segment-a-x$COPIES.pcap"
if [[ ! -f $big ]]; then
  for tool in editcap mergecap; do
    command -v $tool >/dev/null || fail "$big is not cached and $tool is not installed"
  done
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  cw_at_exit "rm -rf '$tmp'"
  parts=()
  for ((i = 0; i < COPIES; i++)); do
    # 10 s per copy: the capture lasts 8.5 s, so copies follow one another in time.
    editcap -t $((i * 10)) "$SEGMENT_A" "$tmp/part$i.pcap" || fail "editcap failed"
    parts+=("$tmp/part$i.pcap")
  done
  mergecap -a -F pcap -w "$tmp/big.pcap" "${parts[@]}" || fail "mergecap failed"
  mv "$tmp/big.pcap" "$big"
fi
if command -v capinfos >/dev/null; then
  packets=$(capinfos -c -M "$big" | awk '/Number of packets/ {print $NF}')
else
  packets="$COPIES x 29331"
fi

max_n=1
for n in $STEPS $SQLITE_STEP $SMALL_STEP; do ((n > max_n)) && max_n=$n; done
agents=()
for ((i = 1; i <= max_n; i++)); do agents+=("agent-$i"); done
cw_certs "$WORK/pki" "${agents[@]}"
pg_start
PG_VERSION=$(pg_query "$PG_DSN" 'SHOW server_version')

# --- measurements ---------------------------------------------------------------------------
ticks() {  # ticks PID: utime+stime of PID (0 if gone)
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
pg_ticks() {  # the postmaster (own + reaped children's: fields 14-17) plus its live children
  local t c
  t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$PG_PID/stat" 2>/dev/null) || t=0
  for c in $(pgrep -P "$PG_PID"); do t=$((t + $(ticks "$c"))); done
  echo "$t"
}
now_ns() { date +%s%N; }
running() {  # running PID: alive and not a zombie
  local st
  st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)
  [[ -n $st && $st != Z ]]
}
pg_stats() {  # DSN -> "xact_commit rows_written wal_bytes"
  pg_query "$1" "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted, (SELECT wal_bytes FROM pg_stat_wal) FROM pg_stat_database WHERE datname = current_database()" | tr '|' ' '
}
# Agents' CPU: the last value read while each was alive (one that has finished and been
# reaped keeps its last reading).
declare -A AGENT_TICKS
agent_ticks() {
  local a t=0 v
  for a in "${AGENT_PIDS[@]}"; do
    if running "$a"; then
      v=$(ticks "$a")
      [[ -n $v && $v != 0 ]] && AGENT_TICKS[$a]=$v
    fi
    t=$((t + ${AGENT_TICKS[$a]:-0}))
  done
  echo "$t"
}
# snapshot FILE: the collector's /metrics (FILE.metrics), clocks and CPU counters (FILE).
snapshot() {
  local f=$1 t
  cw_scrape "$METRICS_PORT" >"$f.metrics" || return 1
  t=$(agent_ticks)
  {
    echo "t_ns $(now_ns)"
    echo "col $(ticks "$COL_PID")"
    echo "agents $t"
    echo "busy $(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)"
    if [[ $ENGINE == postgres ]]; then
      echo "pg $(pg_ticks)"
      echo "pgstat $(pg_stats "$STEP_DSN")"
    fi
  } >"$f"
}
val() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# quantile Q BEFORE AFTER: histogram_quantile over the increase of the commit histogram.
quantile() {
  awk -v q="$1" '
    function le(s) { sub(/.*le="/, "", s); sub(/".*/, "", s); return s }
    /^citywatch_collector_ledger_commit_seconds_bucket/ {
      b = le($1); if (FILENAME == ARGV[2]) after[b] = $2; else before[b] = $2; bounds[b] = 1 }
    END {
      n = 0
      for (b in bounds) if (b != "+Inf") { ub[++n] = b + 0; key[b + 0] = b }
      for (i = 2; i <= n; i++) { x = ub[i]; for (j = i - 1; j >= 1 && ub[j] > x; j--) ub[j + 1] = ub[j]; ub[j + 1] = x }
      total = after["+Inf"] - before["+Inf"]
      if (total <= 0) { print "nan"; exit }
      rank = q * total; prev_b = 0; prev_c = 0
      for (i = 1; i <= n; i++) {
        c = after[key[ub[i]]] - before[key[ub[i]]]
        if (c >= rank) {
          if (c == prev_c) { print ub[i]; exit }
          print prev_b + (ub[i] - prev_b) * (rank - prev_c) / (c - prev_c); exit
        }
        prev_b = ub[i]; prev_c = c
      }
      print ub[n]  # in the +Inf bucket: the highest finite bound, as Prometheus does
    }' "$2.metrics" "$3.metrics"
}
metric_delta() {  # metric_delta NAME BEFORE AFTER
  echo $(($(cw_sum "$1" <"$3.metrics") - $(cw_sum "$1" <"$2.metrics")))
}
# Stops processes by PID (TERM, bounded wait, KILL) and forgets them, so cw_cleanup never
# signals a PID that has since been reused.
stop_pids() {
  local p q i keep
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep "$CW_POLL"; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    keep=()
    for q in "${CW_PIDS[@]}"; do [[ $q == "$p" ]] || keep+=("$q"); done
    CW_PIDS=("${keep[@]}")
  done
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# run_step ENGINE N BATCH_RECORDS
run_step() {
  ENGINE=$1
  local n=$2 batch=$3 tag="$1-$2-$3" store="" i k port queued
  STEP_DSN=""
  if [[ $ENGINE == postgres ]]; then
    STEP_DSN=$(pg_createdb "cap_${n}_${batch}_$RANDOM") || exit 1
    store="store:
  postgres:
    dsn: \"$STEP_DSN\"
    collector_id: collector-bench"
  fi
  # K reads per agent: about RECORDS records in the step (fewer for small batches, which the
  # commit rate limits), at least one read each.
  k=$(((RECORDS * batch / 1000 + n * PER_READ - 1) / (n * PER_READ)))
  ((k >= 1)) || k=1
  local reads=()
  for ((i = 0; i < k; i++)); do reads+=("$big"); done
  port=$(pg_free_tcp_port) || fail "cannot pick a free port"

  # 1. The agents fill their spools; the collector is not up yet.
  AGENT_PIDS=()
  AGENT_TICKS=()
  for ((i = 1; i <= n; i++)); do
    cw_agent_config "$WORK/$tag-agent-$i.yaml" "$WORK/pki" "agent-$i" "$port" \
      "$WORK/spool-$tag-$i" "batch: {max_records: $batch}"
    sed -i -e "s/segment: seg-test/segment: seg-$i/" -e '/^  dir: /a\  max_size: 4GiB' \
      "$WORK/$tag-agent-$i.yaml"
    cw_spawn "$WORK/$tag-agent-$i.log" "$AGENT_BIN" --config "$WORK/$tag-agent-$i.yaml" -r "${reads[@]}"
    AGENT_PIDS+=("$CW_LAST_PID")
  done
  all_read() {
    local j
    for ((j = 1; j <= n; j++)); do
      grep -q 'agent: all files read' "$WORK/$tag-agent-$j.log" && continue
      running "${AGENT_PIDS[j - 1]}" || fail "agent-$j exited while reading ($tag)"
      return 1
    done
  }
  cw_wait_until 1200 "$n agents to read $k x $big ($tag)" all_read
  queued=$(cat "$WORK"/"$tag"-agent-*.log | sed -n 's/.*all files read (\([0-9]*\) records).*/\1/p' |
    awk '{ s += $1 } END { print s + 0 }')

  # 2. The collector, on the port the agents retry.
  cw_collector_config "$WORK/$tag.yaml" "$WORK/pki" "$WORK/state-$tag" "$store
rules:
  files: [$SRC_DIR/rules]
alerts:
  jsonl: $WORK/alerts-$tag.jsonl"
  sed -i "s/ingest: 127.0.0.1:0/ingest: 127.0.0.1:$port/" "$WORK/$tag.yaml"
  cw_start_collector "collector-$tag" "$WORK/$tag.yaml"
  all_in() {
    local t
    t=$(cw_scrape "$METRICS_PORT") || return 1
    (($(cw_sum citywatch_collector_agents_connected <<<"$t") == n)) &&
      (($(cw_sum citywatch_collector_records_received_total <<<"$t") > 0))
  }
  cw_wait_until 300 "$n agents connected and records arriving ($tag)" all_in
  sleep "$WARMUP"

  # 3. The busy interval.
  snapshot "$WORK/$tag.t0" || fail "cannot take the first snapshot ($tag)"
  local t0 end ended=window
  t0=$(val "$WORK/$tag.t0" t_ns)
  end=$((t0 + WINDOW * 1000000000))
  while (($(now_ns) < end)); do
    agent_ticks >/dev/null
    for i in "${AGENT_PIDS[@]}"; do running "$i" || ended=agent_done; done
    [[ $ended == window ]] || break
    sleep 0.2
  done
  snapshot "$WORK/$tag.t1" || fail "cannot take the second snapshot ($tag)"
  local threads rss
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$COL_PID/status")
  rss=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$COL_PID/status")
  stop_pids "${AGENT_PIDS[@]}"
  stop_pids "$COL_PID"

  local a=$WORK/$tag.t0 b=$WORK/$tag.t1 dt rec bat p50 p99 csum ccol cag cpg=-1 tx=-1 rows=-1 wal=-1
  dt=$(awk -v x="$(val "$a" t_ns)" -v y="$(val "$b" t_ns)" 'BEGIN { printf "%.3f", (y - x) / 1e9 }')
  rec=$(metric_delta citywatch_collector_records_received_total "$a" "$b")
  bat=$(metric_delta citywatch_collector_batches_received_total "$a" "$b")
  p50=$(quantile 0.5 "$a" "$b")
  p99=$(quantile 0.99 "$a" "$b")
  csum=$(awk -v x="$(cw_sum citywatch_collector_ledger_commit_seconds_sum <"$a.metrics")" \
    -v y="$(cw_sum citywatch_collector_ledger_commit_seconds_sum <"$b.metrics")" 'BEGIN { print y - x }')
  ccol=$(($(val "$b" col) - $(val "$a" col)))
  cag=$(($(val "$b" agents) - $(val "$a" agents)))
  local busy=$(($(val "$b" busy) - $(val "$a" busy)))
  if [[ $ENGINE == postgres ]]; then
    local tx0 rows0 wal0 tx1 rows1 wal1
    cpg=$(($(val "$b" pg) - $(val "$a" pg)))
    read -r tx0 rows0 wal0 < <(awk '$1 == "pgstat" { print $2, $3, $4 }' "$a")
    read -r tx1 rows1 wal1 < <(awk '$1 == "pgstat" { print $2, $3, $4 }' "$b")
    tx=$((tx1 - tx0)) rows=$((rows1 - rows0)) wal=$((wal1 - wal0))
  fi
  local alerts=0
  [[ -f $WORK/alerts-$tag.jsonl ]] && alerts=$(grep -c '"state":"firing"' "$WORK/alerts-$tag.jsonl")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ENGINE" \
    "$n" "$dt" "$rec" "$bat" "$p50" "$p99" "$csum" "$ccol" "$cag" "$cpg" "$tx" "$rows" "$ended" \
    "$threads" "$alerts" "$batch" "$queued" "$wal" "$busy" "$rss" >>"$RESULTS"
  awk -F'\t' -v hz="$HZ" 'END {
    printf "[collector_capacity] %s N=%s batch %s: %s records queued; busy %.1f s: %d records (%.0f/s), %d batches, p50 %.2f ms, p99 %.2f ms, collector CPU %.0f%%, agents CPU %.0f%%%s; ended by: %s\n",
      $1, $2, $17, $18, $3, $4, $4 / $3, $5, $6 * 1000, $7 * 1000, $9 / hz / $3 * 100, $10 / hz / $3 * 100,
      ($11 >= 0 ? sprintf(", postgres CPU %.0f%%", $11 / hz / $3 * 100) : ""), $14 }' "$RESULTS" >&2
  rm -rf "$WORK"/spool-"$tag"-*
}

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load at start:$(uptime | sed 's/.*load average://')"
echo "input: $big ($packets packets; ~$PER_READ records per read); rules: $SRC_DIR/rules; PostgreSQL $PG_VERSION (private, fsync on); RECORDS=$RECORDS WINDOW=${WINDOW}s WARMUP=${WARMUP}s"
for n in $STEPS; do run_step postgres "$n" 1000; done
[[ -n $SQLITE_STEP ]] && run_step sqlite "$SQLITE_STEP" 1000
[[ -n $SMALL_STEP ]] && run_step postgres "$SMALL_STEP" "$SMALL_BATCH"
echo "load at end:$(uptime | sed 's/.*load average://')"

awk -F'\t' -v hz="$HZ" '
  BEGIN {
    printf "%-8s %2s %5s %6s %8s %7s %6s %7s %7s %7s %7s %5s %10s %4s %9s %7s %7s %8s %8s %6s %6s %10s\n",
      "store", "N", "batch", "secs", "rec/s", "batch/s", "rec/b", "p50_ms", "p99_ms", "mean_ms", "commit%",
      "col%", "col_s/100k", "pg%", "pg_s/100k", "agents%", "pg_tx/s", "pg_row/s", "wal_kB/s",
      "other%", "rss_MB", "ended_by"
  }
  {
    s = $3; rec = $4
    col = $9 / hz; ag = $10 / hz
    pg = ($11 >= 0) ? sprintf("%4.0f", $11 / hz / s * 100) : "   -"
    pgk = ($11 >= 0 && rec > 0) ? sprintf("%9.3f", $11 / hz / rec * 1e5) : "        -"
    tx = ($12 >= 0) ? sprintf("%7.0f", $12 / s) : "      -"
    rows = ($13 >= 0) ? sprintf("%8.0f", $13 / s) : "       -"
    wal = ($19 >= 0) ? sprintf("%8.0f", $19 / 1024 / s) : "       -"
    other = ($20 - $9 - $10 - ($11 >= 0 ? $11 : 0)) / hz
    printf "%-8s %2d %5d %6.1f %8.0f %7.1f %6.0f %7.2f %7.2f %7.2f %7.0f %5.0f %10.3f %s %s %7.0f %s %s %s %6.0f %6d %10s\n",
      $1, $2, $17, s, rec / s, $5 / s, ($5 > 0 ? rec / $5 : 0), $6 * 1000, $7 * 1000,
      ($5 > 0 ? $8 / $5 * 1000 : 0), $8 / s * 100, col / s * 100, (rec > 0 ? col / rec * 1e5 : 0),
      pg, pgk, ag / s * 100, tx, rows, wal, other / s * 100, $21, $14
  }' "$RESULTS"
echo "(% = share of one core; commit% = share of the collector event loop's wall time spent in ledger commits; collector threads: $(cut -f15 "$RESULTS" | sort -u | paste -sd/); firing alerts per step: $(cut -f16 "$RESULTS" | paste -sd' '))"
