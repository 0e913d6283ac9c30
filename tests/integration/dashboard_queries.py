#!/usr/bin/env python3
"""Every PromQL query of every panel of the given Grafana dashboards, ready to send to a
query API: one line per panel target, tab-separated:

    dashboard-uid  panel-id  panel-title  ref-id  expression

Template variables are replaced as Grafana's "All" would ($site, $segment, ... -> .*),
$__rate_interval -> 1m, $__range -> 1h. A trailing "or vector(0)" (a zero instead of
"no data" in a healthy network) is removed: the real series must be there.

Shared by integration.dashboards_check (every query returns data from Prometheus) and
integration.dashboards_victoria (every query gives the same answer from Prometheus and from
VictoriaMetrics fed by its remote_write). Only the standard library is used.

With --variables, the dashboards' template variable queries instead (label_values(...), the
same substitutions), one line each: dashboard-uid  variable  query.

usage: dashboard_queries.py [--variables] DASHBOARD.json...
"""
import json
import re
import sys


def substitute(expr):
    e = re.sub(r"\$(site|segment|device|interface|agent|severity|category)\b", ".*", expr)
    e = e.replace("$__rate_interval", "1m").replace("$__range", "1h")
    return re.sub(r"\s+or vector\(0\)\s*$", "", e)


def main():
    args = sys.argv[1:]
    variables = args[:1] == ["--variables"]
    for path in args[1:] if variables else args:
        with open(path) as f:
            d = json.load(f)
        if variables:
            for v in d.get("templating", {}).get("list", []):
                if v.get("type") == "query":
                    q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                    print("\t".join([d["uid"], v["name"], substitute(q)]))
            continue
        for p in d["panels"]:
            for t in p["targets"]:
                e = substitute(t["expr"])
                if "\t" in e or "\n" in e:  # one query per line
                    sys.exit(f"{path}: panel {p['id']} {t['refId']}: a tab or newline in the query")
                print("\t".join([d["uid"], str(p["id"]), p["title"], t["refId"], e]))


if __name__ == "__main__":
    main()
