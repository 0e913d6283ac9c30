#!/usr/bin/env python3
"""Evaluates every dashboard query (dashboard_queries.py's TSV) as an instant query at one time
T on Prometheus and on VictoriaMetrics (its Prometheus-compatible /api/v1/query), compares the
answers and explains every difference, or fails. Used by integration.dashboards_victoria.

usage: compare_engines.py --prometheus URL --victoria URL --time T [--min-data 0.8]
                          [--variables VARIABLES.tsv] QUERIES.tsv

With --variables (dashboard_queries.py --variables), every template variable's
label_values(selector, label) must list the same values on both, through the label-values and
the series APIs (Grafana uses either) over [T-1h, T].

What "the same answer" means (docs/scaling.md, "Prometheus HA pair and long-term storage"):

1. The same label sets, and values equal within 1e-9 relative, plus an absolute allowance for
   VictoriaMetrics' storage precision: it stores each sample as a decimal with 12 significant
   digits (15 above 1e6; lib/decimal conversionPrecision), so `time() - <timestamp gauge>`
   can differ by microseconds. The allowance is 10 x that precision of the largest input
   sample the query reads (instant selectors at T, range selectors' samples, time()).

2. Known, documented MetricsQL differences, each accepted only where it applies:
   - a NaN result (e.g. 0/0 in bytes/packets when no packet flowed) is returned by
     Prometheus and dropped by VictoriaMetrics ("MetricsQL removes NaN from results");
   - avg_over_time() (and MetricsQL's other "keep metric name" rollups) keeps __name__ on
     VictoriaMetrics and drops it on Prometheus: compared with __name__ removed;
   - topk(k, x) with ties at the k-th value may pick different tied series: the k values must
     be equal and every series that differs must be a real series of x with the tied value.

3. rate() and increase() are defined differently by the two engines, so their values differ
   by design and are not compared against a tolerance. Instead every rate/increase/
   avg_over_time term FUNC(SEL[w]) of every query is checked on its own:
   a. the raw samples SEL[w'] (w' = max(w, 5m) + 5m, all VictoriaMetrics reads) are the same
      on both: same series, same timestamps, values equal within the storage precision;
   b. each engine's answer for FUNC(SEL[w]) at T, series by series, equals that engine's own
      definition applied to those samples, re-implemented below from the sources of the
      versions Debian 12 ships:
        Prometheus 2.42 extrapolatedRate(): samples in [T-w, T]; (last - first), counter
          resets added back, extrapolated to the window's edges (by at most half a sample
          interval where the series starts or ends inside the window, and not below zero),
          divided by w for rate(); no result with fewer than two samples;
        VictoriaMetrics 1.79 rollupDerivFast()/rollupDelta(): samples in (T-w, T] plus the
          last sample before the window if it is within 5 scrape intervals (getMaxPrevInterval);
          rate = (last - that previous sample) / (time between them), no extrapolation;
          increase = last - previous sample; with no previous sample, increase counts from 0 when
          the first value is small next to the series' first step (a counter born inside the
          window: VictoriaMetrics counts it, Prometheus does not), rate starts at the first
          sample; removeCounterResets() first (rollup.go, getRollupConfigs);
        avg_over_time: the mean of the samples in [T-w, T] / (T-w, T].
   A query's own answer may then differ only where one of its terms differs between the
   engines (its label sets still must match unless a term's do not); where every term agrees,
   the query must agree as in 1. The difference of a query whose terms differ is printed, not
   recomputed: it follows from the terms through the query's own arithmetic, which the
   identical queries exercise (sum by, topk, group_left, label_replace, /, -, time()). The
   terms that differ are listed with both engines' values and how each computed them.

The test fails if fewer than --min-data of the queries return a series on Prometheus.
Only the standard library is used.
"""
import argparse
import json
import math
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

