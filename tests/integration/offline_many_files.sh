#!/usr/bin/env bash
# `citywatch-agent -r` given many files (a month of hourly captures is 720) used to open them
# all at start and read them all at once: two descriptors, a read buffer, a flow meter and
# event tables per file, so memory grew by megabytes per file and a few hundred files ran out
# of descriptors. Files are now read one after another, each file's state released once its
# flows are flushed:
#   1. one file: exit 0, the collector counts its packets (T), the agent's peak RSS is R1;
#   2. 300 links to the same file, with the descriptor limit at 128: exit 0, the collector
#      counts 300 T more (every file read, each once), and the peak RSS stays within 32 MiB
#      of R1, so 0.11 MiB or more kept per file fails it. Before: about 2.5 MiB per file of
#      this size. Now the release build peaks 2-3 MiB above one file, the sanitizer build
#      about 13 MiB (freed blocks wait in its quarantine).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
FILES=300
cw_make_small_pcap "$WORK/small.pcap"
mkdir -p "$WORK/many"
for ((i = 0; i < FILES; i++)); do ln "$WORK/small.pcap" "$WORK/many/f$i.pcap"; done

# Runs a command with an optional descriptor limit, then writes its peak RSS (KiB) to a
# file; exits with the command's exit code.
cat >"$WORK/peak.py" <<'PY'
import resource, subprocess, sys
out, nofile, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def limit():
    if nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
rc = subprocess.call(cmd, preexec_fn=limit)
open(out, "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)
PY

# Under AddressSanitizer freed blocks wait in a quarantine (256 MiB by default) before their
# memory is reused: keep it small, or the released files' state would count as held.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool"
packets() { cw_metric "$METRICS_PORT" citywatch_flow_packets_total; }

cw_step "one file"
cw_spawn "$WORK/one.log" /usr/bin/python3 "$WORK/peak.py" "$WORK/one.rss" 0 \
  "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$WORK/small.pcap"
cw_wait_exit "$CW_LAST_PID" 600
cw_expect "one file: exit code" "$CW_EXIT" 0
T=$(packets)
((T > 0)) || fail "the one-file run delivered nothing"
R1=$(cat "$WORK/one.rss")

cw_step "$FILES files, descriptor limit 128"
cw_spawn "$WORK/many.log" /usr/bin/python3 "$WORK/peak.py" "$WORK/many.rss" 128 \
  "$AGENT_BIN" --config "$WORK/agent.yaml" --reread -r "$WORK"/many/f*.pcap
cw_wait_exit "$CW_LAST_PID" 900
cw_expect "$FILES files: exit code" "$CW_EXIT" 0
cw_expect "files finished" "$(grep -c "finished reading" "$WORK/many.log")" "$FILES"
cw_expect "collector packets: T + $FILES T" "$(packets)" "$(((FILES + 1) * T))"
RN=$(cat "$WORK/many.rss")
cw_log "peak RSS: one file $R1 KiB, $FILES files $RN KiB"
((RN <= R1 + 32768)) ||
  fail "peak RSS with $FILES files is $RN KiB, more than 32 MiB above one file's $R1 KiB"
echo "PASS: offline_many_files: $FILES files read one after another with 128 descriptors, each counted once ($(((FILES + 1) * T)) packets), peak RSS $RN KiB against $R1 KiB for one file"
