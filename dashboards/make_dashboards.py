#!/usr/bin/env python3
"""Writes the Grafana dashboards in this folder from one compact description.

Each panel is (title, kind, unit, [PromQL...]); queries use the template variables ($site,
$segment, $device, $interface, $agent, $severity, $category), $__rate_interval and $__range
as Grafana does, and the recording rules in rules/prometheus/. docs/dashboards.md describes
the six dashboards. tests/integration/dashboards_check.sh runs every query against a real
Prometheus scraping a real collector and agents; dashboards_schema.sh type-checks the JSON
against Grafana's @grafana/schema.
Run: python3 dashboards/make_dashboards.py   (rewrites the *.json files)
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}


def variables(extra):
    v = [{
        "name": "datasource", "type": "datasource", "query": "prometheus",
        "label": "Data source", "hide": 0,
    }]
    for name, query in extra:
        v.append({
            "name": name, "type": "query", "datasource": DS, "label": name.capitalize(),
            "query": {"query": query, "refId": name}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
            "current": {"text": "All", "value": "$__all"}, "hide": 0, "sort": 1,
        })
    return {"list": v}


def link(title, uid):
    """A link from a panel to the dashboard with the detail, keeping time range and variables."""
    return {"title": title, "type": "link", "url": f"/d/{uid}", "icon": "dashboard", "tooltip": title,
            "tags": [], "asDropdown": False, "targetBlank": False, "includeVars": True,
            "keepTime": True}


def panel(pid, title, kind, unit, exprs, x, y, w=12, h=8, legend=None, desc="", links=None,
          instant=False, thresholds=None, overrides=()):
    p = {
        "id": pid, "title": title, "type": kind, "datasource": DS, "description": desc,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": list(overrides)},
        "targets": [{"refId": chr(65 + i), "expr": e, "datasource": DS,
                     "legendFormat": (legend[i] if legend else ""),
                     **({"instant": True, "range": False, "format": "table"} if instant else {})}
                    for i, e in enumerate(exprs)],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    if thresholds:
        p["fieldConfig"]["defaults"]["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for v, c in thresholds]}
    if links:
        p["links"] = links
    return p


def value_column(**properties):
    """Field overrides for an instant table's "Value" column: {"displayName": ...} renames it,
    {"custom.hidden": True} hides it."""
    return [{"matcher": {"id": "byName", "options": "Value"},
             "properties": [{"id": k, "value": v} for k, v in properties.items()]}]


def dashboard(uid, title, tags, extra_vars, panels, links=()):
    return {
        "uid": uid, "title": title, "tags": ["citywatch"] + tags, "timezone": "browser",
        "schemaVersion": 38, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "templating": variables(extra_vars),
        "panels": panels, "editable": True,
        "links": [link(t, u) for t, u in links],
    }


SEG = 'segment=~"$segment"'
AG = 'agent=~"$agent"'
DEV = 'segment=~"$segment",device=~"$device"'
IF = 'site=~"$site",segment=~"$segment",device=~"$device",ifname=~"$interface"'
RI = "[$__rate_interval]"
# Counts that are zero in a healthy network answer 0, not "no data" (`or vector(0)`);
# tests/integration/dashboards_check.sh strips it and requires real series.
Z = " or vector(0)"
SITE_VARS = [("site", "label_values(citywatch_snmp_device_info, site)"),
             ("segment", 'label_values(citywatch_snmp_device_info{site=~"$site"}, segment)'),
             ("device", 'label_values(citywatch_snmp_device_info{segment=~"$segment"}, device)'),
             ("interface", 'label_values(citywatch_interface_info{device=~"$device"}, ifname)')]
GREEN_RED = [(None, "green"), (1, "red")]
# Root cause (docs/uptime.md, "Dependencies and root cause"): open incidents, one row per root
# (recording rule in rules/prometheus/citywatch-uptime.rules.yml, value = its dependents), and
# the devices and segments down as dependents, which are folded under their incident rather
# than listed as incidents of their own.
INCIDENTS = "sort_desc(root:citywatch_uptime_incident_dependents:open{sel})"
DEPENDENTS = ('max by (site, segment, kind, dependent) ('
              'label_replace(label_replace(citywatch_uptime_device_dependent{sel} == 1, '
              '"dependent", "$1", "device", "(.*)"), "kind", "device", "", "") '
              'or label_replace(label_replace(citywatch_uptime_agent_dependent{sel} == 1, '
              '"dependent", "$1", "agent", "(.*)"), "kind", "segment", "", ""))')
INCIDENTS_DESC = ("Outages in progress that are their own incident: devices and segments down "
                  "that are not dependents. Value: how many devices and segments it took down "
                  "(citywatch_uptime_incident_dependents; parents are devices). Availability, "
                  "outage counts and alerts count these only.")
INCIDENTS_VALUE = value_column(displayName="dependents (took down)")
DEPENDENTS_VALUE = value_column(**{"custom.hidden": True})  # always 1
DEPENDENTS_DESC = ("Devices and segments down because everything they are reached through "
                   "(uptime.dependencies) is down: counted in their incident's row, not as "
                   "incidents, and not alerted on. One still down uptime.dependency_grace after "
                   "its root recovered becomes an incident of its own.")

noc = dashboard(
    "citywatch-noc", "CityWatch / NOC overview", ["noc"], [],
    [
        panel(1, "Agents connected", "stat", "none", ["sum(citywatch_collector_agents_connected)"],
              0, 0, w=4, h=4, links=[link("Agents and collector", "citywatch-pipeline")],
              desc="Agents with a session to this collector now."),
        panel(2, "Segments dark (agent lost)", "stat", "none",
              ["count(citywatch_uptime_agent_up == 0)" + Z], 4, 0, w=4, h=4, thresholds=GREEN_RED,
              links=[link("Uptime and targets", "citywatch-uptime")],
              desc="Segments whose agent has no session: an outage of the segment."),
        panel(3, "Devices unreachable", "stat", "none",
              ["count(citywatch_snmp_device_up == 0)" + Z], 8, 0, w=4, h=4, thresholds=GREEN_RED,
              links=[link("Devices and interfaces", "citywatch-devices")],
              desc="Polled devices that did not answer their last SNMP poll."),
        panel(4, "Interfaces down (admin up, oper down)", "stat", "none",
              ["sum(interface:citywatch_interface_admin_up_oper_down:bool)" + Z], 12, 0, w=4, h=4,
              thresholds=GREEN_RED, links=[link("Devices and interfaces", "citywatch-devices")],
              desc="Interfaces configured up whose link is not up."),
        panel(5, "Links above 80 % of speed", "stat", "none",
              ["count(interface:citywatch_interface_utilisation:ratio_rate5m > 0.8)" + Z], 16, 0,
              w=4, h=4, thresholds=[(None, "green"), (1, "orange")],
              links=[link("Devices and interfaces", "citywatch-devices")],
              desc="Interfaces whose busier direction used over 80 % of ifSpeed over 5 minutes."),
        panel(6, "Interfaces with errors or discards", "stat", "none",
              ["count((interface:citywatch_interface_errors:rate5m "
               "+ interface:citywatch_interface_discards:rate5m) > 0)" + Z], 20, 0, w=4, h=4,
              thresholds=[(None, "green"), (1, "orange")],
              links=[link("Devices and interfaces", "citywatch-devices")]),
        panel(7, "Alerts firing by severity", "bargauge", "none",
              ["sum by (severity) (citywatch_alerts_firing)"], 0, 4, w=6, h=8, legend=["{{severity}}"],
              links=[link("Security", "citywatch-security")]),
        panel(8, "Alerts firing by category", "bargauge", "none",
              ["sum by (category) (citywatch_alerts_firing)"], 6, 4, w=6, h=8, legend=["{{category}}"],
              links=[link("Security", "citywatch-security")]),
        panel(9, "Availability by site, 24 h and 30 d", "table", "percentunit",
              ["site:citywatch_uptime_availability:ratio_1d", "site:citywatch_uptime_availability:ratio_30d"],
              12, 4, w=12, h=8, legend=["24 h", "30 d"], instant=True,
              links=[link("Uptime and targets", "citywatch-uptime")],
              desc="Devices and segments, maintenance excluded; each incident counted once, at "
                   "its root, dependents left out (recording rules in "
                   "rules/prometheus/citywatch-uptime.rules.yml)."),
        panel(13, "Availability by segment, 24 h and 30 d", "table", "percentunit",
              ['citywatch_uptime_segment_availability_ratio{window="1d"}',
               'citywatch_uptime_segment_availability_ratio{window="30d"}'],
              0, 28, w=12, h=8, legend=["24 h", "30 d"], instant=True,
              links=[link("Uptime and targets", "citywatch-uptime")],
              desc="Each segment's devices and agent, from the collector's outage store "
                   "(uptime.availability_windows)."),
        panel(14, "Outage time against the target, this period", "bargauge", "s",
              ["sum(citywatch_uptime_period_outage_seconds)",
               "sum(citywatch_uptime_target_outage_seconds)"],
              12, 28, w=12, h=8, legend=["so far", "target"],
              links=[link("Uptime and targets", "citywatch-uptime")],
              desc="City-wide outage time so far in uptime.target's period and the most it may "
                   "have (docs/uptime.md#targets)."),
        panel(15, "Open incidents (root cause)", "table", "none", [INCIDENTS.format(sel="")],
              0, 12, w=14, h=8, instant=True, desc=INCIDENTS_DESC, overrides=INCIDENTS_VALUE,
              links=[link("Uptime and targets", "citywatch-uptime")]),
        panel(16, "Dependents (folded under their incident)", "table", "none",
              [DEPENDENTS.format(sel="")], 14, 12, w=10, h=8, instant=True, desc=DEPENDENTS_DESC,
              overrides=DEPENDENTS_VALUE,
              links=[link("Uptime and targets", "citywatch-uptime")]),
        panel(10, "Devices unreachable now", "table", "none", ["citywatch_snmp_device_up == 0"],
              0, 20, w=8, h=8, instant=True, links=[link("Devices and interfaces", "citywatch-devices")],
              desc="Every device that missed its last SNMP poll, dependents included (the "
                   "per-device view)."),
        panel(11, "Interfaces down now", "table", "none",
              ["interface:citywatch_interface_admin_up_oper_down:bool == 1"], 8, 20, w=8, h=8,
              instant=True, links=[link("Devices and interfaces", "citywatch-devices")]),
        panel(12, "Busiest links (share of speed)", "table", "percentunit",
              ["topk(10, interface:citywatch_interface_utilisation:ratio_rate5m)"], 16, 20, w=8, h=8,
              instant=True, links=[link("Devices and interfaces", "citywatch-devices")]),
    ],
    links=[("Devices and interfaces", "citywatch-devices"), ("Traffic", "citywatch-flows"),
           ("Security", "citywatch-security"), ("Uptime and targets", "citywatch-uptime"),
           ("Agents and collector", "citywatch-pipeline")])

devices = dashboard(
    "citywatch-devices", "CityWatch / Devices and interfaces", ["noc", "snmp"], SITE_VARS,
    [
        panel(1, "SNMP reachability", "state-timeline", "none", [f"citywatch_snmp_device_up{{{DEV}}}"],
              0, 0, w=12, h=6, legend=["{{device}}"], desc="1: answered its last poll; 0: unreachable."),
        panel(2, "Poll latency", "timeseries", "s", [f"citywatch_snmp_poll_duration_seconds{{{DEV}}}"],
              12, 0, w=6, h=6, legend=["{{device}}"]),
        panel(3, "Reboots in 24 h", "stat", "none",
              [f"sum by (device) (increase(citywatch_snmp_device_reboots_total{{{DEV}}}[24h]))"],
              18, 0, w=6, h=6, legend=["{{device}}"], desc="sysUpTime went backwards."),
        panel(4, "Utilisation in (share of speed)", "timeseries", "percentunit",
              [f"interface:citywatch_interface_receive_utilisation:ratio_rate5m{{{IF}}}"],
              0, 6, legend=["{{device}} {{ifname}} {{ifalias}}"]),
        panel(5, "Utilisation out (share of speed)", "timeseries", "percentunit",
              [f"interface:citywatch_interface_transmit_utilisation:ratio_rate5m{{{IF}}}"],
              12, 6, legend=["{{device}} {{ifname}} {{ifalias}}"]),
        panel(6, "Bits per second", "timeseries", "bps",
              [f"rate(citywatch_interface_receive_bytes_total{{{IF}}}{RI}) * 8",
               f"rate(citywatch_interface_transmit_bytes_total{{{IF}}}{RI}) * 8"],
              0, 14, legend=["in {{device}} {{ifname}}", "out {{device}} {{ifname}}"]),
        panel(7, "Errors per second", "timeseries", "pps",
              [f"rate(citywatch_interface_receive_errs_total{{{IF}}}{RI})",
               f"rate(citywatch_interface_transmit_errs_total{{{IF}}}{RI})"],
              12, 14, legend=["in {{device}} {{ifname}}", "out {{device}} {{ifname}}"]),
        panel(8, "Discards per second", "timeseries", "pps",
              [f"rate(citywatch_interface_receive_drop_total{{{IF}}}{RI})",
               f"rate(citywatch_interface_transmit_drop_total{{{IF}}}{RI})"],
              0, 22, legend=["in {{device}} {{ifname}}", "out {{device}} {{ifname}}"]),
        panel(9, "Non-unicast packets per second", "timeseries", "pps",
              [f"rate(citywatch_interface_receive_multicast_total{{{IF}}}{RI}) "
               f"+ rate(citywatch_interface_receive_broadcast_total{{{IF}}}{RI})",
               f"rate(citywatch_interface_transmit_multicast_total{{{IF}}}{RI}) "
               f"+ rate(citywatch_interface_transmit_broadcast_total{{{IF}}}{RI})"],
              12, 22, legend=["in {{device}} {{ifname}}", "out {{device}} {{ifname}}"],
              desc="Multicast + broadcast. Devices without ifXTable report them only inside the "
                   "packet totals (ifIn/OutNUcastPkts)."),
        panel(10, "Interface status", "state-timeline", "none",
              [f"citywatch_interface_oper_status{{{IF}}}"], 0, 30, w=24, h=8,
              legend=["{{device}} {{ifname}} {{ifalias}}"],
              desc="ifOperStatus: 1 up, 2 down, 3 testing, 5 dormant, 7 lowerLayerDown."),
        panel(11, "Interface status changes in 1 h", "table", "none",
              [f"increase(citywatch_interface_oper_changes_total{{{IF}}}[1h])"], 0, 38, w=12, h=8,
              instant=True),
        panel(12, "Traps in 1 h", "table", "none",
              [f"sum by (device, trap) (increase(citywatch_snmp_traps_total{{{DEV}}}[1h]))"],
              12, 38, w=12, h=8, instant=True),
        panel(13, "Devices", "table", "none", [f"citywatch_snmp_device_info{{{DEV}}}"], 0, 46, w=24,
              h=8, instant=True, desc="System group of each polled device."),
    ],
    links=[("NOC overview", "citywatch-noc")])

flows = dashboard(
    "citywatch-flows", "CityWatch / Traffic", ["noc", "flows"],
    [("segment", "label_values(citywatch_flows_total, segment)"),
     ("agent", 'label_values(citywatch_flows_total{segment=~"$segment"}, agent)')],
    [
        panel(1, "Traffic by segment", "timeseries", "bps",
              [f"sum by (segment) (rate(citywatch_flow_bytes_total{{{SEG},{AG}}}{RI})) * 8"],
              0, 0, legend=["{{segment}}"],
              desc="Bits per second seen in flow records (IP bytes, sampling-scaled)."),
        panel(2, "Packets by segment", "timeseries", "pps",
              [f"sum by (segment) (rate(citywatch_flow_packets_total{{{SEG},{AG}}}{RI}))"],
              12, 0, legend=["{{segment}}"]),
        panel(3, "Traffic by IP protocol", "timeseries", "bps",
              [f"sum by (protocol) (rate(citywatch_flow_bytes_total{{{SEG},{AG}}}{RI})) * 8"],
              0, 8, legend=["{{protocol}}"]),
        panel(4, "New flows per second by protocol", "timeseries", "ops",
              [f"sum by (protocol) (rate(citywatch_flows_total{{{SEG},{AG}}}{RI}))"],
              12, 8, legend=["{{protocol}}"],
              desc="A jump in TCP flows with few packets each is typical of scans and SYN floods."),
        panel(5, "Bytes in the last 24 h by segment", "bargauge", "decbytes",
              [f"sum by (segment) (increase(citywatch_flow_bytes_total{{{SEG},{AG}}}[24h]))"],
              0, 16, legend=["{{segment}}"]),
        panel(6, "Mean packet size by segment", "timeseries", "decbytes",
              [f"sum by (segment) (rate(citywatch_flow_bytes_total{{{SEG},{AG}}}{RI})) "
               f"/ sum by (segment) (rate(citywatch_flow_packets_total{{{SEG},{AG}}}{RI}))"],
              12, 16, legend=["{{segment}}"]),
        panel(7, "Traffic by exporter", "timeseries", "bps",
              [f"sum by (segment, exporter) (rate(citywatch_flow_bytes_total{{{SEG},{AG}}}{RI})) * 8"],
              0, 24, legend=["{{segment}} {{exporter}}"],
              desc='"capture" is the agent\'s own packet meter; other values are NetFlow/IPFIX/sFlow exporters.'),
        panel(8, "Traffic by exporter interface", "timeseries", "bps",
              [f"sum by (exporter, if_index, direction) "
               f"(rate(citywatch_flow_interface_bytes_total{{{SEG},{AG}}}{RI})) * 8"],
              12, 24, legend=["{{exporter}} if {{if_index}} {{direction}}"]),
        panel(9, "Top sources, this minute", "table", "decbytes",
              [f'topk(10, citywatch_top_talker_bytes{{{SEG},window="current",direction="src"}})'],
              0, 32, w=6, h=10, instant=True,
              desc="Bytes per source address in the minute in progress (flow end time), per "
                   "segment: a bounded top 10 kept by the collector (docs/metrics.md)."),
        panel(10, "Top destinations, this minute", "table", "decbytes",
              [f'topk(10, citywatch_top_talker_bytes{{{SEG},window="current",direction="dst"}})'],
              6, 32, w=6, h=10, instant=True),
        panel(11, "Top sources, last minute", "table", "decbytes",
              [f'topk(10, citywatch_top_talker_bytes{{{SEG},window="previous",direction="src"}})'],
              12, 32, w=6, h=10, instant=True),
        panel(12, "Top destinations, last minute", "table", "decbytes",
              [f'topk(10, citywatch_top_talker_bytes{{{SEG},window="previous",direction="dst"}})'],
              18, 32, w=6, h=10, instant=True),
        panel(13, "Sampling rate by exporter", "table", "none",
              ["max by (exporter, domain, sampler, mode) (citywatch_agent_flow_sampling_rate)"],
              0, 42, w=12, h=8, instant=True,
              desc="1 in N, as each exporter's options data announced it (docs/flows.md)."),
        panel(14, "Traffic by segment, 5-minute average", "timeseries", "bps",
              [f"segment:citywatch_flow_bits:rate5m{{{SEG}}}"], 12, 42, legend=["{{segment}}"]),
    ],
    links=[("NOC overview", "citywatch-noc"), ("Security", "citywatch-security")])

security = dashboard(
    "citywatch-security", "CityWatch / Security", ["security"],
    [("segment", "label_values(citywatch_alerts_total, segment)"),
     ("severity", "label_values(citywatch_alerts_total, severity)"),
     ("category", "label_values(citywatch_alerts_total, category)")],
    [
        panel(1, "Alerts firing now", "stat", "none",
              ['sum by (severity) (citywatch_alerts_firing{severity=~"$severity",category=~"$category"})'],
              0, 0, w=8, h=5, legend=["{{severity}}"]),
        panel(2, "Alerts raised by rule", "timeseries", "none",
              ['sum by (rule) (increase(citywatch_alerts_total{state="firing",segment=~"$segment",'
               'severity=~"$severity",category=~"$category"}[$__rate_interval]))'], 8, 0, w=16, h=8, legend=["{{rule}}"]),
        panel(3, "Alerts resolved by rule", "timeseries", "none",
              ['sum by (rule) (increase(citywatch_alerts_total{state="resolved",segment=~"$segment",'
               'severity=~"$severity",category=~"$category"}[$__rate_interval]))'], 0, 8, w=12, h=8, legend=["{{rule}}"]),
        panel(4, "Alerts raised in 24 h by category and severity", "bargauge", "none",
              ['sum by (category, severity) (increase(citywatch_alerts_total{state="firing",'
               'segment=~"$segment",severity=~"$severity",category=~"$category"}[24h]))'],
              12, 8, w=12, h=8,
              legend=["{{category}} {{severity}}"]),
        panel(5, "Top alerting sources, this hour", "table", "none",
              ['topk(10, citywatch_alert_top_sources{window="current"})'], 0, 16, w=8, h=10,
              instant=True, desc="Alerts raised per source address (the src of the alert's key): "
                                 "a bounded top 10 kept by the collector."),
        panel(6, "Top talkers by destination, this minute", "table", "decbytes",
              ['topk(10, citywatch_top_talker_bytes{window="current",direction="dst"})'], 8, 16,
              w=8, h=10, instant=True),
        panel(7, "Rule engine: cost per record", "timeseries", "s",
              ["rate(citywatch_rules_engine_seconds_total[$__rate_interval]) "
               "/ rate(citywatch_rules_records_total[$__rate_interval])"], 16, 16, w=8, h=5),
        panel(8, "Rule state evictions per second", "timeseries", "ops",
              ["sum by (rule) (rate(citywatch_rule_state_evictions_total[$__rate_interval]))"],
              16, 21, w=8, h=5, legend=["{{rule}}"],
              desc="Keys dropped at a rule's max_keys: above zero, the rule misses some hosts."),
        panel(9, "Rule set reloads", "table", "none",
              ["sum by (result) (citywatch_rules_reloads_total)", "citywatch_rules_loaded"],
              0, 26, w=8, h=6, instant=True),
        panel(10, "Alert deliveries per second", "timeseries", "ops",
              ["sum by (sink) (rate(citywatch_alert_sink_sent_total[$__rate_interval]))",
               "sum by (sink) (rate(citywatch_alert_sink_failures_total[$__rate_interval]))"],
              8, 26, w=16, h=6, legend=["sent {{sink}}", "failed {{sink}}"]),
        panel(11, "Alerts raised by segment", "timeseries", "none",
              ['sum by (segment) (increase(citywatch_alerts_total{state="firing",segment=~"$segment",'
               'severity=~"$severity",category=~"$category"}[$__rate_interval]))'], 0, 32, w=12, h=8,
              legend=["{{segment}}"],
              desc="The segment where each alert's first signal was seen (its where labels)."),
        panel(12, "Alerts raised and resolved in 24 h by segment", "table", "none",
              ['sum by (segment, state) (increase(citywatch_alerts_total{segment=~"$segment",'
               'severity=~"$severity",category=~"$category"}[24h]))'], 12, 32, w=12, h=8,
              instant=True),
    ],
    links=[("NOC overview", "citywatch-noc"), ("Traffic", "citywatch-flows")])

UP = 'kind=~"device|segment",site=~"$site"'
uptime = dashboard(
    "citywatch-uptime", "CityWatch / Uptime and targets", ["noc", "uptime"],
    [("site", "label_values(citywatch_uptime_monitored_seconds_total, site)")],
    [
        panel(1, "Availability by site, chosen range", "bargauge", "percentunit",
              [f"1 - sum by (site) (increase(citywatch_uptime_outage_seconds_total{{{UP}}}[$__range])) "
               f"/ sum by (site) (increase(citywatch_uptime_monitored_seconds_total{{{UP}}}[$__range]))"],
              0, 0, w=12, h=8, legend=["{{site}}"],
              desc="Devices and segments, maintenance excluded."),
        panel(2, "Availability by site, 24 h and 30 d", "table", "percentunit",
              ['site:citywatch_uptime_availability:ratio_1d{site=~"$site"}',
               'site:citywatch_uptime_availability:ratio_30d{site=~"$site"}'],
              12, 0, w=12, h=8, instant=True, legend=["24 h", "30 d"]),
        panel(3, "Device availability, chosen range", "table", "percentunit",
              ['avg_over_time(citywatch_uptime_device_up{site=~"$site"}[$__range])'], 0, 8, w=12,
              h=8, instant=True,
              desc="Per device: time down as a dependent counts against the device too."),
        panel(4, "Segment availability, chosen range", "table", "percentunit",
              ['avg_over_time(citywatch_uptime_agent_up{site=~"$site"}[$__range])'], 12, 8, w=12,
              h=8, instant=True,
              desc="Per segment: time dark as a dependent counts against the segment too."),
        panel(5, "Outage minutes by site and kind, chosen range", "bargauge", "m",
              ['sum by (site, kind) (increase(citywatch_uptime_outage_seconds_total{site=~"$site"}'
               '[$__range])) / 60',
               'sum by (site, kind) (increase(citywatch_uptime_dependent_outage_seconds_total'
               '{site=~"$site"}[$__range])) / 60'],
              0, 16, w=8, h=8, legend=["{{site}} {{kind}}", "{{site}} {{kind}} dependents"],
              desc="Incidents (root outages), which availability counts, and apart from them "
                   "the time of the devices and segments they took down."),
        panel(6, "MTTR by site, chosen range", "stat", "s",
              [f"sum by (site) (increase(citywatch_uptime_outage_seconds_total{{{UP}}}[$__range])) "
               f"/ sum by (site) (increase(citywatch_uptime_outages_total{{{UP}}}[$__range]))"],
              8, 16, w=8, h=4, legend=["{{site}}"],
              desc="Mean time to repair: outage time per incident (root outages)."),
        panel(7, "MTBF by site, chosen range", "stat", "s",
              [f"(sum by (site) (increase(citywatch_uptime_monitored_seconds_total{{{UP}}}[$__range])) "
               f"- sum by (site) (increase(citywatch_uptime_outage_seconds_total{{{UP}}}[$__range]))) "
               f"/ sum by (site) (increase(citywatch_uptime_outages_total{{{UP}}}[$__range]))"],
              8, 20, w=8, h=4, legend=["{{site}}"],
              desc="Mean time between failures: monitored time not in outage, per incident."),
        panel(8, "SLO burn rate (99.9 %), 1 h and 6 h", "timeseries", "none",
              ['site:citywatch_uptime_error_ratio:rate1h{site=~"$site"} / 0.001',
               'site:citywatch_uptime_error_ratio:rate6h{site=~"$site"} / 0.001'],
              16, 16, w=8, h=8, legend=["1 h {{site}}", "6 h {{site}}"],
              desc="1 spends the 30-day error budget exactly; 14.4 over 1 h pages "
                   "(rules/prometheus/citywatch-uptime.rules.yml)."),
        panel(9, "Open incidents and dependents", "stat", "none",
              ['sum by (site, kind) (citywatch_uptime_open_outages{site=~"$site"})',
               'sum by (site, kind) (citywatch_uptime_open_dependent_outages{site=~"$site"})'],
              0, 24, w=24, h=4, legend=["{{site}} {{kind}}", "{{site}} {{kind}} dependents"],
              desc="Root outages in progress (incidents) and outages attached to them."),
        panel(14, "Open incidents (root cause)", "table", "none",
              [INCIDENTS.format(sel='{site=~"$site"}')], 0, 28, w=14, h=8, instant=True,
              desc=INCIDENTS_DESC, overrides=INCIDENTS_VALUE),
        panel(15, "Dependents (folded under their incident)", "table", "none",
              [DEPENDENTS.format(sel='{site=~"$site"}')], 14, 28, w=10, h=8, instant=True,
              desc=DEPENDENTS_DESC, overrides=DEPENDENTS_VALUE),
        panel(10, "Outage minutes against baseline and target, by site", "bargauge", "m",
              ['citywatch_uptime_period_outage_seconds{site=~"$site"} / 60',
               'citywatch_uptime_target_outage_seconds{site=~"$site"} / 60',
               'citywatch_uptime_baseline_outage_seconds{site=~"$site"} / 60'],
              0, 36, w=16, h=8, legend=["{{site}} so far", "{{site}} target", "{{site}} baseline"],
              desc="uptime.target: outage minutes so far in the period, the most it may have and "
                   "the baseline's, as citywatch report computes them (docs/uptime.md#targets)."),
        panel(11, "Target period", "table", "none", ["citywatch_uptime_target_info"],
              16, 36, w=8, h=4, instant=True),
        panel(12, "Share of the target used, city", "stat", "percentunit",
              ["sum(citywatch_uptime_period_outage_seconds) "
               "/ sum(citywatch_uptime_target_outage_seconds)"],
              16, 40, w=8, h=4, thresholds=[(None, "green"), (0.8, "orange"), (1, "red")],
              desc="Above 100 %: the period already has more outage time than the target allows. "
                   "Empty while the baseline has no outage (no target to measure against)."),
        panel(13, "Segment availability, 24 h and 30 d", "table", "percentunit",
              ['citywatch_uptime_segment_availability_ratio{site=~"$site",window="1d"}',
               'citywatch_uptime_segment_availability_ratio{site=~"$site",window="30d"}'],
              0, 44, w=24, h=8, instant=True, legend=["24 h", "30 d"]),
    ],
    links=[("NOC overview", "citywatch-noc")])

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
    ],
    links=[("NOC overview", "citywatch-noc")])

for d in (noc, devices, flows, security, uptime, health):
    with open(os.path.join(HERE, d["uid"] + ".json"), "w") as f:
        json.dump(d, f, indent=2)
        f.write("\n")
