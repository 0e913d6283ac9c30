#!/usr/bin/env bash
# Makes a private CA and the certificates for a CityWatch collector and its agents, with
# OpenSSL. Installed by the citywatch-collector package as citywatch-make-certs; the demo
# and the tests use it too. Production sites can use their own PKI instead (see
# docs/operations.md): any CA works, as long as each agent's certificate CN is its agent id.
set -euo pipefail
usage() {
  cat <<'TXT'
Usage: citywatch-make-certs [--collector-name NAME]... OUTDIR [AGENT_ID...]

Writes OUTDIR/ca.pem and ca.key (a private CA), collector.pem and collector.key (the
collector's server certificate) and AGENT_ID.pem and AGENT_ID.key for each agent (default
agent: demo-agent). Keys are EC P-256; certificates are valid for 825 days. Existing files
are kept: running it again only adds agents that are missing.

Options:
  --collector-name NAME  a DNS name or IP address agents use to reach the collector (their
                         server_name); repeatable. localhost, citywatch-collector,
                         127.0.0.1 and ::1 are always included.
  --help                 print this help and exit
  --version              print the version and exit
TXT
}
names=()
while (($#)); do
  case $1 in
    --help) usage; exit 0 ;;
    --version) echo "citywatch-make-certs 0.1.0"; exit 0 ;;
    --collector-name)
      [[ $# -ge 2 && "$2" =~ ^[A-Za-z0-9.:-]+$ ]] || { echo "make-certs: --collector-name needs a DNS name or IP address" >&2; exit 2; }
      names+=("$2"); shift 2 ;;
    --collector-name=*)
      n=${1#*=}
      [[ "$n" =~ ^[A-Za-z0-9.:-]+$ ]] || { echo "make-certs: --collector-name needs a DNS name or IP address" >&2; exit 2; }
      names+=("$n"); shift ;;
    -*) echo "make-certs: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
out=${1:?usage: citywatch-make-certs [--collector-name NAME]... OUTDIR [AGENT_ID...]}
shift
agents=("$@")
((${#agents[@]})) || agents=(demo-agent)
san="DNS:localhost,DNS:citywatch-collector,IP:127.0.0.1,IP:::1"
for n in "${names[@]}"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+=",IP:$n"; else san+=",DNS:$n"; fi
done
mkdir -p "$out"
umask 077
days=825

if [[ ! -f "$out/ca.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/O=CityWatch/CN=CityWatch CA" -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null
fi

issue() {  # NAME EXTENSIONS
  local name=$1 ext=$2
  [[ -f "$out/$name.pem" ]] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=CityWatch/CN=$name" -keyout "$out/$name.key" -out "$out/$name.csr" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
    -CAcreateserial -days "$days" -extfile <(printf '%s\n' "$ext") \
    -out "$out/$name.pem" 2>/dev/null
  rm -f "$out/$name.csr"
}

issue collector "basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san"
for a in "${agents[@]}"; do
  [[ "$a" =~ ^[A-Za-z0-9._-]{1,47}$ ]] || { echo "make-certs: bad agent id '$a' (letters, digits, . _ -; at most 47)" >&2; exit 2; }
  [[ "$a" != collector && "$a" != ca ]] || { echo "make-certs: '$a' is reserved for the collector's and the CA's own files" >&2; exit 2; }
  issue "$a" "basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=clientAuth"
done
chmod 644 "$out"/*.pem
echo "make-certs: CA and certificates in $out (collector, ${agents[*]})"
