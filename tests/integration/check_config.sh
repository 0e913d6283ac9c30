#!/usr/bin/env bash
# --check-config of both daemons: a good configuration prints "configuration OK" and exits 0
# (creating nothing); an unknown key, a wrong type, a missing TLS file, a YAML syntax error
# and a missing configuration file exit 2 with FILE:LINE and the key named on stderr.
# Configurations use paths relative to their own directory and are checked from another cwd.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"

cw_certs "$WORK/pki" demo-agent
CHECKS=0

# run_check BIN CONFIG: runs --check-config from / ; sets RC, OUT, ERR.
run_check() {
  (cd / && "$1" --config "$2" --check-config >"$WORK/out" 2>"$WORK/err")
  RC=$?
  OUT=$(cat "$WORK/out")
  ERR=$(cat "$WORK/err")
}

# line_of FILE PATTERN: the 1-based line of the first match.
line_of() { grep -n -m1 -- "$2" "$1" | cut -d: -f1; }

# expect_ok WHAT BIN CONFIG
expect_ok() {
  run_check "$2" "$3"
  ((RC == 0)) || fail "$1: exit $RC, expected 0; stderr: $ERR"
  [[ "$OUT" == "$3: configuration OK" ]] || fail "$1: stdout '$OUT', expected '$3: configuration OK'"
  CHECKS=$((CHECKS + 1))
}

# expect_error WHAT BIN CONFIG EXPECTED_SUBSTRING...
expect_error() {
  local what=$1 bin=$2 cfg=$3 s
  shift 3
  run_check "$bin" "$cfg"
  ((RC == 2)) || fail "$what: exit $RC, expected 2; stdout: $OUT; stderr: $ERR"
  [[ -z "$OUT" ]] || fail "$what: unexpected stdout: $OUT"
  for s in "$@"; do
    [[ "$ERR" == *"$s"* ]] || fail "$what: stderr does not contain '$s': $ERR"
  done
  CHECKS=$((CHECKS + 1))
  cw_log "$what -> $ERR"
}

mkdir -p "$WORK/etc"
ln -s ../pki "$WORK/etc/pki"
E=$WORK/etc

# ---- agent ----------------------------------------------------------------------------------
cat >"$E/agent.yaml" <<'YAML'
agent:
  id: demo-agent
  segment: seg-test
collectors:
  - address: 127.0.0.1:7443
    server_name: localhost
tls:
  ca: pki/ca.pem
  cert: pki/demo-agent.pem
  key: pki/demo-agent.key
capture:
  - interface: lo
    filter: not tcp port 7443
batch:
  max_records: 500
  max_delay: 1s
spool:
  dir: agent-spool
reconnect:
  initial_backoff: 100ms
  max_backoff: 1s
metrics:
  listen: 127.0.0.1:0
YAML
expect_ok "agent: good config" "$AGENT_BIN" "$E/agent.yaml"
[[ ! -e "$E/agent-spool" && ! -e /agent-spool ]] || fail "agent --check-config created the spool directory"

sed 's/^  max_delay: 1s/  max_delay: 1s\n  max_recordz: 5/' "$E/agent.yaml" >"$E/agent-unknown.yaml"
expect_error "agent: unknown key" "$AGENT_BIN" "$E/agent-unknown.yaml" \
  "$E/agent-unknown.yaml:$(line_of "$E/agent-unknown.yaml" max_recordz):" "batch.max_recordz" "unknown key"

sed 's/max_records: 500/max_records: lots/' "$E/agent.yaml" >"$E/agent-type.yaml"
expect_error "agent: wrong type" "$AGENT_BIN" "$E/agent-type.yaml" \
  "$E/agent-type.yaml:$(line_of "$E/agent-type.yaml" 'max_records: lots'):" "batch.max_records" "expected an integer" "lots"

sed 's/initial_backoff: 100ms/initial_backoff: soon/' "$E/agent.yaml" >"$E/agent-duration.yaml"
expect_error "agent: bad duration" "$AGENT_BIN" "$E/agent-duration.yaml" \
  "$E/agent-duration.yaml:$(line_of "$E/agent-duration.yaml" 'initial_backoff: soon'):" "reconnect.initial_backoff" "soon"

sed 's#key: pki/demo-agent.key#key: pki/missing.key#' "$E/agent.yaml" >"$E/agent-nofile.yaml"
expect_error "agent: missing tls file" "$AGENT_BIN" "$E/agent-nofile.yaml" \
  "$E/agent-nofile.yaml:$(line_of "$E/agent-nofile.yaml" 'missing.key'):" "tls.key" "no such file" "missing.key"

