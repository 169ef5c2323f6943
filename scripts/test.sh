#!/bin/bash
# Builds Warren and runs every test, in phases (docs/ARCHITECTURE.md, "Sanitizers and fuzzing"):
#   normal  the GoogleTest unit tests and the system tests that start the real warren-server and
#           drive it with pika and rabbitmq-c (and the web UI's browser test, with chromium and
#           playwright-core from scripts/install-test-deps.sh), in build/; also the Debian package
#           of build/ (scripts/package.sh), which test_package.py checks, installs and purges;
#   asan    the same unit and system tests under AddressSanitizer + UndefinedBehaviorSanitizer
#           (build-asan/; leaks checked at exit; tests marked `soak` skipped);
#   tsan    the tests of the store writer thread and the HTTP threads under ThreadSanitizer
#           (build-tsan/: storage_test, net_test, management_test and two system test files);
#   fuzz    every libFuzzer target (build-fuzz/, clang) for FUZZ_SECONDS each.
# PHASES selects phases (default: all four), JOBS the build and ctest parallelism (default 2).
# Every phase runs even when an earlier one failed; a sanitizer report from any process fails its
# phase. The closing lines sum up each phase; the last one counts the tests, and any failure makes
# the script exit 1.
set -uo pipefail
cd "$(dirname "$0")/.."
export JOBS="${JOBS:-2}"
PHASES="${PHASES:-normal asan tsan fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
SUPP="$PWD/scripts/sanitizers"
passed=0
failed=0
summary=()

note() { summary+=("$(printf '%-7s %s' "$1" "$2")"); }
stamp() {
  local s=$((SECONDS - $1))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# build PHASE VAR=VALUE... : scripts/build.sh with the given settings; false when it fails.
build() {
  local phase=$1 t0=$SECONDS
  shift
  echo "===== [$phase] build ($*)"
  if env "$@" bash scripts/build.sh; then
    note "$phase" "build ok in $(stamp "$t0")"
  else
    note "$phase" "BUILD FAILED after $(stamp "$t0")"
    failed=$((failed + 1))
    return 1
  fi
}

# count PHASE LOG RC: adds CTest's or pytest's counts from LOG (or one failure when it has none).
count() {
  local phase=$1 log=$2 rc=$3 line p f
  if line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1) && [ -n "$line" ]; then
    f=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<< "$line")
    p=$(($(sed -E 's/.*out of ([0-9]+).*/\1/' <<< "$line") - f))
  elif line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|errors?|skipped).* in [0-9.]+s' "$log" | tail -1) && [ -n "$line" ]; then
    p=0 f=0
    [[ $line =~ ([0-9]+)\ passed ]] && p=${BASH_REMATCH[1]}
    [[ $line =~ ([0-9]+)\ failed ]] && f=${BASH_REMATCH[1]}
    [[ $line =~ ([0-9]+)\ error ]] && f=$((f + BASH_REMATCH[1]))
  else
    p=0 f=1 line="no test summary (exit $rc)"
  fi
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  passed=$((passed + p))
  failed=$((failed + f))
  note "$phase" "$line"
  # The names, so that the summary at the end of a long log says what to look for.
  local name
  while read -r name; do
    [ -n "$name" ] && note "$phase" "  failed: $name"
  done < <(sed -nE -e 's/^[[:space:]]*[0-9]+ - (.*)$/\1/p' -e 's/^(FAILED|ERROR) (.*)$/\2/p' "$log" | sort -u)
  # And pytest's first lines of what failed (its "E   ..." lines), cut short: the why.
  while read -r line; do
    note "$phase" "  ${line:0:300}"
  done < <(grep -aE '^E {3}' "$log" | head -8)
}