REL = 1e-9            # result values: relative tolerance (float arithmetic in two engines)
MODEL_REL = 1e-9      # an engine's term value against its re-implemented definition
VM_KEEP_NAME = {       # MetricsQL rollups that keep __name__ (app/vmselect/promql/rollup.go)
    "avg_over_time", "default_rollup", "first_over_time", "geomean_over_time",
    "hoeffding_bound_lower", "hoeffding_bound_upper", "holt_winters", "last_over_time",
    "max_over_time", "min_over_time", "mode_over_time", "predict_linear",
    "quantile_over_time", "quantiles_over_time", "rollup", "rollup_candlestick",
    "timestamp_with_name",
}
MODELLED = {"rate", "increase", "avg_over_time"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
VM_MAX_SILENCE_MS = 5 * 60 * 1000   # maxSilenceInterval
VM_DEFAULT_STEP_MS = 5 * 60 * 1000  # /api/v1/query's default step


class Fail(Exception):
    pass


# ---- HTTP ------------------------------------------------------------------------------------
def api(base, query, t, vm):
    params = {"query": query, "time": t}
    if vm:
        params["nocache"] = "1"  # no result cache, no -search.latencyOffset shift
    data = urllib.parse.urlencode(params).encode()
    try:
        with urllib.request.urlopen(base + "/api/v1/query", data=data, timeout=60) as r:
            doc = json.load(r)
    except urllib.error.HTTPError as e:
        raise Fail(f"{base}: HTTP {e.code} for {query}: {e.read()[:300]!r}")
    if doc.get("status") != "success":
        raise Fail(f"{base}: {doc.get('error', 'query failed')} for {query}")
    return doc["data"]


def api_get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            doc = json.load(r)
    except urllib.error.HTTPError as e:
        raise Fail(f"{base}{path}: HTTP {e.code}: {e.read()[:300]!r}")
    if doc.get("status") != "success":
        raise Fail(f"{base}{path}: {doc.get('error', 'request failed')}")
    return doc["data"]


def key(metric):
    return tuple(sorted(metric.items()))


def vector(data):
    """{labels: value} of an instant-vector (or scalar) answer."""
    if data["resultType"] == "scalar":
        return {(): float(data["result"][1])}
    if data["resultType"] != "vector":
        raise Fail(f"unexpected result type {data['resultType']}")
    out = {}
    for s in data["result"]:
        k = key(s["metric"])
        if k in out:
            raise Fail(f"duplicate series {dict(k)}")
        out[k] = float(s["value"][1])
    return out


def matrix(data):
    """{labels: [(t_ms, value), ...]} of a range-vector answer, stale markers (NaN) left out."""
    if data["resultType"] != "matrix":
        raise Fail(f"unexpected result type {data['resultType']} for a range selector")
    out = {}
    for s in data["result"]:
        pts = []
        for t, v in s["values"]:
            if v is None:
                continue
            v = float(v)
            if math.isnan(v):
                continue
            pts.append((int(round(float(t) * 1000)), v))
        out.setdefault(key(s["metric"]), []).extend(pts)
    return {k: sorted(v) for k, v in out.items() if v}  # a series of stale markers only: none


# ---- PromQL, just enough to find selectors and range terms ----------------------------------
def tokens(expr):
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            out.append(("str", expr[i:j + 1], i, j + 1))
            i = j + 1
        elif c == "{":
            j, q = i + 1, None
            while j < n and (q or expr[j] != "}"):
                if q:
                    if expr[j] == "\\":
                        j += 1
                    elif expr[j] == q:
                        q = None
                elif expr[j] in "\"'`":
                    q = expr[j]
                j += 1
            out.append(("matchers", expr[i:j + 1], i, j + 1))
            i = j + 1
        elif c == "[":
            j = expr.index("]", i)
            out.append(("range", expr[i + 1:j].strip(), i, j + 1))
            i = j + 1
        elif c.isalpha() or c in "_:":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "_:"):
                j += 1
            out.append(("id", expr[i:j], i, j))
            i = j
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = re.match(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", expr[i:])
            out.append(("num", m.group(0), i, i + len(m.group(0))))
            i += len(m.group(0))
        else:
            two = expr[i:i + 2]
            if two in ("==", "!=", ">=", "<=", "=~", "!~"):
                out.append(("op", two, i, i + 2))
                i += 2
            else:
                out.append(("op", c, i, i + 1))
                i += 1
    return out


def seconds(d):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d)
    if not parts or "".join(a + b for a, b in parts) != d:
        raise Fail(f"cannot read the duration [{d}]")
    return sum(int(a) * units[b] for a, b in parts)