sed 's#    filter: not tcp port 7443#    filter: not tcp port 7443\n    threads: 2#' "$E/agent.yaml" >"$E/agent-threads.yaml"
expect_ok "agent: two capture threads" "$AGENT_BIN" "$E/agent-threads.yaml"
sed 's#    threads: 2#    threads: 65#' "$E/agent-threads.yaml" >"$E/agent-threads-many.yaml"
expect_error "agent: too many capture threads" "$AGENT_BIN" "$E/agent-threads-many.yaml" \
  "$E/agent-threads-many.yaml:$(line_of "$E/agent-threads-many.yaml" 'threads: 65'):" "capture[0].threads"
sed 's#  - interface: lo#  - file: agent.yaml#' "$E/agent-threads.yaml" >"$E/agent-threads-file.yaml"
expect_error "agent: capture threads for a file" "$AGENT_BIN" "$E/agent-threads-file.yaml" \
  "$E/agent-threads-file.yaml:$(line_of "$E/agent-threads-file.yaml" 'threads: 2'):" "capture[0].threads" \
  "a capture file is read by one thread"

printf 'agent: [\n  id: x\n' >"$E/agent-syntax.yaml"
expect_error "agent: YAML syntax error" "$AGENT_BIN" "$E/agent-syntax.yaml" "$E/agent-syntax.yaml:" "YAML syntax error"

expect_error "agent: missing config file" "$AGENT_BIN" "$E/no-such-agent.yaml" \
  "$E/no-such-agent.yaml" "cannot open configuration file"

# ---- collector ------------------------------------------------------------------------------
cat >"$E/collector.yaml" <<'YAML'
listen:
  ingest: 127.0.0.1:7443
  metrics: 127.0.0.1:9464
tls:
  ca: pki/ca.pem
  cert: pki/collector.pem
  key: pki/collector.key
agents:
  allowed: [demo-agent]
state_dir: collector-state
YAML
expect_ok "collector: good config" "$COLLECTOR_BIN" "$E/collector.yaml"
[[ ! -e "$E/collector-state" && ! -e /collector-state ]] || fail "collector --check-config created the state directory"

sed 's/^state_dir:/stat_dir:/' "$E/collector.yaml" >"$E/collector-unknown.yaml"
expect_error "collector: unknown key" "$COLLECTOR_BIN" "$E/collector-unknown.yaml" \
  "$E/collector-unknown.yaml:$(line_of "$E/collector-unknown.yaml" stat_dir):" "stat_dir" "unknown key"

sed 's/allowed: \[demo-agent\]/allowed: 5/' "$E/collector.yaml" >"$E/collector-type.yaml"
expect_error "collector: wrong type" "$COLLECTOR_BIN" "$E/collector-type.yaml" \
  "$E/collector-type.yaml:$(line_of "$E/collector-type.yaml" 'allowed: 5'):" "agents.allowed" "expected a list"

sed 's/metrics: 127.0.0.1:9464/metrics: nowhere/' "$E/collector.yaml" >"$E/collector-endpoint.yaml"
expect_error "collector: bad endpoint" "$COLLECTOR_BIN" "$E/collector-endpoint.yaml" \
  "$E/collector-endpoint.yaml:$(line_of "$E/collector-endpoint.yaml" 'metrics: nowhere'):" "listen.metrics" "nowhere"

sed 's#cert: pki/collector.pem#cert: pki/missing.pem#' "$E/collector.yaml" >"$E/collector-nofile.yaml"
expect_error "collector: missing tls file" "$COLLECTOR_BIN" "$E/collector-nofile.yaml" \
  "$E/collector-nofile.yaml:$(line_of "$E/collector-nofile.yaml" 'missing.pem'):" "tls.cert" "no such file" "missing.pem"

printf 'listen: {ingest: [\n' >"$E/collector-syntax.yaml"
expect_error "collector: YAML syntax error" "$COLLECTOR_BIN" "$E/collector-syntax.yaml" \
  "$E/collector-syntax.yaml:" "YAML syntax error"

expect_error "collector: missing config file" "$COLLECTOR_BIN" "$E/no-such-collector.yaml" \
  "$E/no-such-collector.yaml" "cannot open configuration file"

# A web config with an unknown key and a plain-text password: both reported at the web
# config's own FILE:LINE, the password never echoed.
printf 'tls_server_config:\n  cert_file: pki/collector.pem\n  key_file: pki/collector.key\n  cipher_suit: [x]\nbasic_auth_users:\n  prometheus: hunter2-plain\n' >"$E/web.yml"
cp "$E/collector.yaml" "$E/collector-web.yaml"
printf 'metrics:\n  web_config_file: web.yml\n' >>"$E/collector-web.yaml"
expect_error "collector: bad web config" "$COLLECTOR_BIN" "$E/collector-web.yaml" \
  "$E/web.yml:4:" "cipher_suit" "$E/web.yml:6:" "bcrypt"
