#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing
# (scripts/setup.sh), builds every target (the end-to-end tests in tests/ run
# the built `eunomia` binary), and runs every test of the default workspace
# members (hotpath-ebpf is built for BPF by supervisor/build.rs). Kernel tests need root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
cargo build --all-targets
cargo test --no-fail-fast