def analyse(expr):
    """(instant selectors, range terms [(func, selector, window_s, text)], functions used)."""
    toks = tokens(expr)
    selectors, terms, funcs = [], [], set()
    i = 0
    while i < len(toks):
        kind, text, start, end = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if kind == "id" and nxt and nxt[0] == "op" and nxt[1] == "(":
            if text in LABEL_LISTS:  # by (a, b): labels, not selectors
                while toks[i][1] != ")":
                    i += 1
            else:
                funcs.add(text)
            i += 1
            continue
        if kind == "id" and text in KEYWORDS:
            i += 1
            continue
        if kind == "id" and text in AGGREGATIONS and nxt and nxt[1] in ("by", "without"):
            funcs.add(text)  # sum by (a) (...)
            i += 1
            continue
        if kind in ("id", "matchers"):
            j = i + 1
            if kind == "id" and nxt and nxt[0] == "matchers":
                j = i + 2
            sel = expr[start:toks[j - 1][3]]
            if j < len(toks) and toks[j][0] == "range":
                w = seconds(toks[j][1])
                before = toks[i - 2:i]
                after = toks[j + 1] if j + 1 < len(toks) else None
                if (len(before) == 2 and before[0][0] == "id" and before[1][1] == "("
                        and after and after[1] == ")"):
                    terms.append((before[0][1], sel, w, expr[before[0][2]:after[3]]))
                else:
                    raise Fail(f"a range selector {sel}[{toks[j][1]}] outside FUNC(...): extend compare_engines.py")
                j += 1
            else:
                selectors.append(sel)
            i = j
            continue
        i += 1
    for f, _, _, _ in terms:
        if f not in MODELLED:
            raise Fail(f"{f}() over a range is not modelled: extend compare_engines.py")
    return selectors, terms, funcs


# ---- the two engines' definitions ------------------------------------------------------------
def prom_term(func, pts, t_ms, w_s):
    """Prometheus 2.42: promql/functions.go extrapolatedRate / funcAvgOverTime over [T-w, T].
    Returns (value or None, how it was computed)."""
    start = t_ms - int(w_s * 1000)
    s = [(t, v) for t, v in pts if start <= t <= t_ms]
    if func == "avg_over_time":
        return (sum(v for _, v in s) / len(s), "mean") if s else (None, "no sample")
    if len(s) < 2:
        return None, "fewer than 2 samples"
    result = s[-1][1] - s[0][1]
    prev = s[0][1]
    for _, v in s[1:]:
        if v < prev:
            result += prev
        prev = v
    to_start = (s[0][0] - start) / 1000
    to_end = (t_ms - s[-1][0]) / 1000
    sampled = (s[-1][0] - s[0][0]) / 1000
    avg = sampled / (len(s) - 1)
    how = "extrapolated to both edges"
    if result > 0 and s[0][1] >= 0:
        to_zero = sampled * (s[0][1] / result)
        if to_zero < to_start:
            to_start = to_zero
            how = "extrapolated to the counter's zero"
    threshold = avg * 1.1
    interval = sampled
    if to_start < threshold:
        interval += to_start
    else:
        interval += avg / 2
        how = "series starts inside the window (half an interval added)"
    interval += to_end if to_end < threshold else avg / 2
    result = result * (interval / sampled)
    if result == 0:
        how = "no change"
    return (result / w_s if func == "rate" else result), how


