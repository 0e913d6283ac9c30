#!/usr/bin/env bash
# The Debian packages, built from this tree and installed into a fresh Debian 12 root made
# here (issue 14):
#   1. dpkg-buildpackage -b builds citywatch-agent, citywatch-collector, citywatch-rules and
#      citywatch-dashboards; lintian runs on them and any error (E:) fails the test;
#   2. mmdebstrap --variant=minbase makes a bookworm root from the host's own sources;
#   3. the packages, relabelled one version older, are installed there with
#      `apt-get install ./*.deb`: the citywatch user, the state directories and the units
#      exist, nothing is enabled, and each daemon refuses the shipped example config with a
#      message naming the file;
#   4. configs derived from the examples (certificates from citywatch-make-certs) pass
#      --check-config as the citywatch user, and `systemd-analyze verify` passes on the units;
#   5. the collector and the agent run there as the citywatch user; the agent streams
#      segment-a.pcap with -r and the collector's totals are exact (29,327 packets,
#      6,513,622 bytes);
#   6. the current packages are installed over the older ones: the operator's edits to
#      conffiles, the spool, the ledger and the outage store are kept, and the collector
#      continues from the ledger's totals;
#   7. the root boots under systemd-nspawn: the unit refuses the example config (the journal
#      says why), both units start (Type=notify: listening once `systemctl start` returns)
#      and run as citywatch with the shipped hardening, a live agent on loopback delivers,
#      `systemctl reload` works, and an agent frozen with SIGSTOP is killed by its watchdog
#      and restarted.
# usage: debian.sh AGENT_BIN COLLECTOR_BIN SOURCE_DIR   (the binaries are not used: the
# packages carry their own). Needs root (chroot, mounts, nspawn). Takes about 6 min on
# 2 cores, most of it the package build (about 2 min with a warm ccache).
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
cw_init "$@"
cw_need_segment_a
((EUID == 0)) || fail "needs root (mmdebstrap, chroot)"
for tool in dpkg-buildpackage dh lintian mmdebstrap help2man sqlite3 git; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found: scripts/install-deps.sh installs the packaging tools"
done
ROOT=$WORK/root
# Unmount what the test mounted inside the root before $WORK is removed.
cw_at_exit 'for m in proc dev/pts; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done'
t0=$(date +%s)
stamp() { cw_log "[$(($(date +%s) - t0)) s] $*"; }

# ---- 1. build ----------------------------------------------------------------------------
version=$(dpkg-parsechangelog -l "$SRC_DIR/debian/changelog" -S Version)
# A fixed build directory: dpkg-buildflags puts its path in every compile command
# (-ffile-prefix-map), so a path that changed per run would defeat ccache. ctest runs this
# test alone (RUN_SERIAL).
pkgbuild=${TMPDIR:-/tmp}/citywatch-package-build
rm -rf "$pkgbuild"
cw_at_exit 'rm -rf "$pkgbuild"'
src=$pkgbuild/citywatch-$version
mkdir -p "$src"
# The tree as it is (tracked and new files, not ignored ones such as build directories).
(cd "$SRC_DIR" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' | tar --null -T - -cf -) |
  tar -xf - -C "$src"
# A developer's repeated runs reuse compiled objects through ccache when it is installed
# (CMake reads the launcher from the environment); a first run compiles everything.
if command -v ccache >/dev/null; then
  # debhelper (compat 13) points HOME into the build tree, so ccache's directory is named.
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
fi
stamp "dpkg-buildpackage -b in $src"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -b -us -uc) \
  >"$WORK/dpkg-buildpackage.log" 2>&1 ||
  { tail -n 40 "$WORK/dpkg-buildpackage.log" >&2; fail "dpkg-buildpackage failed"; }
debs=()
for p in citywatch-agent citywatch-collector citywatch-rules citywatch-dashboards; do
  f=$(ls "$pkgbuild/${p}_${version}_"*.deb 2>/dev/null | head -n 1)
  [[ -n "$f" ]] || fail "dpkg-buildpackage made no $p package"
  debs+=("$f")
done
stamp "built: $(cd "$pkgbuild" && ls ./*.deb | tr '\n' ' ')"
for f in "${debs[@]}"; do
  cw_log "$(basename "$f"): $(dpkg-deb -f "$f" Installed-Size) KiB, Depends: $(dpkg-deb -f "$f" Depends)"
