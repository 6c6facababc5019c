# Helpers shared by the benchmark scripts (sourced, not run).

# Installs Debian packages the benchmarks need, once.
bench_ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The cgroup v2 root (hybrid hosts mount it at /sys/fs/cgroup/unified).
bench_cgroup_root() {
  awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts
}

# Creates (or empties) a cgroup for one measured process tree; prints its path.
bench_cgroup() {
  local cg; cg="$(bench_cgroup_root)/eunomia-bench-$1"
  mkdir -p "$cg"
  echo "$cg"
}

# CPU microseconds a cgroup has used (user + system, children included).
bench_cgroup_cpu_us() {
  awk '$1 == "usage_usec" { print $2 }' "$1/cpu.stat"
}

# Removes a cgroup once its processes are gone.
bench_cgroup_remove() {
  for _ in $(seq 50); do rmdir "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "bench: could not remove $1" >&2
}

# Median of the numbers given as arguments.
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat:
# everything but idle and iowait).
bench_machine_busy_s() {
  awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8 + $9; printf "%.2f\n", busy / 100; exit }' /proc/stat
}