def vm_quantile(phi, values):
    v = sorted(values)
    if not v:
        return math.nan
    rank = phi * (len(v) - 1)
    lo = max(0, math.floor(rank))
    hi = min(len(v) - 1, lo + 1)
    w = rank - math.floor(rank)
    return v[lo] * (1 - w) + v[hi] * w


def vm_term(func, pts, t_ms, w_s):
    """VictoriaMetrics 1.79: app/vmselect/promql rollupConfig.doInternal + rollupDerivFast /
    rollupDelta / rollupAvg over (T-w, T], on the samples it fetches from
    T - maxSilenceInterval - max(window, step)."""
    w_ms = int(w_s * 1000)
    lo = t_ms - VM_MAX_SILENCE_MS - max(w_ms, VM_DEFAULT_STEP_MS)
    s = [(t, v) for t, v in pts if lo <= t <= t_ms]
    ts = [t for t, _ in s]
    vals = [v for _, v in s]
    if func in ("rate", "increase"):  # removeCounterResets
        corr, prev = 0.0, vals[0] if vals else 0.0
        for i, v in enumerate(vals):
            d = v - prev
            if d < 0:
                corr += (prev - v) if (-d * 8) < prev else prev
            prev = v
            vals[i] = v + corr
    if len(ts) < 2:  # getScrapeInterval
        scrape = VM_DEFAULT_STEP_MS
    else:
        iv = [float(b - a) for a, b in zip(ts, ts[1:])][:20]
        scrape = int(vm_quantile(0.6, iv))
        if scrape <= 0:
            scrape = VM_DEFAULT_STEP_MS
    if scrape <= 2000:  # getMaxPrevInterval
        max_prev = scrape + 4 * scrape
    elif scrape <= 4000:
        max_prev = scrape + 2 * scrape
    elif scrape <= 8000:
        max_prev = scrape + scrape
    elif scrape <= 16000:
        max_prev = scrape + scrape // 2
    elif scrape <= 32000:
        max_prev = scrape + scrape // 4
    else:
        max_prev = scrape + scrape // 8
    window = w_ms
    if func == "rate" and window < max_prev:  # rollupFuncsCanAdjustWindow
        window = max_prev
    t_start = t_ms - window
    i = next((k for k, t in enumerate(ts) if t > t_start), len(ts))
    j = next((k for k, t in enumerate(ts) if t > t_ms), len(ts))
    prev_v, prev_t = math.nan, t_start - max_prev
    if i < len(ts) and i > 0 and ts[i - 1] > prev_t:
        prev_v, prev_t = vals[i - 1], ts[i - 1]
    values, times = vals[i:j], ts[i:j]
    real_prev = vals[i - 1] if i > 0 else math.nan
    real_next = vals[j] if j < len(vals) else math.nan
    if func == "avg_over_time":
        return (sum(values) / len(values), "mean") if values else (None, "no sample")
    if func == "rate":
        how = "from the sample before the window"
        if math.isnan(prev_v):
            if len(values) < 2:
                return None, "no sample before, fewer than 2 inside"
            prev_v, prev_t = values[0], times[0]
            how = "no sample before the window: from its first sample"
        elif not values:
            return 0.0, "no sample inside"
        v = (values[-1] - prev_v) / ((times[-1] - prev_t) / 1e3)
        return v, ("no change" if v == 0 else how)
    # increase: rollupDelta
    how = "from the sample before the window"
    if math.isnan(prev_v):
        if not values:
            return None, "no sample"
        if not math.isnan(real_prev):
            return values[-1] - real_prev, "from the last sample before a gap"
        d = 0.0
        if len(values) > 1:
            d = values[1] - values[0]
        elif not math.isnan(real_next):
            d = real_next - values[0]
        if abs(values[0]) < 10 * (abs(d) + 1):
            prev_v = 0.0
            how = "series born inside the window: counted from 0"
        else:
            prev_v = values[0]
            values = values[1:]
            how = "series born inside the window: from its first sample"
    if not values:
        return 0.0, "no sample inside"
    v = values[-1] - prev_v
    return v, ("no change" if v == 0 and how.startswith("from the sample") else how)


