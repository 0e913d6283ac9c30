#!/usr/bin/env bash
# Makes a private CA and the certificates for a CityWatch collector and its agents, with
# OpenSSL. For the demo and the tests; production sites can use their own PKI instead (see
# docs/operations.md): any CA works, as long as each agent's certificate CN is its agent id.
#
#   scripts/make-certs.sh OUTDIR [AGENT_ID...]      (default agent: demo-agent)
#
# Writes OUTDIR/ca.pem, ca.key, collector.pem/.key and AGENT_ID.pem/.key. Keys are EC P-256,
# certificates are valid for 825 days. Existing files are kept: running it again only adds
# agents that are missing.
set -euo pipefail
out=${1:?usage: make-certs.sh OUTDIR [AGENT_ID...]}
shift
agents=("$@")
((${#agents[@]})) || agents=(demo-agent)
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
subjectAltName=DNS:localhost,DNS:citywatch-collector,IP:127.0.0.1,IP:::1"
for a in "${agents[@]}"; do
  [[ "$a" =~ ^[A-Za-z0-9._-]{1,47}$ ]] || { echo "make-certs: bad agent id '$a' (letters, digits, . _ -; at most 47)" >&2; exit 2; }
  [[ "$a" != collector && "$a" != ca ]] || { echo "make-certs: '$a' is reserved for the collector's and the CA's own files" >&2; exit 2; }
  issue "$a" "basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=clientAuth"
done
chmod 644 "$out"/*.pem
echo "make-certs: CA and certificates in $out (collector, ${agents[*]})"
