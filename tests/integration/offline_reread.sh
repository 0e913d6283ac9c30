#!/usr/bin/env bash
# `citywatch-agent -r FILE` run twice on the same file used to count its traffic twice at
# the collector (issue 11, item 8): each run numbers its batches anew. Now:
#   1. a first run delivers the capture (collector totals T);
#   2. a second run on the same content (another name, even) is refused with exit 2 and a
#      message, and the collector's totals stay T;
#   3. --reread reads it anyway: totals 2T, as asked;
#   4. a run stopped before its batches were acked (collector down) leaves the file marked as
#      read part-way: the next -r on it is refused, and a run without -r (another file)
#      delivers what the stopped run spooled, once;
#   5. one run given the same content twice (a file and its copy) is refused with exit 2,
#      naming both, and reads nothing; the file alone is then read once;
#   6. a run stopped at the second of two files' turn has marked only the first: the next
#      run reads the second and refuses the first.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_make_small_pcap "$WORK/small.pcap"
cp "$WORK/small.pcap" "$WORK/renamed.pcap"
cw_make_small_pcap "$WORK/second.pcap"
# shifted SRC DST SECONDS: the same packets SECONDS later: the same traffic, another capture.
shifted() {
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
fmt = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
out = bytearray(data[:24]); off = 24
while off + 16 <= len(data):
    sec, usec, incl, orig = struct.unpack(fmt + "IIII", data[off:off + 16])
    out += struct.pack(fmt + "IIII", sec + int(sys.argv[3]), usec, incl, orig) + data[off + 16:off + 16 + incl]
    off += 16 + incl
open(sys.argv[2], "wb").write(bytes(out))
PY
}
shifted "$WORK/small.pcap" "$WORK/other.pcap" 1

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool"
packets() { cw_metric "$METRICS_PORT" citywatch_flow_packets_total; }
run_r() { # LOG FILE [ARGS]: a bounded -r run; CW_EXIT holds its exit code
  local log=$1
  shift
  cw_spawn "$WORK/$log" "$AGENT_BIN" --config "$WORK/agent.yaml" "$@"
  cw_wait_exit "$CW_LAST_PID" 600
}

run_r first.log -r "$WORK/small.pcap"
cw_expect "first run exit code" "$CW_EXIT" 0
T=$(packets)
((T > 0)) || fail "the first run delivered nothing"

run_r second.log -r "$WORK/renamed.pcap"
cw_expect "second run on the same content: exit code" "$CW_EXIT" 2
grep -q "renamed.pcap: already read into this agent's spool" "$WORK/second.log" ||
  fail "no clear refusal: $(cat "$WORK/second.log")"
cw_expect "collector packets after the refused run" "$(packets)" "$T"

run_r reread.log -r "$WORK/small.pcap" --reread
cw_expect "--reread exit code" "$CW_EXIT" 0
cw_expect "collector packets after --reread" "$(packets)" "$((2 * T))"

# 4. The collector goes away; a run on other.pcap reads it, cannot deliver, and is stopped.
cw_stop "$COL_PID"
cw_spawn "$WORK/stopped.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$WORK/other.pcap"
STOPPED=$CW_LAST_PID
cw_wait_until 300 "the stopped run to finish reading" grep -q "all files read" "$WORK/stopped.log"
cw_stop "$STOPPED"
cw_start_collector collector2 "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool"
run_r partial.log -r "$WORK/other.pcap"
cw_expect "run on a file read part-way: exit code" "$CW_EXIT" 2
grep -q "other.pcap: an earlier run stopped before the collector acked all of it" "$WORK/partial.log" ||
  fail "no clear refusal: $(cat "$WORK/partial.log")"
# Another file: the spooled batches of the stopped run go out with it, once.
run_r drain.log -r "$WORK/second.pcap" --reread
cw_expect "drain run exit code" "$CW_EXIT" 0
cw_expect "collector packets: stopped run's T + second.pcap's T (reread)" "$(packets)" "$((4 * T))"

# 5. The same capture twice in one run: refused before anything is read or marked.
shifted "$WORK/small.pcap" "$WORK/third.pcap" 2
cp "$WORK/third.pcap" "$WORK/third-copy.pcap"
run_r twice.log -r "$WORK/third.pcap" "$WORK/third-copy.pcap"
cw_expect "the same capture twice in one run: exit code" "$CW_EXIT" 2
grep -q "third-copy.pcap: the same capture as $WORK/third.pcap" "$WORK/twice.log" ||
  fail "no clear refusal: $(cat "$WORK/twice.log")"
cw_expect "collector packets after the refused run" "$(packets)" "$((4 * T))"
run_r third.log -r "$WORK/third.pcap"
cw_expect "the file alone: exit code" "$CW_EXIT" 0
cw_expect "collector packets: third.pcap once" "$(packets)" "$((5 * T))"

# 6. Files are marked as their turn comes. For this run the ledger is a FIFO: each mark opens
#    it anew, so with no reader left the second file's mark waits, holding the run at the
#    second file's turn after the first was read. Killed there, the run has marked only the
#    first file: the next run refuses that one and reads the second.
shifted "$WORK/small.pcap" "$WORK/sixth-a.pcap" 5
shifted "$WORK/small.pcap" "$WORK/sixth-b.pcap" 6
LEDGER=$(ls "$WORK"/agent-state/offline-reads.demo-agent.*)
[[ -f "$LEDGER" ]] || fail "no ledger in $WORK/agent-state"
mv "$LEDGER" "$WORK/ledger.saved"
mkfifo "$LEDGER"
cw_spawn "$WORK/ledger.first" cat "$LEDGER" # the first mark's lines, then end of file
CAT=$CW_LAST_PID
cw_spawn "$WORK/stopped2.log" "$AGENT_BIN" --config "$WORK/agent.yaml" --reread \
  -r "$WORK/sixth-a.pcap" "$WORK/sixth-b.pcap"
STOPPED2=$CW_LAST_PID
cw_wait_until 300 "the first file read" grep -q "finished reading $WORK/sixth-a.pcap" "$WORK/stopped2.log"
cw_wait_exit "$CAT" 100
kill -0 "$STOPPED2" 2>/dev/null || fail "the run did not wait at the second file's mark: $(cat "$WORK/stopped2.log")"
cw_expect "lines marked before the second file's turn" "$(wc -l <"$WORK/ledger.first")" 1
grep -q "^started [^ ]* $WORK/sixth-a.pcap$" "$WORK/ledger.first" ||
  fail "the first file is not the one marked: $(cat "$WORK/ledger.first")"
kill -KILL "$STOPPED2"
cw_wait_exit "$STOPPED2" 100
rm "$LEDGER"
cat "$WORK/ledger.saved" "$WORK/ledger.first" >"$LEDGER"
before=$(packets)
run_r sixth-b.log -r "$WORK/sixth-b.pcap"
cw_expect "the file the stopped run never opened: exit code" "$CW_EXIT" 0
(($(packets) >= before + T)) || fail "sixth-b.pcap was not delivered: $(packets) < $before + $T"
run_r sixth-a.log -r "$WORK/sixth-a.pcap"
cw_expect "the file the stopped run was reading: exit code" "$CW_EXIT" 2
grep -q "sixth-a.pcap: an earlier run stopped" "$WORK/sixth-a.log" ||
  fail "no clear refusal: $(cat "$WORK/sixth-a.log")"
echo "PASS: offline_reread: same content refused (exit 2, totals stayed $T), --reread counted again ($((2 * T))), a part-way run refused and its spool delivered once ($((4 * T))), a capture given twice refused and then read once ($((5 * T))), a file a stopped run never opened read by the next"
