#!/usr/bin/env bash
# Runs one fuzz target (or each in turn) under libFuzzer for longer than `cargo test` does.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh envelope 3600        # one target for an hour
#
# Needs the nightly toolchain (rustup toolchain install nightly) and installs cargo-fuzz if it
# is missing. Inputs start from crates/fuzz/corpus/<target>; new ones libFuzzer finds go there
# too (commit those that add coverage). A crash is saved under fuzz/artifacts/<target>/: fix
# it, copy the input into the corpus, and `cargo test -p cobuild-fuzz` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
targets=("${1:-}")
if [ -z "${targets[0]}" ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^cobuild-fuzz-targets$')
fi
secs="${2:-60}"
for target in "${targets[@]}"; do
  echo "==> $target for ${secs}s"
  mkdir -p "crates/fuzz/corpus/$target"
  cargo +nightly fuzz run --fuzz-dir fuzz "$target" "crates/fuzz/corpus/$target" -- \
    -max_total_time="$secs" -max_len=65536
done
