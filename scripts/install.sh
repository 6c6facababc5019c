#!/usr/bin/env bash
# Installs eunomia as a systemd service:
#   binary   -> $PREFIX/bin/eunomia            (PREFIX=/usr/local)
#   config   -> /etc/eunomia/eunomia.toml      (kept if it exists; the shipped
#               default goes to eunomia.toml.default beside it)
#   rules    -> /etc/eunomia/rules/*.toml, user tool manifests in /etc/eunomia/tools.d/
#   unit     -> /etc/systemd/system/eunomia.service, enabled and started
#
# Usage: scripts/install.sh [--binary PATH] [--no-start]
#        scripts/install.sh --uninstall [--purge]    (--purge also removes /etc/eunomia)
# DESTDIR=/some/root installs into a staging root and skips systemctl.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN="$DESTDIR$PREFIX/bin/eunomia"
ETC="$DESTDIR/etc/eunomia"
UNIT="$DESTDIR/etc/systemd/system/eunomia.service"

log() { printf 'install: %s\n' "$*"; }
fail() { printf 'install: FAILED: %s\n' "$*" >&2; exit 1; }
systemd_running() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

uninstall() {
  local purge=$1
  if systemd_running; then
    systemctl disable --now eunomia.service 2>/dev/null || true
  fi
  rm -f "$UNIT" "$BIN"
  systemd_running && systemctl daemon-reload || true
  if [ "$purge" = yes ]; then rm -rf "$ETC"; log "removed $ETC"; fi
  log "uninstalled"
}

install_files() {
  local binary=$1
  [ -x "$binary" ] || fail "no executable at $binary"
  install -D -m 0755 "$binary" "$BIN"
  install -d -m 0755 "$ETC" "$ETC/rules" "$ETC/tools.d"
  install -m 0644 deploy/eunomia.toml "$ETC/eunomia.toml.default"
  [ -e "$ETC/eunomia.toml" ] || install -m 0644 deploy/eunomia.toml "$ETC/eunomia.toml"
  if compgen -G "rules/*.toml" >/dev/null; then install -m 0644 rules/*.toml "$ETC/rules/"; fi
  local unit_tmp; unit_tmp=$(mktemp)
  sed "s|/usr/local/bin/eunomia|$PREFIX/bin/eunomia|" deploy/eunomia.service > "$unit_tmp"
  install -D -m 0644 "$unit_tmp" "$UNIT"; rm -f "$unit_tmp"
  "$BIN" config check "$ETC/eunomia.toml" >/dev/null || fail "$ETC/eunomia.toml does not validate"
  log "installed $BIN, $ETC, $UNIT"
}

main() {
  local binary="" start=yes mode=install purge=no
  while [ $# -gt 0 ]; do
    case $1 in
      --binary) binary=$2; shift ;;
      --no-start) start=no ;;
      --uninstall) mode=uninstall ;;
      --purge) purge=yes ;;
      -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
      *) fail "unknown argument $1 (see --help)" ;;
    esac
    shift
  done
  [ "$(id -u)" -eq 0 ] || [ -n "$DESTDIR" ] || fail "run as root"
  if [ $mode = uninstall ]; then uninstall $purge; return; fi
  if [ -z "$binary" ]; then
    log "building the release binary"
    cargo build --release --bin eunomia || fail "cargo build"
    binary=target/release/eunomia
  fi
  install_files "$binary"
  if systemd_running; then
    systemctl daemon-reload
    if [ $start = yes ]; then systemctl enable --now eunomia.service; else systemctl enable eunomia.service; fi
    log "eunomia.service enabled$([ $start = yes ] && echo ' and started')"
  else
    log "systemd is not running here: start the agent with '$PREFIX/bin/eunomia run'"
  fi
}

main "$@"
