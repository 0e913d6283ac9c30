#!/bin/bash
# lib.sh's deadline ends a hung test, however deep the hang: a command substitution whose
# subshell waits on a child that never ends (the substitution's pipe stays open, so killing
# the test's direct children alone leaves the test waiting until ctest's SIGKILL).
#
# An inner test, with a 2-second deadline, hangs in such a substitution. It must fail within
# the outer bound naming the deadline and its step, and the hung process must be gone.
source "$(dirname "$0")/lib.sh"
cw_init "$@"

cat >"$WORK/inner.sh" <<'INNER'
source "$LIB"
cw_init "$@"
cw_step "hanging in a command substitution"
# The subshell's bash waits for sleep; sleep's pid goes where the outer test can check it.
out=$(bash -c 'sleep 300 & echo $! >"$HUNG_PID_FILE"; wait')
echo "not reached: $out"
exit 0
INNER

# Whatever happens, the hung process this test caused does not outlive it (if that PID is
# still the sleep it started, not a process that reused the number).
cw_hung_cleanup() {
  local pid
  [[ -s "$WORK/hung.pid" ]] || return 0
  pid=$(<"$WORK/hung.pid")
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == "sleep 300 " ]] && kill -KILL "$pid"
  return 0
}
cw_at_exit cw_hung_cleanup

cw_step "run the inner test (deadline at 2 s), bounded at 60 s"
rc=0
LIB="$SRC_DIR/tests/integration/lib.sh" HUNG_PID_FILE="$WORK/hung.pid" CW_TIMEOUT=17 \
  timeout 60 bash "$WORK/inner.sh" "$AGENT_BIN" "$COLLECTOR_BIN" "$SRC_DIR" >"$WORK/inner.log" 2>&1 ||
  rc=$?
cat "$WORK/inner.log" >&2
((rc != 124)) || fail "the inner test was still hung after 60 s: the deadline did not end it"
((rc == 1)) || fail "the inner test exited $rc, expected 1 (failed at its deadline)"
grep -q 'FAIL: deadline: still running after 2 s .*in step: hanging in a command substitution' \
  "$WORK/inner.log" || fail "the inner test's failure does not name the deadline and its step"
grep -q 'not reached' "$WORK/inner.log" && fail "the inner test went on past its deadline"

cw_step "the hung process is gone"
[[ -s "$WORK/hung.pid" ]] || fail "the inner test never started its hung process"
hung=$(<"$WORK/hung.pid")
gone=0
for ((i = 0; i < 50; i++)); do
  kill -0 "$hung" 2>/dev/null || { gone=1; break; }
  sleep "$CW_POLL"
done
((gone == 1)) || fail "process $hung (the hung sleep) outlived the inner test"
cw_log "PASS: the deadline ended a hang two processes below the test, and named its step"
