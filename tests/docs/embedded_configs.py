#!/usr/bin/env python3
"""docs/configuration.md shows each daemon's embedded default config: the block under
"### Embedded default (`BINARY --print-default-config`)" must be what BINARY prints.
usage: embedded_configs.py CONFIGURATION_MD AGENT_BIN COLLECTOR_BIN"""
import difflib
import os
import re
import subprocess
import sys


def block(doc: str, binary: str) -> str:
    heading = "### Embedded default (`%s --print-default-config`)" % binary
    at = doc.find(heading)
    if at < 0:
        sys.exit("%s: no heading %r" % (sys.argv[1], heading))
    m = re.compile(r"```yaml\n(.*?)```\n", re.S).search(doc, at)
    if not m:
        sys.exit("%s: no ```yaml block after %r" % (sys.argv[1], heading))
    return m.group(1)


def main() -> int:
    doc = open(sys.argv[1], encoding="utf-8").read()
    failed = 0
    for path in sys.argv[2:]:
        binary = os.path.basename(path)
        printed = subprocess.run([path, "--print-default-config"], check=True,
                                 capture_output=True, text=True).stdout
        shown = block(doc, binary)
        if printed.rstrip("\n") != shown.rstrip("\n"):
            failed = 1
            print("docs/configuration.md shows a different embedded default than %s prints:" % binary)
            sys.stdout.writelines(difflib.unified_diff(
                shown.splitlines(True), printed.splitlines(True), "docs/configuration.md",
                binary + " --print-default-config"))
        else:
            print("%s: docs/configuration.md shows its embedded default (%d lines)" %
                  (binary, printed.count("\n")))
    return failed


if __name__ == "__main__":
    sys.exit(main())
