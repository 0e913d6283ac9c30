#!/usr/bin/env bash
# Collector pairs on one PostgreSQL (issue 15, acceptance 2; docs/scaling.md). Two
# collectors, A and B, share a PostgreSQL server the test starts itself. Two agents list A
# then B and read segment-a (-r) in small batches; while they stream, A is killed with
# SIGKILL. The agents must finish on B and:
# - the city-wide totals are exact: 29,327 packets and 6,513,622 bytes per agent, in the
#   shared ledger and in the sum of both collectors' /metrics (A restarted: each exports what
#   it ingested);
# - the failover is no segment outage: nothing is recorded while the agents move;
# - a real outage is recorded exactly once: the agents exit when done (stopped for longer than
#   the grace) and each segment gets one agent_lost outage, from the agent's exit, though
#   both collectors are up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/pg_lib.sh"
cw_init "$@"
cw_need_segment_a
PACKETS=29327 BYTES=6513622
GRACE=8

pg_start
cw_certs "$WORK/pki" agent-1 agent-2
pair_config() {  # FILE ID
  cw_collector_config "$1" "$WORK/pki" "$WORK/state-$2" "store:
  postgres:
    dsn: \"$PG_DSN\"
    collector_id: collector-$2
uptime:
  min_outage: 2s
  agent_grace: ${GRACE}s"
}
pair_config "$WORK/a.yaml" a
pair_config "$WORK/b.yaml" b
cw_start_collector b "$WORK/b.yaml"
B_INGEST=$INGEST_PORT B_METRICS=$METRICS_PORT
cw_start_collector a "$WORK/a.yaml"
A_PID=$COL_PID A_INGEST=$INGEST_PORT A_METRICS=$METRICS_PORT

declare -A AGENT_PID
for n in 1 2; do
  cw_agent_config "$WORK/agent-$n.yaml" "$WORK/pki" "agent-$n" "$A_INGEST" "$WORK/spool-$n" \
    "batch: {max_records: 10}"
  sed -i "s/segment: seg-test/segment: seg-$n/" "$WORK/agent-$n.yaml"
  # The second collector of the pair: tried when A does not answer.
  sed -i "/server_name: localhost/a\\  - address: 127.0.0.1:$B_INGEST\\n    server_name: localhost" \
    "$WORK/agent-$n.yaml"
  cw_spawn "$WORK/agent-$n.log" "$AGENT_BIN" --config "$WORK/agent-$n.yaml" -r "$SEGMENT_A"
  AGENT_PID[$n]=$CW_LAST_PID
done

# Mid-stream: A has committed a few hundred batches of both agents.
on_a() { (($(cw_metric "$A_METRICS" citywatch_collector_batches_received_total) >= 300)); }
cw_wait_until 300 "collector A to commit 300 batches" on_a
kill -KILL "$A_PID"
cw_wait_exit "$A_PID" 100
KILLED_AT=$(date +%s%N)
a_batches=$(pg_query "$PG_DSN" "SELECT coalesce(sum(batches), 0) FROM agent_totals WHERE collector = 'collector-a'")
cw_log "collector A killed (SIGKILL) after committing $a_batches batches"

for n in 1 2; do
  cw_wait_exit "${AGENT_PID[$n]}" 600
  cw_expect "exit code of agent-$n" "$CW_EXIT" 0
done
AGENTS_DONE_AT=$(date +%s%N)
b_batches=$(pg_query "$PG_DSN" "SELECT coalesce(sum(batches), 0) FROM agent_totals WHERE collector = 'collector-b'")
((a_batches > 0 && b_batches > 0)) ||
  fail "not a mid-stream failover: A committed $a_batches batches, B $b_batches"
for n in 1 2; do
  grep -q "127.0.0.1:$B_INGEST" "$WORK/agent-$n.log" ||
    cw_log "note: agent-$n's log does not name B's address"
done

# Exact totals in the shared ledger, per agent.
for n in 1 2; do
  row=$(pg_query "$PG_DSN" "SELECT sum(packets) || ' ' || sum(bytes) FROM flow_totals WHERE agent = 'agent-$n'")
  cw_expect "ledger packets and bytes of agent-$n" "$row" "$PACKETS $BYTES"
done

# No outage for the failover: nothing recorded before the agents exited.
early=$(pg_query "$PG_DSN" "SELECT count(*) FROM outages")
cw_expect "outages recorded while the agents failed over and streamed" "$early" 0

# A comes back (same collector_id): it seeds its counters from its own rows only, so the
# sum over both collectors' /metrics is the city's total.
cw_start_collector a-again "$WORK/a.yaml"
A_METRICS=$METRICS_PORT
ma=$(cw_scrape "$A_METRICS")
mb=$(cw_scrape "$B_METRICS")
pa=$(cw_sum citywatch_flow_packets_total <<<"$ma")
pb=$(cw_sum citywatch_flow_packets_total <<<"$mb")
ba=$(cw_sum citywatch_flow_bytes_total <<<"$ma")
bb=$(cw_sum citywatch_flow_bytes_total <<<"$mb")
cw_expect "packets over both collectors' /metrics" "$((pa + pb))" "$((2 * PACKETS))"
cw_expect "bytes over both collectors' /metrics" "$((ba + bb))" "$((2 * BYTES))"
((pa > 0 && pb > 0)) || fail "one collector exports no packets (A $pa, B $pb)"

# The agents are gone for longer than the grace: one agent_lost outage per segment.
lost() { (($(pg_query "$PG_DSN" "SELECT count(*) FROM outages WHERE cause = 'agent_lost'") >= 2)); }
cw_wait_until $((GRACE * 10 + 100)) "the agents' segments to be recorded dark" lost
sleep 4  # room for a second, wrong, record of the same outage
rows=$(pg_query "$PG_DSN" "SELECT e.segment || ':' || count(*) FROM outages o JOIN entities e ON e.id = o.entity_id WHERE o.cause = 'agent_lost' GROUP BY e.segment ORDER BY e.segment")
cw_expect "agent_lost outages per segment" "$(echo $rows)" "seg-1:1 seg-2:1"
first=$(pg_query "$PG_DSN" "SELECT min(start_ns) FROM outages")
((first > KILLED_AT)) || fail "an outage starts at $first, before the agents' exits (A killed at $KILLED_AT)"
total=$(pg_query "$PG_DSN" "SELECT count(*) FROM outages")
cw_expect "outages in the store" "$total" 2
owners=$(pg_query "$PG_DSN" "SELECT string_agg(agent || '=' || collector, ' ' ORDER BY agent) FROM agent_owners")
gap_ms=$(((AGENTS_DONE_AT - KILLED_AT) / 1000000))
echo "PASS: collector_failover: A killed after $a_batches batches, B finished with $b_batches; per agent $PACKETS packets / $BYTES bytes exact (ledger and A+B /metrics: A $pa + B $pb packets); 0 outages for the failover; each segment's real loss recorded once ($owners); agents done ${gap_ms} ms after the kill"
