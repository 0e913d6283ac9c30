#!/usr/bin/env bash
# Seeds for snmp_trap_fuzz: real datagrams from net-snmp's snmptrap/snmpinform, sent to a UDP
# socket on 127.0.0.1 that writes each to DIR. The v3 users match the fuzzer's.
#   fuzz/snmp_trap_seeds.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
command -v snmptrap >/dev/null || { echo "snmp_trap_seeds: snmptrap not found (package snmp)" >&2; exit 1; }
port_file=$(mktemp)
/usr/bin/python3 - "$dir" "$port_file" <<'PY' &
import socket, sys
d, pf = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(pf, "w").write(str(s.getsockname()[1]))
s.settimeout(5)
n = 0
try:
    while n < 16:
        data, _ = s.recvfrom(65535)
        open("%s/seed-%02d" % (d, n), "wb").write(data)
        n += 1
except socket.timeout:
    pass
PY
listener=$!
for _ in $(seq 50); do [[ -s $port_file ]] && break; sleep 0.1; done
port=$(cat "$port_file")
rm -f "$port_file"
t=127.0.0.1:$port
IF=1.3.6.1.2.1.2.2.1
E=0x8000000001020304aabbcc
snmptrap -v1 -c public "$t" 1.3.6.1.4.1.8072 127.0.0.1 2 0 '' $IF.1.3 i 3
snmptrap -v1 -c public "$t" 1.3.6.1.4.1.8072 127.0.0.1 6 17 '' 1.3.6.1.2.1.1.5.0 s name
snmptrap -v2c -c public "$t" '' 1.3.6.1.6.3.1.1.5.3 $IF.1.3 i 3 $IF.7.3 i 1 $IF.8.3 i 2
snmptrap -v3 -e $E -u cwpriv -l noAuthNoPriv "$t" '' 1.3.6.1.6.3.1.1.5.4 $IF.1.2 i 2
snmptrap -v3 -e $E -u cwauth -l authNoPriv -a SHA -A cw-trap-auth "$t" '' 1.3.6.1.6.3.1.1.5.1
snmptrap -v3 -e $E -u cwpriv -l authPriv -a SHA -A cw-trap-auth -x AES -X cw-trap-priv "$t" '' \
  1.3.6.1.6.3.1.1.5.4 $IF.1.2 i 2 $IF.7.2 i 1 $IF.8.2 i 1
snmpinform -v2c -c public -r 0 -t 0.2 "$t" '' 1.3.6.1.6.3.1.1.5.3 $IF.1.7 i 7 2>/dev/null || true
wait "$listener" || true
echo "snmp_trap_seeds: $(ls "$dir" | wc -l) datagrams in $dir"
