#!/usr/bin/env python3
"""Lists the tests a ctest run did not run, and why, from its JUnit file.

    scripts/ctest_skips.py JUNIT.xml [LABEL]

ctest counts a skipped test (SKIP_RETURN_CODE 77, GTEST_SKIP via gtest_discover_tests'
SKIP_REGULAR_EXPRESSION, a disabled test) as passed, so "100% tests passed" can hide whole
areas that were never tested. This prints one line per such test -- "LABEL NAME: REASON" --
and nothing when every test ran. The exit status is 0 either way: scripts/test.sh decides
what a skip means (a failure under CI).
"""
import sys
import xml.etree.ElementTree as ET


def reason_of(output: str, message: str) -> str:
    """The test's own explanation: a shell test's "SKIP: ..." line, or the message gtest
    prints between "Skipped" and "[  SKIPPED ]"; ctest's reason code when there is neither."""
    lines = [l.rstrip() for l in output.splitlines()]
    for l in lines:
        if l.startswith("SKIP:"):
            return l[len("SKIP:"):].strip()
    for i, l in enumerate(lines):
        if l.endswith(": Skipped"):
            text = []
            for m in lines[i + 1:]:
                if m.startswith("[  SKIPPED ]") or not m.strip():
                    break
                text.append(m.strip())
            if text:
                return " ".join(text)
    for l in lines:
        if l.startswith("[  SKIPPED ]"):
            return l
    return message or "no reason printed"


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    label = sys.argv[2] + " " if len(sys.argv) > 2 else ""
    root = ET.parse(sys.argv[1]).getroot()
    for case in root.iter("testcase"):
        skipped = case.find("skipped")
        status = case.get("status", "")
        if skipped is None and status not in ("notrun", "disabled"):
            continue
        out = case.findtext("system-out") or ""
        msg = skipped.get("message", "") if skipped is not None else status
        print(f"{label}{case.get('name')}: {reason_of(out, msg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
