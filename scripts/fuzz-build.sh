#!/usr/bin/env bash
# Builds every cargo-fuzz crate of the project (parsers/fuzz: the tool-output
# parsers; supervisor/fuzz: the rules condition parser) with the nightly
# toolchain; installs cargo-fuzz first if it is missing.
#
# Usage: scripts/fuzz-build.sh
# Then, e.g.: (cd parsers/fuzz && cargo +nightly fuzz run events -- -max_total_time=60)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz-build: installing cargo-fuzz" >&2
	cargo install cargo-fuzz --locked
fi
for crate in parsers/fuzz supervisor/fuzz; do
	start=$SECONDS
	(cd "$crate" && cargo +nightly fuzz build)
	echo "fuzz-build: $crate built in $((SECONDS - start)) s: $(cd "$crate" && cargo +nightly fuzz list | tr '\n' ' ')"
done
