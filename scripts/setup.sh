#!/usr/bin/env bash
# Installs everything eunomia needs on a fresh Debian 12 machine (as root):
# Debian packages (libbpf-tools, bpftool, LLVM 22, Prometheus, Alertmanager, ...),
# the nightly rust-src component and bpf-linker built against LLVM 22.
# Safe to run twice: every step is skipped when its result is already there.
set -euo pipefail

log() { printf '\033[1;34msetup:\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31msetup: FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (apt-get and BPF need it)"

# Debian packages the agent, its tests and its benchmarks use.
PACKAGES=(
  libbpf-tools bpftool            # supervised tracers; inspecting loaded programs
  llvm-22-dev libpolly-22-dev     # bpf-linker links BPF objects with LLVM 22
  zlib1g-dev libzstd-dev          # bpf-linker's LLVM link dependencies
  prometheus prometheus-alertmanager  # real peers for the end-to-end tests
  protobuf-compiler               # tonic-build for the control API
  iproute2 procps                 # network namespaces and ps in tests
  python3-yaml systemd            # deployment-file checks (YAML, systemd-analyze verify)
  docker.io containerd runc podman  # real container runtimes for the container tests (never crun:
                                    # it refuses this hybrid cgroup layout and podman would prefer it)
  busybox-static                  # the rootfs of the test images (no registry is reachable)
  tmux                            # `eunomia top` is tested in a real terminal (keys in, pane out)
  nginx wrk curl openssl          # a real web server for the HTTP capture (tests/http_nginx.rs,
                                  # also over TLS; scripts/bench-http.sh) and its clients
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" crun- >/dev/null \
    || fail "apt-get install ${missing[*]}"
  # The Debian packages start their services; tests start their own instances.
  for svc in prometheus prometheus-alertmanager prometheus-node-exporter nginx; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
    pkill -x "${svc#prometheus-}" >/dev/null 2>&1 || true
  done
  # Same for the container daemons: the container tests start and stop their own.
  for svc in docker containerd; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
else
  log "Debian packages: already installed"
fi

# podman prefers crun when both are there, and crun refuses this hybrid layout.
if dpkg-query -W -f='${Status}' crun 2>/dev/null | grep -q "install ok installed"; then
  log "removing crun (podman must use runc here)"
  apt-get remove -y -qq crun >/dev/null || fail "apt-get remove crun"
fi

# The libbpf-tools attach tracepoints through tracefs; some hosts boot without it.
for fs in tracefs:/sys/kernel/tracing debugfs:/sys/kernel/debug; do
  if ! mountpoint -q "${fs#*:}"; then
    log "mounting ${fs%%:*} on ${fs#*:}"
    mount -t "${fs%%:*}" nodev "${fs#*:}" || fail "mount -t ${fs%%:*} nodev ${fs#*:}"
  fi
done

export PATH="$HOME/.cargo/bin:$PATH"
if rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  log "nightly rust-src: already installed"
else
  log "installing the nightly rust-src component (aya-build uses -Z build-std=core)"
  rustup component add rust-src --toolchain nightly || fail "rustup component add rust-src --toolchain nightly"
fi

if command -v bpf-linker >/dev/null && bpf-linker --version 2>/dev/null | grep -q '^bpf-linker 0\.13'; then
  log "bpf-linker: $(bpf-linker --version) already installed"
else
  log "building bpf-linker 0.13 against LLVM 22 (about a minute)"
  LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --version '^0.13' --locked \
    --no-default-features --features llvm-22 || fail "cargo install bpf-linker"
fi

log "done"
