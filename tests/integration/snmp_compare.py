#!/usr/bin/python3
"""Compares the collector's SNMP interface metrics with snmpbulkwalk output, value for value.

usage: snmp_compare.py METRICS_FILE DEVICE WALK_FILE [--bracket WALK_AFTER]
WALK files are `snmpbulkwalk -On -OQ -Oe -Ot -Oa` output of ifTable (1.3.6.1.2.1.2.2.1) and
ifXTable (1.3.6.1.2.1.31.1.1.1). With --bracket, counters must lie between the first walk
(taken before the agent polled) and the second (after); everything else must be equal.
Prints one line per interface checked; exits 1 on the first mismatch.
"""
import re
import sys


def parse_walk(path):
    table = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"^\.([0-9.]+) = (.*)$", line.rstrip("\n"))
        if not m:
            continue
        oid, value = m.group(1), m.group(2)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        parts = oid.split(".")
        if oid.startswith("1.3.6.1.2.1.2.2.1.") and len(parts) == 11:
            table.setdefault(int(parts[10]), {})[("if", int(parts[9]))] = value
        elif oid.startswith("1.3.6.1.2.1.31.1.1.1.") and len(parts) == 12:
            table.setdefault(int(parts[11]), {})[("ifx", int(parts[10]))] = value
    return table


def parse_metrics(path, device):
    out = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("#"):
            continue
        m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if labels.get("device") != device or "ifindex" not in labels:
            continue
        out.setdefault(int(labels["ifindex"]), {})[m.group(1)] = (float(m.group(3)), labels)
    return out


def num(row, key):
    v = row.get(key)
    if v is None:
        return None
    m = re.match(r"^-?\d+", v)
    return int(m.group(0)) if m else None


def main():
    metrics = parse_metrics(sys.argv[1], sys.argv[2])
    before = parse_walk(sys.argv[3])
    after = parse_walk(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--bracket" else None
    if not before:
        print("FAIL: the walk is empty")
        return 1
    checked = 0
    values = 0
    for ifindex, row in sorted(before.items()):
        if ifindex not in metrics:
            print(f"FAIL: ifIndex {ifindex} in the walk but not in the metrics")
            return 1
        got = metrics[ifindex]

        # The agent's rule: the 64-bit ifXTable column when the device has it, else the
        # 32-bit one (absent: 0); packets are unicast + multicast + broadcast.
        def pick(r, hc, low):
            v = num(r, hc)
            return v if v is not None else (num(r, low) or 0)

        # Without any multicast column (a 32-bit-only device), non-unicast packets come from
        # ifInNUcastPkts / ifOutNUcastPkts and count in the packet totals.
        def nucast(r, mcast_hc, mcast_low, col):
            if num(r, mcast_hc) is None and num(r, mcast_low) is None:
                return num(r, ("if", col)) or 0
            return 0

        expect_counters = {
            "citywatch_interface_receive_bytes_total": [(("ifx", 6), ("if", 10))],
            "citywatch_interface_transmit_bytes_total": [(("ifx", 10), ("if", 16))],
            "citywatch_interface_receive_packets_total": [(("ifx", 7), ("if", 11)), (("ifx", 8), ("ifx", 2)), (("ifx", 9), ("ifx", 3))],
            "citywatch_interface_transmit_packets_total": [(("ifx", 11), ("if", 17)), (("ifx", 12), ("ifx", 4)), (("ifx", 13), ("ifx", 5))],
            "citywatch_interface_receive_multicast_total": [(("ifx", 8), ("ifx", 2))],
            "citywatch_interface_receive_broadcast_total": [(("ifx", 9), ("ifx", 3))],
            "citywatch_interface_receive_errs_total": [(("if", 14), ("if", 14))],
            "citywatch_interface_transmit_errs_total": [(("if", 20), ("if", 20))],
            "citywatch_interface_receive_drop_total": [(("if", 13), ("if", 13))],
            "citywatch_interface_transmit_drop_total": [(("if", 19), ("if", 19))],
        }
        extra = {
            "citywatch_interface_receive_packets_total": lambda r: nucast(r, ("ifx", 8), ("ifx", 2), 12),
            "citywatch_interface_transmit_packets_total": lambda r: nucast(r, ("ifx", 12), ("ifx", 4), 18),
        }
        for name, cols in expect_counters.items():
            def total(r):
                return sum(pick(r, hc, low) for hc, low in cols) + extra.get(name, lambda _: 0)(r)
            want = total(row)
            have = got.get(name, (None,))[0]
            if have is None:
                print(f"FAIL: {name} ifIndex {ifindex} missing")
                return 1
            if after is None:
                if int(have) != want:
                    print(f"FAIL: {name}{{ifindex={ifindex}}} = {int(have)}, snmpbulkwalk says {want}")
                    return 1
            else:
                hi = total(after.get(ifindex, row))
                if not (want <= int(have) <= hi):
                    print(f"FAIL: {name}{{ifindex={ifindex}}} = {int(have)}, not within the walks' [{want}, {hi}]")
                    return 1
            values += len(cols)
        status = {"citywatch_interface_oper_status": ("if", 8), "citywatch_interface_admin_status": ("if", 7)}
        if after is None:
            for name, key in status.items():
                want = num(row, key)
                have = int(got[name][0])
                if want is not None and have != want:
                    print(f"FAIL: {name}{{ifindex={ifindex}}} = {have}, snmpbulkwalk says {want}")
                    return 1
                values += 1
        high = num(row, ("ifx", 15))
        speed_bps = high * 1000000 if high else num(row, ("if", 5)) or 0
        have = got["citywatch_interface_speed_bytes"][0]
        if abs(have * 8 - speed_bps) > 0.5:
            print(f"FAIL: speed_bytes{{ifindex={ifindex}}} = {have}, snmpbulkwalk says {speed_bps} bit/s")
            return 1
        labels = got["citywatch_interface_info"][1]
        name = row.get(("ifx", 1)) or row.get(("if", 2), "")
        for label, want in (("ifname", name), ("ifalias", row.get(("ifx", 18), "")),
                            ("ifdescr", row.get(("if", 2), "")), ("iftype", str(num(row, ("if", 3)) or 0))):
            # Labels hold at most 47 (name) / 63 (alias, descr) bytes, by design.
            cap = 47 if label == "ifname" else 63
            if labels.get(label, "") != want[:cap] and not want.startswith("0x"):
                print(f"FAIL: {label}{{ifindex={ifindex}}} = {labels.get(label)!r}, snmpbulkwalk says {want!r}")
                return 1
            values += 1
        values += 1
        checked += 1
    print(f"OK {sys.argv[2]}: {checked} interfaces, {values} values equal to snmpbulkwalk's{' (counters bracketed)' if after else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
