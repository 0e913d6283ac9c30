#!/usr/bin/env bash
# Installs everything CityWatch needs to build and test, from Debian 12 packages only.
# Idempotent: packages already present are skipped, so running it twice costs one dpkg query.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libboost-dev libboost-system-dev libpcap-dev libsnmp-dev prometheus-cpp-dev libssl-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev libyaml-cpp-dev libsqlite3-dev
  sqlite3 nlohmann-json3-dev libcli11-dev zlib1g-dev libcurl4-openssl-dev
  libzstd-dev        # batch.compression: zstd batches on the wire
  liblz4-dev         # batch.compression: lz4 (the default), batches packed before the spool
  libpq-dev          # the collector's PostgreSQL store (libpq)
)
peer_pkgs=(
  tshark wireshark-common softflowd pmacct nfdump tcpreplay nmap hping3 python3-scapy
  snmpd snmp snmptrapd snmpsim prometheus prometheus-alertmanager prometheus-snmp-exporter
  openssl iproute2 curl dnsutils tcpdump procps time psmisc
  chromium fonts-dejavu-core
  jq openssh-server  # rules tests: read alert logs; a real sshd for password guessing
  apache2-utils      # htpasswd -nbB: bcrypt hashes for the metrics and Alertmanager web configs
  python3-yaml       # tests/corpus: case.yaml files
  # tests/support/pg_server.h, tests/integration/pg_lib.sh: a private PostgreSQL server per
  # test (initdb, postgres, psql from /usr/lib/postgresql/<version>/bin)
  postgresql
  # tests/integration/dashboards_victoria.sh: Prometheus remote_write to a private
  # VictoriaMetrics, the dashboards' queries compared on both (docs/scaling.md)
  victoria-metrics
  # tests/package/debian.sh: build the Debian packages, lint them, install them in a fresh root
  debhelper lintian mmdebstrap help2man systemd-container
)

want=("${build_pkgs[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  want+=("${peer_pkgs[@]}")
  # tests/dashboards: tsc + @grafana/schema type-check the dashboards with node and npm.
  # Debian's npm (with Debian's nodejs) unless a node that brings its own npm is installed
  # (NodeSource's nodejs package does, and conflicts with Debian's npm).
  command -v npm >/dev/null || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
# wireshark-common asks whether non-root users may capture; answer "no" without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these daemons on install; CityWatch's tests start their own instances on
# ports chosen at run time, so the system-wide ones are stopped to keep ports and CPU free.
for svc in snmpd snmptrapd prometheus prometheus-alertmanager prometheus-node-exporter \
           prometheus-snmp-exporter pmacctd nfacctd softflowd nfdump ssh postgresql \
           victoria-metrics; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
echo "install-deps: done"
