#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (docs/FUZZING.md) for a short budget, starting from a
# copy of the checked-in corpus, so a run never changes the repository. Needs a nightly
# toolchain; without one it says so and succeeds. Installs cargo-fuzz if it is missing.
#
# FUZZ_SECONDS: seconds per target (default 5). On a 2-core machine the 14 runs take about
# 1.5 minutes, and a cold build (empty fuzz/target) about 5.5 more, mostly the API's dependency
# stack; a kept fuzz/target rebuilds in seconds. Exits non-zero if any target crashes or
# hangs, naming the input that did it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzzing skipped: no nightly toolchain"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

seconds=${FUZZ_SECONDS:-5}
# The same flags for the build and every run (other flags would rebuild): no sanitizer, as
# liverec forbids unsafe code and the budget is better spent on executions; debug assertions
# and overflow checks on, as in the dev profile liverec is built with.
flags=(--sanitizer none --debug-assertions)
cd fuzz
# cargo fuzz has no --locked: fail here if fuzz/Cargo.lock is not up to date.
cargo +nightly tree --locked --depth 0 >/dev/null
cargo +nightly fuzz build "${flags[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$work/corpus/$target" "artifacts/$target"
  cp -R "corpus/$target/." "$work/corpus/$target/"
  log="$work/$target.log"
  # -timeout: an input that takes this long is a hang, reported like a crash.
  if cargo +nightly fuzz run "${flags[@]}" "$target" "$work/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -artifact_prefix="$PWD/artifacts/$target/" \
    >"$log" 2>&1; then
    echo "$target: no crash ($(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | tr -s '\t ' ' '))"
  else
    failed=1
    crash=$(grep -Eo "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/^Test unit written to //')
    echo "$target: CRASH" >&2
    tail -n 40 "$log" >&2
    if [ -n "$crash" ]; then
      echo "crash input: $crash" >&2
      echo "reproduce:   (cd fuzz && cargo +nightly fuzz run ${flags[*]} $target $crash)" >&2
    fi
  fi
done
exit "$failed"
