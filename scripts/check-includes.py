#!/usr/bin/env python3
"""Include graph = link graph: prints every project include of a library target whose header
belongs to a library the target does not link (directly or through its dependencies).

    scripts/check-includes.py [BUILD_DIR]

BUILD_DIR is configured (not built) with CMake; without one, a temporary directory is, and
removed. The suite runs it as `check_includes`.

Targets, their sources and their link dependencies come from CMake's file API (codemodel
v2), so the script reads what the build really does. A header belongs to the library whose
sources live in the deepest directory holding it (common/http/x.h -> citywatch_http,
common/x.h -> citywatch_common). Only quoted includes of files in the source tree count.
Prints nothing and exits 0 when every include is linked; else one line per include, exit 1.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

scratch = None if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="cw-includes-")
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else scratch)
src = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
query = os.path.join(build, ".cmake", "api", "v1", "query", "codemodel-v2")
os.makedirs(os.path.dirname(query), exist_ok=True)
open(query, "a").close()
subprocess.run(["cmake", "-S", src, "-B", build], check=True, stdout=subprocess.DEVNULL)
reply = os.path.join(build, ".cmake", "api", "v1", "reply")
index = json.load(open(os.path.join(reply, sorted(f for f in os.listdir(reply) if f.startswith("index-"))[-1])))
codemodel = next(r for r in index["reply"].values() if isinstance(r, dict) and r.get("kind") == "codemodel")
model = json.load(open(os.path.join(reply, codemodel["jsonFile"])))

targets = {}  # id -> {name, type, sources, deps}
for cfg in model["configurations"][:1]:
    for t in cfg["targets"]:
        d = json.load(open(os.path.join(reply, t["jsonFile"])))
        targets[d["id"]] = {
            "name": d["name"],
            "type": d["type"],
            "sources": [os.path.join(src, s["path"]) if not os.path.isabs(s["path"]) else s["path"]
                        for s in d.get("sources", [])],
            "deps": [x["id"] for x in d.get("dependencies", [])],
        }

libraries = {i: t for i, t in targets.items() if t["type"] in ("STATIC_LIBRARY", "SHARED_LIBRARY", "OBJECT_LIBRARY")}
# Directory -> owning library (the directory of its .cc files).
owner_of_dir = {}
for i, t in libraries.items():
    for s in t["sources"]:
        if s.endswith(".cc") and s.startswith(src + os.sep):
            owner_of_dir[os.path.dirname(s)] = i


def owner(path):
    d = os.path.dirname(path)
    while d.startswith(src) and d != src:
        if d in owner_of_dir:
            return owner_of_dir[d]
        d = os.path.dirname(d)
    return None


def closure(i, seen=None):
    seen = set() if seen is None else seen
    for dep in targets[i]["deps"]:
        if dep not in seen:
            seen.add(dep)
            closure(dep, seen)
    return seen


include = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
problems = []
for i, t in sorted(libraries.items(), key=lambda kv: kv[1]["name"]):
    linked = closure(i) | {i}
    files = {s for s in t["sources"] if s.startswith(src + os.sep)}
    # The library's own headers: those in its directories.
    for d in {os.path.dirname(s) for s in files}:
        for f in os.listdir(d):
            if f.endswith(".h") and owner(os.path.join(d, f)) == i:
                files.add(os.path.join(d, f))
    for f in sorted(files):
        text = open(f, encoding="utf-8", errors="replace").read()
        for m in include.finditer(text):
            header = os.path.join(src, m.group(1))
            if not os.path.exists(header):
                continue
            o = owner(header)
            if o is not None and o not in linked:
                problems.append(f"{t['name']}: {os.path.relpath(f, src)} includes {m.group(1)} "
                                f"({targets[o]['name']}, not linked)")
if scratch:
    shutil.rmtree(scratch, ignore_errors=True)
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
