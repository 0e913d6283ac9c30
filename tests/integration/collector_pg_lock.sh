#!/usr/bin/env bash
# A lock held on the shared PostgreSQL under a running collector (docs/scaling.md): an
# operator's session holds agent_totals, which every batch's commit writes, in ACCESS
# EXCLUSIVE mode for 20 s while an agent streams segment-a. The collector's statements run on
# its event loop (which pings the systemd watchdog), so a commit waits at most the statement
# limit the collector sets on its connections (15 s) and fails; the batch is not acked and
# the agent sends it again. Checked:
# - the commit failed on the statement timeout, and the ledger error is counted;
# - the same collector process runs throughout, and answers /metrics after the failure;
# - once the lock is gone the agent finishes, and the totals are exact (29,327 packets and
#   6,513,622 bytes), every batch counted once.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/pg_lib.sh"
cw_init "$@"
cw_need_segment_a
PACKETS=29327 BYTES=6513622
HOLD=20

pg_start
cw_certs "$WORK/pki" agent-1
cw_collector_config "$WORK/c.yaml" "$WORK/pki" "$WORK/state" "store:
  postgres:
    dsn: \"$PG_DSN\"
    collector_id: collector-a"
cw_start_collector a "$WORK/c.yaml"
C_PID=$COL_PID C_METRICS=$METRICS_PORT

# The lock, over a connection of the collector's role (the tables' owner).
cw_spawn "$WORK/lock.log" "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$PG_DSN connect_timeout=10" \
  -c "BEGIN" -c "LOCK TABLE agent_totals IN ACCESS EXCLUSIVE MODE" \
  -c "SELECT pg_sleep($HOLD)" -c "COMMIT"
LOCK_PID=$CW_LAST_PID
held() {
  [[ $(pg_query "$PG_DSN" "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'agent_totals' AND l.mode = 'AccessExclusiveLock' AND l.granted") == 1 ]]
}
cw_wait_until 100 "the lock on agent_totals" held
LOCKED_AT=$(date +%s)

cw_agent_config "$WORK/agent.yaml" "$WORK/pki" agent-1 "$INGEST_PORT" "$WORK/spool" \
  "batch: {max_records: 100}"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$SEGMENT_A"
AGENT_PID=$CW_LAST_PID

timed_out() { grep -q "canceling statement due to statement timeout" "$WORK/a.log"; }
cw_wait_until 600 "the collector's commit to fail on its statement limit" timed_out
kill -0 "$LOCK_PID" 2>/dev/null ||
  fail "the lock ended before the commit failed: the failure is not the statement limit's"
kill -0 "$C_PID" 2>/dev/null || fail "the collector exited while the lock was held"
errors=$(cw_metric "$C_METRICS" citywatch_collector_ledger_errors_total)
((errors >= 1)) || fail "no ledger error counted (citywatch_collector_ledger_errors_total $errors)"
cw_log "commit failed on the statement timeout $(($(date +%s) - LOCKED_AT)) s into the lock; $errors ledger error(s) counted"

cw_wait_exit "$LOCK_PID" 600
cw_expect "exit code of the locking session" "$CW_EXIT" 0
cw_wait_exit "$AGENT_PID" 600
cw_expect "exit code of the agent" "$CW_EXIT" 0
kill -0 "$C_PID" 2>/dev/null || fail "the collector exited"

row=$(pg_query "$PG_DSN" "SELECT sum(packets) || ' ' || sum(bytes) FROM flow_totals WHERE agent = 'agent-1'")
cw_expect "ledger packets and bytes" "$row" "$PACKETS $BYTES"
pm=$(cw_metric "$C_METRICS" citywatch_flow_packets_total)
cw_expect "packets in the collector's /metrics" "$pm" "$PACKETS"
batches=$(pg_query "$PG_DSN" "SELECT sum(batches) FROM agent_totals WHERE agent = 'agent-1'")
echo "PASS: collector_pg_lock: a ${HOLD} s lock on agent_totals cost $errors failed commit(s) (statement timeout), the collector (pid $C_PID) stayed up; $batches batches, $PACKETS packets / $BYTES bytes exact after the agent's resends"
