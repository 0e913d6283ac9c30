#!/usr/bin/python3
"""Compares the collector's SNMP interface metrics with prometheus-snmp-exporter's, value for value.

usage: snmp_exporter_compare.py COLLECTOR_METRICS DEVICE EXPORTER_METRICS

EXPORTER_METRICS is the body of the exporter's /snmp?module=if_mib answer for the same device
(the module snmp_exporter_compare.sh writes: numeric OIDs, every metric indexed by ifIndex,
ifName/ifAlias/ifDescr as lookup labels). Rows are joined on ifIndex; the sets of interfaces
must be equal, and so must ifName. The agent's rules are applied to the exporter's raw columns:
the 64-bit ifXTable column when the device has it, else the 32-bit one (absent: 0); packets
are unicast + multicast + broadcast; speed is ifHighSpeed x 10^6 bit/s when non-zero, else
ifSpeed. Prints the number of values compared; exits 1 on the first mismatch.
"""
import re
import sys

LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def unescape(v):
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse(path):
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line.strip())
        if m:
            labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2) or "")}
            yield m.group(1), labels, float(m.group(3))


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    device = sys.argv[2]
    ours = {}  # ifindex -> {metric: (value, labels)}
    for name, labels, value in parse(sys.argv[1]):
        if labels.get("device") == device and "ifindex" in labels:
            ours.setdefault(int(labels["ifindex"]), {})[name] = (value, labels)
    theirs = {}  # ifIndex -> {column: value}, plus the lookup labels under "labels"
    for name, labels, value in parse(sys.argv[3]):
        if "ifIndex" not in labels:
            continue
        row = theirs.setdefault(int(labels["ifIndex"]), {})
        row[name] = value
        row.setdefault("labels", labels)
    if not theirs:
        print("FAIL: the exporter returned no interface metric")
        return 1
    if set(ours) != set(theirs):
        print(f"FAIL: interfaces differ: only collector {sorted(set(ours) - set(theirs))}, "
              f"only exporter {sorted(set(theirs) - set(ours))}")
        return 1

    def col(row, hc, low):
        if hc in row:
            return int(row[hc])
        return int(row.get(low, 0))

    counters = {
        "citywatch_interface_receive_bytes_total": [("ifHCInOctets", "ifInOctets")],
        "citywatch_interface_transmit_bytes_total": [("ifHCOutOctets", "ifOutOctets")],
        "citywatch_interface_receive_packets_total": [
            ("ifHCInUcastPkts", "ifInUcastPkts"), ("ifHCInMulticastPkts", "ifInMulticastPkts"),
            ("ifHCInBroadcastPkts", "ifInBroadcastPkts")],
        "citywatch_interface_transmit_packets_total": [
            ("ifHCOutUcastPkts", "ifOutUcastPkts"), ("ifHCOutMulticastPkts", "ifOutMulticastPkts"),
            ("ifHCOutBroadcastPkts", "ifOutBroadcastPkts")],
        "citywatch_interface_receive_multicast_total": [("ifHCInMulticastPkts", "ifInMulticastPkts")],
        "citywatch_interface_transmit_multicast_total": [("ifHCOutMulticastPkts", "ifOutMulticastPkts")],
        "citywatch_interface_receive_broadcast_total": [("ifHCInBroadcastPkts", "ifInBroadcastPkts")],
        "citywatch_interface_transmit_broadcast_total": [("ifHCOutBroadcastPkts", "ifOutBroadcastPkts")],
        "citywatch_interface_receive_errs_total": [("ifInErrors", "ifInErrors")],
        "citywatch_interface_transmit_errs_total": [("ifOutErrors", "ifOutErrors")],
        "citywatch_interface_receive_drop_total": [("ifInDiscards", "ifInDiscards")],
        "citywatch_interface_transmit_drop_total": [("ifOutDiscards", "ifOutDiscards")],
    }
    values = 0
    hc_rows = 0
    for ifindex in sorted(theirs):
        row, got = theirs[ifindex], ours[ifindex]
        hc_rows += "ifHCInOctets" in row

        def expect(metric, want, have=None):
            have = got.get(metric, (None,))[0] if have is None else have
            if have is None:
                raise ValueError(f"{metric}{{ifindex={ifindex}}} missing from the collector")
            if have != want:
                raise ValueError(f"{metric}{{ifindex={ifindex}}}: collector {have!r}, exporter {want!r}")

        try:
            for metric, cols in counters.items():
                expect(metric, sum(col(row, hc, low) for hc, low in cols),
                       int(got[metric][0]) if metric in got else None)
                values += 1
            expect("citywatch_interface_oper_status", row.get("ifOperStatus"))
            expect("citywatch_interface_admin_status", row.get("ifAdminStatus"))
            high = int(row.get("ifHighSpeed", 0))
            speed_bps = high * 1000000 if high else int(row.get("ifSpeed", 0))
            expect("citywatch_interface_speed_bytes", speed_bps,
                   round(got["citywatch_interface_speed_bytes"][0] * 8))
            values += 3
            info = got["citywatch_interface_info"][1]
            lk = row["labels"]
            name = lk.get("ifName") or lk.get("ifDescr", "")
            # The collector's labels hold at most 47 (name) / 63 (alias, descr) bytes, by design.
            for label, want, cap in (("ifname", name, 47), ("ifalias", lk.get("ifAlias", ""), 63),
                                     ("ifdescr", lk.get("ifDescr", ""), 63)):
                expect(f"label {label}", want[:cap], info.get(label, ""))
                values += 1
            expect("label iftype", int(row.get("ifType", 0)), int(info.get("iftype", "0")))
            values += 1
        except ValueError as e:
            print(f"FAIL: {e}")
            return 1
    print(f"OK {device}: {len(theirs)} interfaces ({hc_rows} with HC counters), "
          f"{values} values equal to snmp_exporter's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