# reports PHASE DIR: fails the phase for every sanitizer report a process left in DIR.
reports() {
  local phase=$1 dir=$2 n
  n=$(find "$dir" -type f | wc -l)
  [ "$n" -eq 0 ] && return 0
  for f in "$dir"/*; do
    echo "===== [$phase] sanitizer report $f"
    head -c 20000 "$f"
  done
  note "$phase" "$n SANITIZER REPORT(S) in $dir"
  failed=$((failed + n))
}

# sanitizer_env DIR: the options every sanitized process of a phase runs with.
sanitizer_env() {
  rm -rf "$1" && mkdir -p "$1"
  export ASAN_OPTIONS="detect_leaks=1:log_path=$1/report:abort_on_error=0:halt_on_error=1:strict_init_order=1"
  export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$1/report"
  export TSAN_OPTIONS="suppressions=$SUPP/tsan.supp:halt_on_error=1:second_deadlock_stack=1:log_path=$1/report"
  export WARREN_SANITIZER=1  # tests marked `soak` are skipped (tests/integration/conftest.py)
}

phase_normal() {
  build normal || return
  # The Debian package of build/ (cpack only), for tests/integration/test_package.py.
  if ! BUILD_DIR=build BUILD_TYPE=RelWithDebInfo bash scripts/package.sh; then
    note normal "PACKAGE FAILED (scripts/package.sh)"
    failed=$((failed + 1))
  fi
  bash scripts/install-test-deps.sh
  local t0=$SECONDS
  ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 1800 2>&1 | tee build/ctest.log
  count normal build/ctest.log "${PIPESTATUS[0]}"
  note normal "tests ran in $(stamp "$t0")"
}

phase_asan() {
  build asan BUILD_DIR=build-asan SANITIZE=address,undefined || return
  bash scripts/install-test-deps.sh
  local t0=$SECONDS
  (
    sanitizer_env "$PWD/build-asan/sanitizer-reports"
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" --timeout 2700 2>&1 | tee build-asan/ctest.log
    exit "${PIPESTATUS[0]}"
  )
  count asan build-asan/ctest.log $?
  reports asan build-asan/sanitizer-reports
  note asan "tests ran in $(stamp "$t0")"
}

phase_tsan() {
  build tsan BUILD_DIR=build-tsan SANITIZE=thread TARGETS="storage_test net_test management_test warren-server" || return
  local t0=$SECONDS
  (
    sanitizer_env "$PWD/build-tsan/sanitizer-reports"
    ctest --test-dir build-tsan --output-on-failure -j "$JOBS" --timeout 1800 \
      -R '^(GroupCommitTest|StoreTest|StoreOpenTest|RecoveryTest|ScanTest|ServerTest|ManagementTest|CodecTest)\.' \
      2>&1 | tee build-tsan/ctest.log
    exit "${PIPESTATUS[0]}"
  )
  count tsan build-tsan/ctest.log $?
  (
    sanitizer_env "$PWD/build-tsan/sanitizer-reports-pytest"
    cd tests/integration &&
      WARREN_SERVER="$OLDPWD/build-tsan/bin/warren-server" WARREN_SEED_DIR="$OLDPWD/../shared/seed" \
      /usr/bin/python3 -m pytest -q -p no:cacheprovider test_confirms_tx.py test_management_api.py 2>&1 |
      tee "$OLDPWD/build-tsan/pytest.log"
    exit "${PIPESTATUS[0]}"
  )
  count tsan build-tsan/pytest.log $?
  reports tsan build-tsan/sanitizer-reports
  reports tsan build-tsan/sanitizer-reports-pytest
  note tsan "tests ran in $(stamp "$t0")"
}

phase_fuzz() {
  bash scripts/install-test-deps.sh
  build fuzz BUILD_DIR=build-fuzz FUZZ=ON CC=clang-16 CXX=clang++-16 TARGETS=warren_fuzzers || return
  local t0=$SECONDS name corpus out log crashed=0 total=0 symbolizer
  # clang-16 ships no llvm-symbolizer; any version symbolizes its stacks.
  symbolizer=$(compgen -c llvm-symbolizer | sort -r | head -1)
  [ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$(command -v "$symbolizer")"
  while read -r name corpus; do
    out=build-fuzz/runs/$name
    log=$out/log
    rm -rf "$out" && mkdir -p "$out/corpus" "$out/artifacts"
    total=$((total + 1))
    # New inputs go to the run's own corpus; the committed seeds are only read.
    if build-fuzz/fuzz/"$name" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
         -artifact_prefix="$out/artifacts/" -print_final_stats=1 "$out/corpus" "$corpus" > "$log" 2>&1; then
      echo "===== [fuzz] $name: $(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+') runs in ${FUZZ_SECONDS}s, no crash"
      passed=$((passed + 1))
    else
      crashed=$((crashed + 1))
      failed=$((failed + 1))
      echo "===== [fuzz] $name FAILED; the end of its log ($log):"
      tail -n 60 "$log"
      for f in "$out"/artifacts/*; do
        [ -e "$f" ] && echo "reproduce: build-fuzz/fuzz/$name $f"
      done
    fi
  done < build-fuzz/fuzz_targets.txt
  note fuzz "$total targets for ${FUZZ_SECONDS}s each: $((total - crashed)) clean, $crashed failed (in $(stamp "$t0"))"
}

for phase in $PHASES; do
  "phase_$phase"
done

echo
echo "===== scripts/test.sh summary (phases: $PHASES)"
printf '%s\n' "${summary[@]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
