#!/usr/bin/env bash
# Turns the packaged example configs in ETC_DIR (an installed /etc/citywatch) into configs
# that run on this machine's loopback, as an operator would edit them: the example_config
# line removed, every listener on 127.0.0.1 with a port the kernel picks (the test sets the
# ports it needs), the agent capturing `lo`, the collectors at 127.0.0.1, and every peer the
# examples name (SNMP devices, Alertmanagers) moved to loopback addresses where nothing
# answers, so no packet leaves the machine. Everything else stays as shipped.
#   derive_configs.sh ETC_DIR
set -euo pipefail
etc=${1:?usage: derive_configs.sh ETC_DIR}
agent=$etc/agent.yaml collector=$etc/collector.yaml
grep -q '^example_config: true' "$agent" || { echo "derive_configs: $agent is not the example" >&2; exit 1; }
grep -q '^example_config: true' "$collector" || { echo "derive_configs: $collector is not the example" >&2; exit 1; }
sed -i -e '/^example_config:/d' \
  -e 's/collector-[ab]\.city\.example:7443/127.0.0.1:7443/' \
  -e 's/^\(  - interface: \)eth1 /\1lo   /' \
  -e 's/0\.0\.0\.0:[0-9][0-9]*/127.0.0.1:0/' \
  -e 's/address: 10\.10\.0\.2$/address: 127.0.0.2/' \
  -e 's/address: 10\.10\.0\.1$/address: 127.0.0.3/' "$agent"
sed -i -e '/^example_config:/d' \
  -e 's/0\.0\.0\.0:[0-9][0-9]*/127.0.0.1:0/' \
  -e 's#http://alertmanager-\([12]\)\.city\.example:9093#http://127.0.0.\1:9#' "$collector"
# Every address left outside comments is a loopback one.
left=$(sed -e 's/#.*//' "$agent" "$collector" | grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}' | grep -v '^127\.' || true)
if [[ -n "$left" ]]; then
  echo "derive_configs: non-loopback addresses left: $left" >&2
  exit 1
fi
