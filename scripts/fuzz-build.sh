#!/usr/bin/env bash
# Builds the cargo-fuzz targets of the parsers crate (parsers/fuzz) with the
# nightly toolchain; installs cargo-fuzz first if it is missing.
#
# Usage: scripts/fuzz-build.sh
# Then, e.g.: (cd parsers/fuzz && cargo +nightly fuzz run events -- -max_total_time=60)
set -euo pipefail
cd "$(dirname "$0")/../parsers/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz-build: installing cargo-fuzz" >&2
	cargo install cargo-fuzz --locked
fi
start=$SECONDS
cargo +nightly fuzz build
echo "fuzz-build: targets built in $((SECONDS - start)) s: $(cargo +nightly fuzz list | tr '\n' ' ')"
