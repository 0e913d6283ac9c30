#!/usr/bin/env python3
"""Writes the Grafana dashboards in this folder from one compact description.

Each panel is (title, kind, unit, [PromQL...]); queries use the $segment/$agent template
variables and $__rate_interval as Grafana does. tests/integration/dashboards_check.sh runs
every query against a real Prometheus scraping a real collector and agent.
Run: python3 dashboards/make_dashboards.py   (rewrites the *.json files)
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}


def variables(extra):
    v = [{
        "name": "datasource", "type": "datasource", "query": "prometheus",
        "label": "Data source", "current": {}, "hide": 0,
    }]
    for name, query in extra:
        v.append({
            "name": name, "type": "query", "datasource": DS, "label": name.capitalize(),
            "query": {"query": query, "refId": name}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
            "current": {"text": "All", "value": "$__all"}, "hide": 0, "sort": 1,
        })
    return {"list": v}


def panel(pid, title, kind, unit, exprs, x, y, w=12, h=8, legend=None, desc=""):
    p = {
        "id": pid, "title": title, "type": kind, "datasource": DS, "description": desc,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": e, "datasource": DS,
                     "legendFormat": (legend[i] if legend else "")}
                    for i, e in enumerate(exprs)],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    return p


def dashboard(uid, title, tags, extra_vars, panels):
    return {
        "uid": uid, "title": title, "tags": ["citywatch"] + tags, "timezone": "browser",
        "schemaVersion": 38, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "templating": variables(extra_vars),
        "panels": panels, "editable": True,
    }


SEG = 'segment=~"$segment"'
AG = 'agent=~"$agent"'

flows = dashboard(
    "citywatch-flows", "CityWatch / Traffic by segment", ["noc", "flows"],
    [("segment", "label_values(citywatch_flows_total, segment)"),
     ("agent", 'label_values(citywatch_flows_total{segment=~"$segment"}, agent)')],
    [
        panel(1, "Traffic by segment", "timeseries", "bps",
              [f"sum by (segment) (rate(citywatch_flow_bytes_total{{{SEG},{AG}}}[$__rate_interval])) * 8"],
              0, 0, legend=["{{segment}}"],
              desc="Bits per second seen in flow records (IP bytes, sampling-scaled)."),
        panel(2, "Packets by segment", "timeseries", "pps",
              [f"sum by (segment) (rate(citywatch_flow_packets_total{{{SEG},{AG}}}[$__rate_interval]))"],
              12, 0, legend=["{{segment}}"]),
        panel(3, "Traffic by IP protocol", "timeseries", "bps",
              [f"sum by (protocol) (rate(citywatch_flow_bytes_total{{{SEG},{AG}}}[$__rate_interval])) * 8"],
              0, 8, legend=["{{protocol}}"]),
        panel(4, "New flows per second by protocol", "timeseries", "ops",
              [f"sum by (protocol) (rate(citywatch_flows_total{{{SEG},{AG}}}[$__rate_interval]))"],
              12, 8, legend=["{{protocol}}"],
              desc="A jump in TCP flows with few packets each is typical of scans and SYN floods."),
        panel(5, "Bytes in the last 24 h by segment", "bargauge", "decbytes",
              [f"sum by (segment) (increase(citywatch_flow_bytes_total{{{SEG},{AG}}}[24h]))"],
              0, 16, legend=["{{segment}}"]),
        panel(6, "Mean packet size by segment", "timeseries", "decbytes",
              [f"sum by (segment) (rate(citywatch_flow_bytes_total{{{SEG},{AG}}}[$__rate_interval])) "
               f"/ sum by (segment) (rate(citywatch_flow_packets_total{{{SEG},{AG}}}[$__rate_interval]))"],
              12, 16, legend=["{{segment}}"]),
    ])

health = dashboard(
    "citywatch-pipeline", "CityWatch / Agents and collector health", ["noc", "operations"],
    [("agent", "label_values(citywatch_agent_info, agent)")],
    [
        panel(1, "Agents connected", "stat", "none",
              ["sum(citywatch_collector_agents_connected)"], 0, 0, w=6, h=4),
        panel(2, "Seconds since each agent was last heard", "table", "s",
              ["time() - citywatch_collector_agent_last_seen_timestamp_seconds"], 6, 0, w=18, h=4,
              legend=["{{agent}}"]),
        panel(3, "Batches accepted per second", "timeseries", "ops",
              ["sum by (agent) (rate(citywatch_collector_batches_received_total[$__rate_interval]))"],
              0, 4, legend=["{{agent}}"]),
        panel(4, "Refused connections and frames", "timeseries", "ops",
              ["sum by (reason) (rate(citywatch_collector_connections_rejected_total[$__rate_interval]))",
               "sum by (reason) (rate(citywatch_collector_frames_rejected_total[$__rate_interval]))"],
              12, 4, legend=["connection: {{reason}}", "frame: {{reason}}"],
              desc="Anything above zero is an agent with a bad certificate, a wrong id, or a bug."),
        panel(5, "Capture drops per second", "timeseries", "pps",
              [f"sum by (agent, source, where) (rate(citywatch_agent_packets_dropped_total[$__rate_interval]) "
               f"* on (instance) group_left(agent) citywatch_agent_info{{{AG}}})"],
              0, 12, legend=["{{agent}} {{source}} {{where}}"],
              desc="Packets the kernel or the interface lost before the agent saw them."),
        panel(6, "Packets not decoded, by reason", "timeseries", "pps",
              [f'sum by (agent, result) (rate(citywatch_agent_packets_decoded_total{{result!="ok"}}[$__rate_interval]) '
               f"* on (instance) group_left(agent) citywatch_agent_info{{{AG}}})"],
              12, 12, legend=["{{agent}} {{result}}"]),
        panel(7, "Spool backlog (batches waiting for the collector)", "timeseries", "none",
              [f"citywatch_agent_spool_batches_pending * on (instance) group_left(agent) citywatch_agent_info{{{AG}}}"],
              0, 20, legend=["{{agent}}"],
              desc="Grows while the collector is unreachable; drains when it is back."),
        panel(8, "Data lost at the agent", "timeseries", "ops",
              [f"(rate(citywatch_agent_spool_batches_dropped_total[$__rate_interval]) + "
               f"rate(citywatch_agent_records_dropped_total[$__rate_interval])) "
               f"* on (instance) group_left(agent) citywatch_agent_info{{{AG}}}"],
              12, 20, legend=["{{agent}}"],
              desc="Spool over its size limit or a disk that refuses writes. Should be zero."),
        panel(9, "Agent link to the collector", "stat", "none",
              [f"citywatch_agent_collector_connected * on (instance) group_left(agent) citywatch_agent_info{{{AG}}}"],
              0, 28, w=12, h=4, legend=["{{agent}}"]),
        panel(10, "Active flows in the meter", "timeseries", "none",
              [f"citywatch_agent_active_flows * on (instance) group_left(agent) citywatch_agent_info{{{AG}}}"],
              12, 28, h=4, legend=["{{agent}}"]),
    ])

for d in (flows, health):
    with open(os.path.join(HERE, d["uid"] + ".json"), "w") as f:
        json.dump(d, f, indent=2)
        f.write("\n")