# ---- comparison --------------------------------------------------------------------------------
def close(a, b, rel, abs_tol=0.0):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b)) + abs_tol


def diff(a, b):
    """Relative difference; inf where one side is NaN or infinite and the other is not."""
    if math.isnan(a) and math.isnan(b) or a == b:
        return 0.0
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def precision(x):
    """Absolute precision VictoriaMetrics stores x with (lib/decimal, conversionPrecision)."""
    x = abs(x)
    if x == 0 or math.isinf(x) or math.isnan(x):
        return 0.0
    return x * (1e-15 if x > 1e6 else 1e-12)


def toks_w(w):
    return f"{w // 3600}h" if w % 3600 == 0 else f"{w // 60}m" if w % 60 == 0 else f"{w}s"


def short(expr, n=70):
    return expr if len(expr) <= n else expr[:n - 3] + "..."


class Checker:
    def __init__(self, prom, vm, t):
        self.prom, self.vm, self.t = prom, vm, t
        self.t_ms = int(round(float(t) * 1000))
        self.terms = {}      # text -> result dict
        self.inputs = {}     # instant selector -> largest |value| at T
        self.why = {}        # "func[w] Prometheus: how; VictoriaMetrics: how" -> series

    def q(self, base, expr):
        return api(base, expr, self.t, base == self.vm)

    def selector_max(self, sel):
        if sel not in self.inputs:
            vals = vector(self.q(self.prom, sel)).values()
            self.inputs[sel] = max((precision(v) for v in vals), default=0.0)
        return self.inputs[sel]

    def term(self, func, sel, w, text):
        """Checks one FUNC(SEL[w]) term; returns {"differs": bool, "detail": str, "prec": x}."""
        if text in self.terms:
            return self.terms[text]
        wide = max(w, 300) + 300 + 1
        rp = matrix(self.q(self.prom, f"{sel}[{wide}s]"))
        rv = matrix(self.q(self.vm, f"{sel}[{wide}s]"))
        # VictoriaMetrics returns (T-w', T], Prometheus [T-w', T]: the same once the sample at
        # exactly T-w' (if any) is left out.
        lo = self.t_ms - wide * 1000
        rp = {k: [p for p in v if p[0] > lo] for k, v in rp.items()}
        rp = {k: v for k, v in rp.items() if v}
        if set(rp) != set(rv):
            only_p = [dict(k) for k in set(rp) - set(rv)][:3]
            only_v = [dict(k) for k in set(rv) - set(rp)][:3]
            raise Fail(f"raw samples of {sel}: different series (only on Prometheus {only_p}, "
                       f"only on VictoriaMetrics {only_v})")
        prec = 0.0
        for k in rp:
            a, b = rp[k], rv[k]
            if [t for t, _ in a] != [t for t, _ in b]:
                raise Fail(f"raw samples of {sel} {dict(k)}: different timestamps "
                           f"({len(a)} on Prometheus, {len(b)} on VictoriaMetrics)")
            for (t, x), (_, y) in zip(a, b):
                if not close(x, y, 0, 2 * precision(x)):
                    raise Fail(f"raw sample of {sel} {dict(k)} at {t} ms: {x!r} on Prometheus, "
                               f"{y!r} on VictoriaMetrics")
                prec = max(prec, precision(x))
        # Each engine's answer against its own definition, series by series.
        tp = vector(self.q(self.prom, text))
        tv = vector(self.q(self.vm, text))
        if func in VM_KEEP_NAME:
            tv = {tuple(x for x in k if x[0] != "__name__"): v for k, v in tv.items()}
        hows = {"Prometheus": {}, "VictoriaMetrics": {}}
        for engine, got, raw, model in (("Prometheus", tp, rp, prom_term), ("VictoriaMetrics", tv, rv, vm_term)):
            want, mag = {}, {}
            for k, pts in raw.items():
                v, how = model(func, pts, self.t_ms, w)
                k2 = tuple(x for x in k if x[0] != "__name__")
                hows[engine][k2] = how
                if v is None or math.isnan(v):  # no result (VictoriaMetrics drops NaN)
                    continue
                want[k2] = v
                mag[k2] = max(abs(x) for _, x in pts)
            if set(got) != set(want):
                only_g = [dict(k) for k in set(got) - set(want)][:3]
                only_w = [dict(k) for k in set(want) - set(got)][:3]
                raise Fail(f"{engine}'s {text}: series differ from its definition (extra {only_g}, missing {only_w})")
            for k in got:
                # The model's float arithmetic is not the engine's (order of operations): allow
                # rounding on the inputs' magnitude (a rate is a difference of large counters).
                if not close(got[k], want[k], MODEL_REL, 1e-12 * mag[k]):
                    raise Fail(f"{engine}'s {text} {dict(k)} = {got[k]!r}, its definition gives {want[k]!r}")
        differs = set(tp) != set(tv) or any(not close(tp[k], tv[k], REL, 10 * prec) for k in tp)
        worst, detail, why = 0.0, "", {}
        for k in set(tp) | set(tv):
            a, b = tp.get(k, math.nan), tv.get(k, math.nan)
            if k in tp and k in tv and close(a, b, REL, 10 * prec):
                continue
            reason = f"Prometheus: {hows['Prometheus'][k]}; VictoriaMetrics: {hows['VictoriaMetrics'][k]}"
            why[reason] = why.get(reason, 0) + 1
            d = diff(a, b) if k in tp and k in tv else math.inf
            if d > worst or not detail:
                worst = max(worst, d)
                lab = ",".join(f"{x}={y}" for x, y in k if x not in ("instance", "job"))
                detail = f"{{{lab}}} Prometheus {a:.6g}, VictoriaMetrics {b:.6g}"
        for r, n in why.items():
            r = f"{func}[{toks_w(w)}] {r}"
            self.why[r] = self.why.get(r, 0) + n
        res = {"differs": differs, "worst": worst, "detail": detail, "prec": prec, "why": why,
               "sets": (len(tp), len(tv)), "same_sets": set(tp) == set(tv)}
        self.terms[text] = res
        return res


