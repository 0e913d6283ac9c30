#!/usr/bin/env bash
# Every Grafana dashboard in dashboards/ type-checks against Grafana's own published dashboard
# schema (npm @grafana/schema, version pinned in tests/dashboards/package-lock.json), with tsc
# --strict; deliberately broken copies must be rejected. See tests/dashboards/check_schema.sh.
# Needs node and npm (Debian's npm package, installed by scripts/install-deps.sh) and the npm
# registry or a warm cache; a missing node/npm is a failure, not a skip.
source "$(dirname "$0")/lib.sh"
cw_init "$@"
for tool in node npm; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found: the dashboard schema check needs node and npm (scripts/install-deps.sh installs Debian's npm)"
done
bash "$SRC_DIR/tests/dashboards/check_schema.sh" "$SRC_DIR/dashboards" ||
  fail "dashboards in $SRC_DIR/dashboards do not pass Grafana's @grafana/schema (errors above)"