done
# ${shlibs:Depends} filled in: the agent depends on the libraries it links, found by dpkg.
[[ $(dpkg-deb -f "${debs[0]}" Depends) == *libpcap0.8* ]] ||
  fail "citywatch-agent does not depend on libpcap0.8: \${shlibs:Depends} is not filled in"

# ---- lintian -------------------------------------------------------------------------------
changes=$(ls "$pkgbuild/"*.changes | head -n 1)
lintian --info --display-level '>=pedantic' "$changes" \
  >"$WORK/lintian.txt" 2>&1 || true
sed 's/^/  lintian: /' "$WORK/lintian.txt" >&2
if grep -q '^E: ' "$WORK/lintian.txt"; then fail "lintian reports errors (above)"; fi
stamp "lintian: $(grep -c '^E: ' "$WORK/lintian.txt") errors, $(grep -c '^W: ' "$WORK/lintian.txt") warnings, $(grep -c '^[IP]: ' "$WORK/lintian.txt") info/pedantic"

# ---- 2. a fresh Debian 12 root ------------------------------------------------------------
sources=/etc/apt/sources.list.d/debian.sources
[[ -f "$sources" ]] || sources=/etc/apt/sources.list
mmdebstrap --variant=minbase --include=systemd,curl --skip=cleanup/apt/lists bookworm "$ROOT" "$sources" \
  >"$WORK/mmdebstrap.log" 2>&1 ||
  { tail -n 20 "$WORK/mmdebstrap.log" >&2; fail "mmdebstrap failed"; }
mount -t proc proc "$ROOT/proc" || fail "cannot mount /proc in the root"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" || fail "cannot copy resolv.conf into the root"
stamp "Debian 12 root in $ROOT"
in_root() { chroot "$ROOT" "$@"; }
as_citywatch() { chroot --userspec=citywatch:citywatch "$ROOT" "$@"; }

# ---- 3. the older version ------------------------------------------------------------------
# The same build relabelled ${version}~prev (dpkg sorts it before $version): what an upgrade
# runs is the maintainer scripts and dpkg's conffile handling, which this exercises; the
# ledger's schema migration from the previous schema is tested on a real schema-1 ledger
# in collector.LedgerTest.MigratesASchemaOneLedgerKeepingTotalsAndPositions.
mkdir -p "$ROOT/tmp/debs/prev" "$ROOT/tmp/debs/new" "$WORK/repack"
for f in "${debs[@]}"; do
  d=$WORK/repack/$(basename "$f" .deb)
  dpkg-deb -R "$f" "$d" || fail "dpkg-deb -R $f"
  sed -i "s/^Version: .*/Version: ${version}~prev/" "$d/DEBIAN/control"
  dpkg-deb -b "$d" "$ROOT/tmp/debs/prev/" >/dev/null || fail "dpkg-deb -b $d"
  cp "$f" "$ROOT/tmp/debs/new/" || fail "cp $f"
done
in_root sh -c 'cd /tmp/debs/prev && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./*.deb' \
  >"$WORK/apt-prev.log" 2>&1 || { tail -n 30 "$WORK/apt-prev.log" >&2; fail "apt-get install of the older packages failed"; }
stamp "installed ${version}~prev: $(in_root dpkg-query -W -f '${Package}=${Version} ' 'citywatch-*')"
in_root getent passwd citywatch >/dev/null || fail "no citywatch user after install"
for d in /var/lib/citywatch-agent /var/lib/citywatch-collector; do
  got=$(in_root stat -c '%U:%G %a' "$d") || fail "$d not created"
  [[ "$got" == "citywatch:citywatch 700" ]] || fail "$d is $got, expected citywatch:citywatch 700"
done
[[ "$(in_root stat -c '%U:%G %a' /etc/citywatch/pki)" == "root:citywatch 750" ]] ||
  fail "/etc/citywatch/pki is $(in_root stat -c '%U:%G %a' /etc/citywatch/pki)"