def compare(ck, expr):
    """Returns (category, n_prom, n_vm, max_rel_diff, verdict); category is "same",
    "explained" (same after a documented MetricsQL difference), "defined" (differs only where
    rate()/increase() are defined differently) or "FAIL"."""
    pv = vector(ck.q(ck.prom, expr))
    vv = vector(ck.q(ck.vm, expr))
    n_p, n_v = len(pv), len(vv)
    selectors, terms, funcs = analyse(expr)
    explained = []
    # Storage precision of every input the query reads.
    prec = max([ck.selector_max(s) for s in selectors] + [0.0])
    if "time" in funcs:
        prec = max(prec, precision(float(ck.t)))
    term_results = [(text, ck.term(f, s, w, text)) for f, s, w, text in terms]
    prec = max([prec] + [r["prec"] for _, r in term_results])
    tol_abs = 10 * prec
    # NaN on Prometheus, nothing on VictoriaMetrics.
    nan_only = [k for k, v in pv.items() if math.isnan(v) and k not in vv]
    for k in nan_only:
        del pv[k]
    if nan_only:
        explained.append(f"{len(nan_only)} NaN result(s) dropped by VictoriaMetrics")
    # __name__ kept by MetricsQL's keep-name rollups.
    if funcs & VM_KEEP_NAME:
        renamed = {}
        for k, v in vv.items():
            k2 = tuple(x for x in k if x[0] != "__name__")
            if k2 != k and k not in pv and k2 in pv:
                renamed[k2] = v
            else:
                renamed[k] = v
        if renamed.keys() != vv.keys():
            explained.append(f"__name__ kept by VictoriaMetrics' {'/'.join(sorted(funcs & VM_KEEP_NAME))}")
        vv = renamed
    worst = 0.0
    for k in set(pv) & set(vv):
        worst = max(worst, diff(pv[k], vv[k]))
    term_diff = [t for t, r in term_results if r["differs"]]
    only_p, only_v = set(pv) - set(vv), set(vv) - set(pv)
    # topk/bottomk ties.
    m = re.match(r"^\s*(topk|bottomk)\s*\(\s*(\d+)\s*,(.*)\)\s*$", expr)
    if (only_p or only_v) and m and not term_diff:
        a, b = sorted(pv.values()), sorted(vv.values())
        edge = a[0] if m.group(1) == "topk" else a[-1]
        inner = vector(ck.q(ck.prom, m.group(3)))
        ok = len(a) == len(b) and all(close(x, y, REL, tol_abs) for x, y in zip(a, b))
        ok = ok and all(close(pv[k], edge, REL, tol_abs) for k in only_p)
        ok = ok and all(k in inner and close(vv[k], edge, REL, tol_abs) and close(inner[k], vv[k], REL, tol_abs)
                        for k in only_v)
        if not ok:
            return "FAIL", n_p, n_v, worst, f"{m.group(1)} picked different series, not ties"
        explained.append(f"{m.group(1)} ties at {edge:g}: {len(only_p)} tied series picked differently")
        only_p = only_v = set()
        pv = {k: v for k, v in pv.items() if k in vv}
    if term_diff:
        # The definitions differ: values (and series a term adds or drops) may differ.
        sets = "same series" if not (only_p or only_v) else \
            f"{len(only_p)} series only on Prometheus, {len(only_v)} only on VictoriaMetrics"
        if (only_p or only_v) and all(r["same_sets"] for _, r in term_results):
            return "FAIL", n_p, n_v, worst, "different series although every term has the same series on both"
        parts = []
        for t in term_diff:
            r = ck.terms[t]
            hows = "; ".join(f"{n} series: {how}" for how, n in r["why"].items())
            parts.append(f"{short(t, 60)}: max {r['worst']:.3g} at {r['detail']} ({hows})")
        explained.append(f"rate/increase definitions ({sets}); terms differing: " + "; ".join(parts))
        return "defined", n_p, n_v, worst, "differs as defined: " + "; ".join(explained)
    if only_p or only_v:
        ex = [dict(k) for k in list(only_p)[:2]] + [dict(k) for k in list(only_v)[:2]]
        return "FAIL", n_p, n_v, worst, (f"different series: {len(only_p)} only on Prometheus, "
                                         f"{len(only_v)} only on VictoriaMetrics, e.g. {ex}")
    bad = [k for k in pv if not close(pv[k], vv[k], REL, tol_abs)]
    if bad:
        k = bad[0]
        return "FAIL", n_p, n_v, worst, (f"value differs: {dict(k)} Prometheus {pv[k]!r}, VictoriaMetrics "
                                         f"{vv[k]!r} (tolerance {REL:g} relative + {tol_abs:.3g})")
    verdict = "same" + (" (" + "; ".join(explained) + ")" if explained else "")
    if terms:
        verdict += f"; {len(terms)} range term(s) equal on both"
    return ("explained" if explained else "same"), n_p, n_v, worst, verdict


