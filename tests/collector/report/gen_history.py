#!/usr/bin/env python3
"""Writes a deterministic two-year outage history (2024 and 2025) into a CityWatch outage
store created by `citywatch init-store`, for the report tests.

usage: gen_history.py CITYWATCH_BIN DB [SEED]

4 sites x 2 segments, each segment with an agent (segment entity), 5 devices and 3
interfaces. Outages arrive at random (fixed seed), last from 1 to 240 minutes, a few are
flaps (< 60 s), a few are agent losses; 2025 has fewer outages than 2024 so the reduction
target is met in some months and missed in others. One device outage is left open.
Dependencies (docs/uptime.md, "Dependencies and root cause"): in each segment the first
device is the uplink of the others and of the segment's agent; four times a year it fails
and takes them down with it, their outages attached to its own (root_outage_id), starting
up to 30 s after it and ending up to 50 s after it recovers.
Only the standard library is used (sqlite3, random).
"""
import random
import sqlite3
import subprocess
import sys

NS = 1_000_000_000
START = 1704067200  # 2024-01-01T00:00:00Z
END = 1767225600    # 2026-01-01T00:00:00Z
OPEN_START = 1766880000  # 2025-12-28T00:00:00Z: an outage still open at the end


def main():
    citywatch, db = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    subprocess.run([citywatch, "init-store", "--db", db], check=True)
    rnd = random.Random(seed)
    con = sqlite3.connect(db)
    cur = con.cursor()
    sites = ["city-hall", "library", "police", "water-plant"]
    entities = []  # (id, kind)
    for s, site in enumerate(sites):
        for g in range(2):
            segment = f"{site}-{g + 1}"
            agent = f"agent-{site}-{g + 1}"
            rows = [("segment", f"segment/{agent}", "", agent, "", 0)]
            for d in range(5):
                addr = f"10.{s}.{g}.{d + 1}"
                name = f"{site}-sw{g + 1}{d + 1}"
                rows.append(("device", f"device/{segment}/{addr}", addr, name, "", 0))
                if d < 3:
                    rows.append(("interface", f"interface/{segment}/{addr}/{d + 1}", addr, name,
                                 f"ge-0/0/{d + 1}", d + 1))
            for kind, key, addr, name, ifname, ifindex in rows:
                cur.execute(
                    "INSERT INTO entities(kind, key, agent, site, segment, device, device_name, "
                    "interface, if_index, first_seen_ns, state, state_since_ns, last_up_ns, "
                    "last_down_ns) VALUES(?,?,?,?,?,?,?,?,?,?, 'up', ?, 0, 0)",
                    (kind, key, agent, site, segment, addr, name, ifname, ifindex, START * NS,
                     START * NS))
                entities.append((cur.lastrowid, kind))
    # Uplink incidents first (their own random stream, so the rest of the history is the
    # same with or without them); other outages of the same entities may not overlap them.
    dep = random.Random(seed + 1)
    busy = {}  # entity id -> [(start, end)] in seconds
    incidents = []  # (root entity, [dependent entities], start, duration)
    segments = []  # each segment's entities: its segment row comes first
    for eid, kind in entities:
        if kind == "segment":
            segments.append([])
        segments[-1].append((eid, kind))
    for members in segments:
        devices = [eid for eid, kind in members if kind == "device"]
        seg = [eid for eid, kind in members if kind == "segment"]
        root, deps = devices[0], devices[1:] + seg
        t = START
        while True:
            t += int(dep.expovariate(4 / (365 * 86400)))
            if t >= OPEN_START - 10 * 86400:
                break
            dur = dep.randint(10 * 60, 120 * 60)
            incidents.append((root, deps, t, dur))
            busy.setdefault(root, []).append((t, t + dur))
            for d in deps:
                busy.setdefault(d, []).append((t, t + dur + 60))
            t += dur
    causes = {"device": ["snmp_timeout", "snmp_timeout", "unreachable"],
              "interface": ["oper_down", "trap"], "segment": ["agent_lost"]}
    for eid, kind in entities:
        t = START
        rate = {"device": 9, "interface": 6, "segment": 3}[kind]  # outages per year (2024)
        while True:
            year_2025 = t >= 1735689600
            mean_gap = 365 * 86400 / (rate * (0.7 if year_2025 else 1.0))
            t += int(rnd.expovariate(1.0 / mean_gap))
            if t >= END - 86400:
                break
            flap = rnd.random() < 0.1
            dur = rnd.randint(5, 59) if flap else rnd.randint(60, 240 * 60)
            if any(t < b and t + dur > a for a, b in busy.get(eid, [])):
                t += dur
                continue
            cur.execute(
                "INSERT INTO outages(entity_id, cause, start_ns, end_ns, start_uncertainty_ns, "
                "end_uncertainty_ns, flap, end_reason) VALUES(?,?,?,?,?,?,?, 'recovered')",
                (eid, rnd.choice(causes[kind]), t * NS, (t + dur) * NS, 60 * NS, 60 * NS,
                 1 if flap else 0))
            t += dur
    for root, deps, t, dur in incidents:
        cur.execute(
            "INSERT INTO outages(entity_id, cause, start_ns, end_ns, start_uncertainty_ns, "
            "end_uncertainty_ns, flap, end_reason) VALUES(?, 'snmp_timeout', ?, ?, ?, ?, 0, "
            "'recovered')", (root, t * NS, (t + dur) * NS, 60 * NS, 60 * NS))
        root_id = cur.lastrowid
        for d in deps:
            kind = "segment" if any(e == d and k == "segment" for e, k in entities) else "device"
            s0 = t + dep.randint(0, 30)
            e0 = t + dur + dep.randint(0, 50)
            cur.execute(
                "INSERT INTO outages(entity_id, cause, start_ns, end_ns, start_uncertainty_ns, "
                "end_uncertainty_ns, flap, end_reason, root_outage_id) "
                "VALUES(?,?,?,?,?,?,0,?,?)",
                (d, "agent_lost" if kind == "segment" else "snmp_timeout", s0 * NS, e0 * NS,
                 10 * NS, 10 * NS, "agent_back" if kind == "segment" else "recovered", root_id))
    # One outage still open: the first device of the water plant.
    dev = [eid for eid, kind in entities if kind == "device"][-5]
    cur.execute(
        "INSERT INTO outages(entity_id, cause, start_ns, start_uncertainty_ns) VALUES(?,?,?,?)",
        (dev, "snmp_timeout", OPEN_START * NS, 60 * NS))
    cur.execute("UPDATE entities SET state='down', state_since_ns=? WHERE id=?",
                (OPEN_START * NS, dev))
    con.commit()
    n = cur.execute("SELECT COUNT(*) FROM outages").fetchone()[0]
    d = cur.execute("SELECT COUNT(*) FROM outages WHERE root_outage_id IS NOT NULL").fetchone()[0]
    print(f"gen_history: {len(entities)} entities, {n} outages, {len(incidents)} uplink "
          f"incidents with {d} dependent outages (seed {seed})")


if __name__ == "__main__":
    main()