[[ "$ERR" == *hunter2* ]] && fail "the plain-text password from the web config was echoed: $ERR"

# Config edges found by attacking the daemons (issue 11, item 7).
{ cat "$E/agent.yaml"; printf 'spool:\n  dir: /tmp/elsewhere\n'; } >"$E/agent-dup.yaml"
if grep -q '^spool:' "$E/agent.yaml"; then
  expect_error "agent: duplicate key" "$AGENT_BIN" "$E/agent-dup.yaml" "$E/agent-dup.yaml:" "duplicate key"
else
  printf 'agent:\n  id: a\n  id: b\n' >"$E/agent-dup.yaml"
  expect_error "agent: duplicate key" "$AGENT_BIN" "$E/agent-dup.yaml" "$E/agent-dup.yaml:3:" "duplicate key"
fi
# A `---` and a second document (an allow-list pasted at the end): refused at its line, not
# ignored (it used to pass as "configuration OK" and admit every agent the CA signed).
{ cat "$E/collector.yaml"; printf -- '---\nagents: {allowed: [only-this-agent]}\n'; } >"$E/collector-multidoc.yaml"
expect_error "collector: a second YAML document" "$COLLECTOR_BIN" "$E/collector-multidoc.yaml" \
  "$E/collector-multidoc.yaml:$(line_of "$E/collector-multidoc.yaml" '^---'):" \
  "a second YAML document"
{ cat "$E/agent.yaml"; printf -- '---\n'; } >"$E/agent-multidoc.yaml"
expect_error "agent: a trailing '---'" "$AGENT_BIN" "$E/agent-multidoc.yaml" \
  "$E/agent-multidoc.yaml:" "a second YAML document"
expect_error "agent: /dev/zero as config" "$AGENT_BIN" /dev/zero "/dev/zero: not a regular file"
expect_error "collector: a directory as config" "$COLLECTOR_BIN" "$E" "$E: is a directory"
{ cat "$E/agent.yaml"; printf 'flow_listeners:\n  - listen: localhost:0\n'; } >"$E/agent-name.yaml"
expect_error "agent: a host name as a listen address" "$AGENT_BIN" "$E/agent-name.yaml" \
  "$E/agent-name.yaml:" "expected an IP address to listen on, got 'localhost'"

# A dependency cycle (uptime.dependencies) and a PostgreSQL store without a DSN: refused at
# the key that closes the cycle / names the store, with FILE:LINE.
cp "$E/collector.yaml" "$E/collector-cycle.yaml"
cat >>"$E/collector-cycle.yaml" <<'YAML'
uptime:
  dependencies:
    - {device: core, parents: [edge]}
    - device: edge
      parents: [core]
YAML
expect_error "collector: dependency cycle" "$COLLECTOR_BIN" "$E/collector-cycle.yaml" \
  "$E/collector-cycle.yaml:$(line_of "$E/collector-cycle.yaml" 'parents: \[core\]'):" \
  "uptime.dependencies[1].parents" "dependency cycle: core -> edge -> core"
cp "$E/collector.yaml" "$E/collector-store.yaml"
printf 'store:\n  postgres:\n    collector_id: a\n' >>"$E/collector-store.yaml"
expect_error "collector: postgres store without a dsn" "$COLLECTOR_BIN" "$E/collector-store.yaml" \
  "$E/collector-store.yaml:" "store.postgres" "dsn"

# ---- the packaged examples ------------------------------------------------------------------
# The configs the Debian packages install are refused until edited, naming the line to delete
# (tests/package/debian.sh runs them edited, as installed).
for d in agent collector; do
  if [[ $d == agent ]]; then bin=$AGENT_BIN; else bin=$COLLECTOR_BIN; fi
  ex=$SRC_DIR/systemd/$d.example.yaml
  expect_error "shipped $d example" "$bin" "$ex" \
    "$ex:$(line_of "$ex" '^example_config:'):17: example_config: this is the packaged example configuration; edit $ex for this site, then delete the example_config line"
done

echo "PASS: --check-config: $CHECKS cases (agent and collector: good config -> 'configuration OK' exit 0 and nothing created; unknown key, wrong type, bad duration/endpoint, missing TLS file, YAML syntax error, a second YAML document, missing file, a dependency cycle, a store without a DSN, the packaged examples -> exit 2 with FILE:LINE and the key on stderr; relative paths resolved against the config's directory)"