def variable(ck, query):
    """A template variable's label_values(SELECTOR, LABEL) through both of Grafana's ways:
    /api/v1/label/LABEL/values?match[]= and /api/v1/series (the label read from each series),
    over [T-1h, T]. VictoriaMetrics' label index has a granularity of one day, so it may also
    name a value first seen after T; such a value must then be on Prometheus up to now."""
    m = re.match(r"^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", query)
    if not m:
        raise Fail(f"not a label_values(selector, label) query: {query}")
    sel, label = m.group(1), m.group(2)
    t = float(ck.t)
    span = {"match[]": sel, "start": f"{t - 3600:.3f}", "end": ck.t}
    out = []
    for how in ("label values", "series"):
        got = {}
        for base in (ck.prom, ck.vm):
            if how == "label values":
                got[base] = set(api_get(base, f"/api/v1/label/{label}/values", span))
            else:
                got[base] = {s[label] for s in api_get(base, "/api/v1/series", span) if label in s}
        p, v = got[ck.prom], got[ck.vm]
        if not p:
            raise Fail(f"{how}: no value on Prometheus")
        if p - v:
            raise Fail(f"{how}: {sorted(p - v)[:5]} on Prometheus only")
        if v - p:
            later = set(api_get(ck.prom, f"/api/v1/label/{label}/values", {"match[]": sel, "start": span["start"]}))
            if (v - p) - later:
                raise Fail(f"{how}: {sorted(v - p)[:5]} on VictoriaMetrics only")
        out.append(f"{how} {len(p)}/{len(v)}" + (f" (+{len(v - p)} first seen after T)" if v - p else ""))
    return ", ".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--victoria", required=True)
    ap.add_argument("--time", required=True)
    ap.add_argument("--min-data", type=float, default=0.8)
    ap.add_argument("--variables", help="dashboard_queries.py --variables output")
    ap.add_argument("queries")
    a = ap.parse_args()
    ck = Checker(a.prometheus, a.victoria, a.time)
    rows = [line.rstrip("\n").split("\t") for line in open(a.queries) if line.strip()]
    with_data, kinds = 0, {"same": 0, "explained": 0, "defined": 0, "FAIL": 0}
    print(f"{'query':<26} {'P':>4} {'V':>4} {'max diff':>9}  expression / verdict")
    for uid, pid, title, ref, expr in rows:
        name = f"{uid.replace('citywatch-', '')}/{pid}{ref}"
        try:
            cat, n_p, n_v, worst, verdict = compare(ck, expr)
        except Fail as e:
            cat, n_p, n_v, worst, verdict = "FAIL", -1, -1, math.nan, f"error: {e}"
        if n_p > 0:
            with_data += 1
        kinds[cat] += 1
        print(f"{name:<26} {n_p:>4} {n_v:>4} {worst:>9.3g}  {short(expr, 90)}")
        print(f"{'':<47}{'FAIL' if cat == 'FAIL' else 'ok'}: {verdict}")
    var_failed, var_rows = 0, []
    if a.variables:
        var_rows = [line.rstrip("\n").split("\t") for line in open(a.variables) if line.strip()]
        print("template variables, values on Prometheus/VictoriaMetrics:")
        for uid, name, query in var_rows:
            try:
                verdict, ok = variable(ck, query), True
            except Fail as e:
                verdict, ok = str(e), False
            var_failed += not ok
            name = uid.replace("citywatch-", "") + "/$" + name
            print(f"  {name:<24} {'ok' if ok else 'FAIL'}: {verdict}  {short(query, 70)}")
    n = len(rows)
    if var_rows:
        print(f"{len(var_rows)} template variables: {len(var_rows) - var_failed} with the same values, "
              f"{var_failed} failed")
    print(f"{n} queries: {kinds['same']} identical, {kinds['explained']} identical after a documented "
          f"MetricsQL difference (NaN dropped, __name__ kept, topk ties), {kinds['defined']} differing "
          f"only where rate()/increase() are defined differently (each term checked against both "
          f"definitions), {kinds['FAIL']} failed; {with_data} returned data on Prometheus; "
          f"{len(ck.terms)} distinct range terms checked")
    if ck.why:
        print("rate()/increase() series that differ between the engines, by how each computed them:")
        for r, n in sorted(ck.why.items()):
            print(f"  {n:4d}  {r}")
    if kinds["FAIL"] or var_failed:
        return 1
    if with_data < a.min_data * n:
        print(f"only {with_data} of {n} queries returned data on Prometheus (need {a.min_data:.0%})")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print(f"FAIL: {e}")
        sys.exit(1)