for u in citywatch-agent citywatch-collector; do
  [[ -f "$ROOT/lib/systemd/system/$u.service" ]] || fail "$u.service not in /lib/systemd/system"
  [[ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/$u.service" ]] ||
    fail "$u.service was enabled by the install"
done
for f in /usr/share/man/man1/citywatch-agent.1.gz /usr/share/man/man1/citywatch.1.gz \
  /usr/bin/citywatch-make-certs /etc/citywatch/rules/scans.yaml \
  /etc/grafana/provisioning/dashboards/citywatch.yaml \
  /usr/share/citywatch/dashboards/citywatch-noc.json; do
  [[ -e "$ROOT$f" ]] || fail "$f not installed"
done
# The shipped examples are refused, naming the file (the unit's ExecStartPre runs this).
for d in agent collector; do
  rc=0
  as_citywatch "/usr/bin/citywatch-$d" --config "/etc/citywatch/$d.yaml" --check-config \
    >"$WORK/example-$d.out" 2>&1 || rc=$?
  ((rc == 2)) || fail "citywatch-$d on the shipped example: exit $rc, expected 2: $(cat "$WORK/example-$d.out")"
  grep -q "/etc/citywatch/$d.yaml:.*example_config: this is the packaged example configuration" \
    "$WORK/example-$d.out" || fail "citywatch-$d's refusal does not name the file: $(cat "$WORK/example-$d.out")"
  cw_log "shipped example refused: $(head -n 1 "$WORK/example-$d.out")"
done

# ---- 4. configs derived from the examples --------------------------------------------------
in_root citywatch-make-certs --collector-name collector-a.city.example --collector-name collector-b.city.example /etc/citywatch/pki \
  city-hall-01 >/dev/null || fail "citywatch-make-certs failed in the root"
in_root sh -c 'chgrp citywatch /etc/citywatch/pki/*.key && chmod 0640 /etc/citywatch/pki/*.key'
bash "$SRC_DIR/tests/package/derive_configs.sh" "$ROOT/etc/citywatch" ||
  fail "derive_configs.sh failed"
for d in agent collector; do
  as_citywatch "/usr/bin/citywatch-$d" --config "/etc/citywatch/$d.yaml" --check-config \
    >"$WORK/check-$d.out" 2>&1 || fail "citywatch-$d --check-config on the derived config: $(cat "$WORK/check-$d.out")"
  cw_log "$(cat "$WORK/check-$d.out")"
done
# --man=no: a minbase root has no man-db to look up Documentation=man:...; the pages
# themselves are checked above.
in_root systemd-analyze verify --man=no /lib/systemd/system/citywatch-agent.service \
  /lib/systemd/system/citywatch-collector.service >"$WORK/verify.out" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$WORK/verify.out")"
[[ ! -s "$WORK/verify.out" ]] || fail "systemd-analyze verify complains: $(cat "$WORK/verify.out")"
stamp "derived configs pass --check-config; systemd-analyze verify passes on both units"

# ---- 5. run them -------------------------------------------------------------------------
cp "$SEGMENT_A" "$ROOT/tmp/segment-a.pcap" || fail "cannot copy segment-a.pcap into the root"
chmod 0644 "$ROOT/tmp/segment-a.pcap"
# start_collector: as the citywatch user, listening on loopback ports the kernel picks.
start_collector() {
  rm -f "$ROOT/tmp/collector.ready"
  cw_spawn "$WORK/collector-$1.log" chroot --userspec=citywatch:citywatch "$ROOT" \
    /usr/bin/citywatch-collector --config /etc/citywatch/collector.yaml \
    --ready-file /tmp/collector.ready
  COL_PID=$CW_LAST_PID
  cw_wait_until 300 "collector ready" test -s "$ROOT/tmp/collector.ready"
  INGEST_PORT=$(sed -n 's/.*"ingest_port":\([0-9]*\).*/\1/p' "$ROOT/tmp/collector.ready")
  METRICS_PORT=$(sed -n 's/.*"metrics_port":\([0-9]*\).*/\1/p' "$ROOT/tmp/collector.ready")
}
totals() {
  local m
  m=$(cw_scrape "$METRICS_PORT")
  echo "$(cw_sum citywatch_flow_packets_total <<<"$m") $(cw_sum citywatch_flow_bytes_total <<<"$m")"
}
start_collector before-upgrade
sed -i "s/^\(  - address: \)127\.0\.0\.1:[0-9]*/\1127.0.0.1:$INGEST_PORT/" "$ROOT/etc/citywatch/agent.yaml"
cw_spawn "$WORK/agent.log" chroot --userspec=citywatch:citywatch "$ROOT" \
  /usr/bin/citywatch-agent --config /etc/citywatch/agent.yaml -r /tmp/segment-a.pcap
cw_wait_exit "$CW_LAST_PID" 600
((CW_EXIT == 0)) || fail "the agent exited $CW_EXIT reading segment-a.pcap"
read -r packets bytes <<<"$(totals)"
[[ "$packets $bytes" == "29327 6513622" ]] ||
  fail "collector in the root counted $packets packets / $bytes bytes, expected 29327 / 6513622"
stamp "agent -r segment-a.pcap -> collector, both as citywatch in the root: $packets packets, $bytes bytes"
cw_stop "$COL_PID"
((CW_EXIT == 0)) || fail "collector exited $CW_EXIT on SIGTERM"

# ---- 6. upgrade --------------------------------------------------------------------------
echo "10.99.0.0/16   # added by the operator" >>"$ROOT/etc/citywatch/rules/lists/city-networks.txt"
declare -A before=()
state_files=(/var/lib/citywatch-collector/ingest.sqlite /var/lib/citywatch-collector/uptime.sqlite
  /etc/citywatch/agent.yaml /etc/citywatch/collector.yaml /etc/citywatch/rules/lists/city-networks.txt)
for f in "${state_files[@]}"; do
  [[ -f "$ROOT$f" ]] || fail "$f missing before the upgrade"
  before[$f]=$(sha256sum <"$ROOT$f")
done
spool_before=$(cd "$ROOT/var/lib/citywatch-agent" && find . -type f | sort | xargs -r sha256sum)
[[ -n "$spool_before" ]] || fail "the agent left nothing in /var/lib/citywatch-agent"
ledger_rows=$(sqlite3 "$ROOT/var/lib/citywatch-collector/ingest.sqlite" \
  "SELECT (SELECT count(*) FROM agents) || ' agent stream(s), ' || (SELECT sum(batches) FROM agent_totals) || ' batches'") ||
  fail "cannot read the ledger before the upgrade"
entities=$(sqlite3 "$ROOT/var/lib/citywatch-collector/uptime.sqlite" "SELECT count(*) FROM entities")
in_root sh -c 'cd /tmp/debs/new && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./*.deb' \
  >"$WORK/apt-new.log" 2>&1 || { tail -n 30 "$WORK/apt-new.log" >&2; fail "upgrade to $version failed"; }
grep -q "Unpacking citywatch-collector ($version) over (${version}~prev)" "$WORK/apt-new.log" ||
  fail "apt-get did not upgrade citywatch-collector: $(grep -i unpack "$WORK/apt-new.log")"
for f in "${state_files[@]}"; do
  [[ "$(sha256sum <"$ROOT$f")" == "${before[$f]}" ]] || fail "$f changed in the upgrade"
done
[[ "$(cd "$ROOT/var/lib/citywatch-agent" && find . -type f | sort | xargs -r sha256sum)" == "$spool_before" ]] ||
  fail "the agent's state directory changed in the upgrade"
start_collector after-upgrade
read -r packets bytes <<<"$(totals)"
[[ "$packets $bytes" == "29327 6513622" ]] ||
  fail "after the upgrade the collector counts $packets packets / $bytes bytes, expected 29327 / 6513622"
stamp "upgrade ${version}~prev -> $version kept ${#state_files[@]} files byte for byte, the agent state ($(wc -l <<<"$spool_before") files), the ledger ($ledger_rows), the outage store ($entities entities); the collector continues at $packets packets / $bytes bytes"
cw_stop "$COL_PID"

# ---- 7. under systemd --------------------------------------------------------------------
# The root booted with systemd-nspawn (sharing the host's network, so loopback is common):
# the units start as the packaged user with the shipped hardening, the unit refuses the
# example config, a live agent captures loopback and delivers, and `systemctl reload` works.
# nspawn runs without registering with a host systemd (--register=no --keep-unit), so a
# host whose PID 1 is not systemd can boot it too. CAP_NET_ADMIN is not in nspawn's default
# bounding set; the agent's unit asks for it (promiscuous mode).
umount "$ROOT/proc"
p_ingest=$(cw_free_port tcp) p_metrics=$(cw_free_port tcp) p_agent=$(cw_free_port tcp)
sed -i -e "s/^\(  ingest: \)127\.0\.0\.1:[0-9]*/\1127.0.0.1:$p_ingest/" \
  -e "s/^\(  metrics: \)127\.0\.0\.1:[0-9]*/\1127.0.0.1:$p_metrics/" "$ROOT/etc/citywatch/collector.yaml"
sed -i -e "s/^\(  - address: \)127\.0\.0\.1:[0-9]*/\1127.0.0.1:$p_ingest/" \
  -e "s/^\(  listen: \)127\.0\.0\.1:[0-9]*/\1127.0.0.1:$p_agent/" "$ROOT/etc/citywatch/agent.yaml"
grep -q "127.0.0.1:$p_agent" "$ROOT/etc/citywatch/agent.yaml" || fail "agent.yaml: no metrics listen line to set"
mkdir -p /run/systemd/nspawn
cw_spawn "$WORK/nspawn.log" systemd-nspawn --register=no --keep-unit --quiet \
  --capability=CAP_NET_ADMIN -D "$ROOT" -b
NSPAWN_PID=$CW_LAST_PID
leader=""
find_leader() {
  kill -0 "$NSPAWN_PID" 2>/dev/null || fail "systemd-nspawn exited: $(tail -n 5 "$WORK/nspawn.log")"
  leader=$(pgrep -P "$NSPAWN_PID" | head -n 1)
  [[ -n "$leader" && "$(cat "/proc/$leader/comm" 2>/dev/null)" == systemd ]]
}
cw_wait_until 300 "systemd as the container's init" find_leader
in_box() { nsenter -t "$leader" -m -u -i -p -- "$@"; }
booted() { [[ "$(in_box systemctl is-system-running 2>/dev/null)" =~ ^(running|degraded)$ ]]; }
cw_wait_until 600 "the container's boot" booted
stamp "booted the root under systemd-nspawn: $(in_box systemctl is-system-running)"

# The example config: the unit does not start, and the journal says why.
cp "$ROOT/etc/citywatch/collector.yaml" "$WORK/collector.yaml.derived"
{ echo "example_config: true"; cat "$WORK/collector.yaml.derived"; } >"$ROOT/etc/citywatch/collector.yaml"
in_box systemctl start citywatch-collector 2>/dev/null && fail "citywatch-collector started on an example config"
in_box journalctl -u citywatch-collector --no-pager >"$WORK/journal-refusal.txt" 2>&1
grep -q "example_config: this is the packaged example configuration" "$WORK/journal-refusal.txt" ||
  fail "the journal does not say why the unit refused: $(tail -n 5 "$WORK/journal-refusal.txt")"
cw_log "unit refused the example: $(grep -m1 example_config "$WORK/journal-refusal.txt")"
cp "$WORK/collector.yaml.derived" "$ROOT/etc/citywatch/collector.yaml"
in_box systemctl reset-failed citywatch-collector

in_box systemctl enable --now citywatch-collector >/dev/null 2>&1 ||
  fail "systemctl enable --now citywatch-collector: $(in_box journalctl -u citywatch-collector --no-pager | tail -n 5)"
in_box systemctl enable --now citywatch-agent >/dev/null 2>&1 ||
  fail "systemctl enable --now citywatch-agent: $(in_box journalctl -u citywatch-agent --no-pager | tail -n 5)"
# Type=notify: `systemctl start` returned after READY=1, so both listen now (no retry), and
# systemd holds the daemons' STATUS= lines.
curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$p_metrics/metrics" ||
  fail "citywatch-collector started, but its metrics endpoint does not answer"
curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$p_agent/metrics" ||
  fail "citywatch-agent started, but its metrics endpoint does not answer"
for u in citywatch-collector citywatch-agent; do
  status=$(in_box systemctl show -P StatusText "$u")
  [[ "$(in_box systemctl show -P Type "$u")" == notify && -n $status ]] ||
    fail "$u: not Type=notify with a status: type $(in_box systemctl show -P Type "$u"), status '$status'"
  cw_log "$u: started (Type=notify), listening at once; status: $status"
done
uid=$(in_box id -u citywatch)
for u in citywatch-collector citywatch-agent; do
  pid=$(in_box systemctl show -P MainPID "$u")
  [[ "$pid" =~ ^[1-9][0-9]*$ ]] || fail "$u has no main process: $(in_box systemctl status "$u" --no-pager | tail -n 5)"
  got=$(in_box awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  [[ "$got" == "$uid" ]] || fail "$u runs as uid $got, expected citywatch ($uid)"
  exposure=$(in_box systemd-analyze security "$u" --no-pager 2>/dev/null | tail -n 1)
  cw_log "$u: active as citywatch (uid $uid); systemd-analyze security: ${exposure#*exposure level for }"
done
# The live agent captures loopback (the example's capture, moved to lo) and delivers: more
# packets than the ledger held from the -r run.
before_live=$(cw_metric "$p_metrics" citywatch_flow_packets_total)
delivered() {
  curl -s -o /dev/null "http://127.0.0.1:$p_agent/metrics"
  local m
  m=$(curl -sf --max-time 5 "http://127.0.0.1:$p_metrics/metrics") || return 1
  (($(cw_sum citywatch_collector_agents_connected <<<"$m") == 1)) &&
    (($(cw_sum citywatch_flow_packets_total <<<"$m") > before_live))
}
cw_wait_until 900 "flows from the live agent under systemd" delivered
stamp "under systemd: collector and agent active as citywatch; live flows delivered ($(($(cw_metric "$p_metrics" citywatch_flow_packets_total) - before_live)) packets so far)"
in_box systemctl reload citywatch-agent ||
  fail "systemctl reload citywatch-agent failed: $(in_box journalctl -u citywatch-agent --no-pager | tail -n 8)"
reloaded() { (($(cw_metric "$p_agent" citywatch_agent_config_reloads_total 'result="ok"') == 1)); }
cw_wait_until 100 "the agent's reload" reloaded
in_box systemctl reload citywatch-collector ||
  fail "systemctl reload citywatch-collector failed: $(in_box journalctl -u citywatch-collector --no-pager | tail -n 8)"
[[ "$(in_box systemctl is-active citywatch-agent citywatch-collector | tr '\n' ' ')" == "active active " ]] ||
  fail "a unit is not active after reload"
stamp "systemctl reload: agent reloaded (reloads_total{result=ok} 1), both units active"

# The watchdog: an agent whose event loop stops (SIGSTOP here; a hung disk or a deadlock in
# life) stops pinging, and systemd kills it and starts it again. WatchdogSec is 30 s in the
# unit; 3 s in a drop-in here, to keep the test short.
mkdir -p "$ROOT/etc/systemd/system/citywatch-agent.service.d"
printf '[Service]\nWatchdogSec=3s\n' >"$ROOT/etc/systemd/system/citywatch-agent.service.d/watchdog.conf"
in_box systemctl daemon-reload
in_box systemctl restart citywatch-agent || fail "systemctl restart citywatch-agent with WatchdogSec=3s failed"
frozen=$(in_box systemctl show -P MainPID citywatch-agent)
restarts=$(in_box systemctl show -P NRestarts citywatch-agent)
[[ "$frozen" =~ ^[1-9][0-9]*$ ]] || fail "citywatch-agent has no main process after restart"
in_box kill -STOP "$frozen"
revived() {
  [[ "$(in_box systemctl show -P NRestarts citywatch-agent)" -gt "$restarts" &&
    "$(in_box systemctl is-active citywatch-agent)" == active &&
    "$(in_box systemctl show -P MainPID citywatch-agent)" != "$frozen" ]]
}
cw_wait_until 600 "systemd restarting the frozen agent" revived
# journald writes systemd's line asynchronously: waited for, bounded; on failure the whole
# unit journal says what did restart it.
# (The journal is read whole, then matched: `journalctl | grep -q` under pipefail fails when
# grep stops reading at its match and journalctl dies of SIGPIPE.)
watchdog_logged() { [[ $(in_box journalctl -u citywatch-agent --no-pager) == *"Watchdog timeout"* ]]; }
for _ in $(seq 100); do watchdog_logged && break; sleep 0.1; done
watchdog_logged ||
  fail "the agent was restarted, but the journal has no watchdog timeout: $(in_box journalctl -u citywatch-agent --no-pager | tail -n 40)"
curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$p_agent/metrics" ||
  fail "the restarted agent's metrics endpoint does not answer"
stamp "watchdog: the frozen agent (pid $frozen) was killed on its watchdog timeout and restarted ($(in_box systemctl show -P NRestarts citywatch-agent) restart(s)), listening again"
in_box systemctl poweroff || true
cw_wait_exit "$NSPAWN_PID" 600
echo "PASS: packages built, lintian without errors, installed, upgraded and run under systemd in a fresh Debian 12 root"
