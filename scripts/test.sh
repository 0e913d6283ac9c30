#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs the whole suite:
#   1. the libFuzzer targets for a bounded time (FUZZ_SECONDS each, default 30),
#   2. the suite on an AddressSanitizer + UndefinedBehaviorSanitizer build,
#   3. the suite on the release build (warnings are errors), whose ctest summary ends the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh

echo "== fuzzing (${FUZZ_SECONDS:-30}s per target)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}" "$root/build-fuzz"

echo "== sanitizer build (ASan + UBSan)"
bash scripts/build.sh "$root/build-asan" -DCITYWATCH_SANITIZE=ON -DCITYWATCH_WERROR=ON \
  -DCITYWATCH_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$root/build-asan" --output-on-failure -j2 --timeout 300
unset ASAN_OPTIONS UBSAN_OPTIONS

echo "== release build"
bash scripts/build.sh "$root/build" -DCITYWATCH_WERROR=ON
ctest --test-dir "$root/build" --output-on-failure -j2 --timeout 300
