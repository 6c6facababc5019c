#!/usr/bin/env bash
# The service-map demo: a small microservice system as real Docker
# containers on a Docker network, load through it, the agent watching it.
#
#   user → frontend → api → auth
#                         → data   (fails every FAIL_EVERY-th request)
#   user → pool → data             (calls data from a thread pool)
#
# Every service is scripts/demo/demo-svc.rs, built static with rustc into a
# `FROM scratch` image (no registry needed). The script starts the agent
# (`eunomia run`, Prometheus endpoint on), a real Prometheus scraping it
# when /usr/bin/prometheus exists, sends REQUESTS requests, then shows:
# the map SVG (`eunomia map -o`), a few linked traces, the link outcomes,
# and the RED and service-graph metrics from Prometheus. Everything it
# started is stopped and removed at exit. Run as root.
#
# Environment: REQUESTS (default 50), FAIL_EVERY (default 5), OUT (a
# directory, default target/demo), EUNOMIA (the binary, default
# target/debug/eunomia), KEEP=1 to leave it running until Enter.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

REQUESTS=${REQUESTS:-50}
FAIL_EVERY=${FAIL_EVERY:-5}
OUT=${OUT:-target/demo}
EUNOMIA=${EUNOMIA:-target/debug/eunomia}
NET=eunomia-demo
SUBNET=10.213.7
PROM_PORT=19090
AGENT_PORT=19464
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SOCK="$OUT/eunomia.sock"
PIDS=()

log() { printf '\n== %s\n' "$*"; }

# --- docker: the host's, or a private dockerd for the demo ---
DOCKER=(docker)
if ! docker info >/dev/null 2>&1; then
    log "no docker daemon answers: starting a private one (state in $OUT/docker)"
    mkdir -p "$OUT/docker"
    dockerd --data-root "$OUT/docker/root" --exec-root "$OUT/docker/exec" \
        --pidfile "$OUT/docker/dockerd.pid" -H "unix://$OUT/docker/docker.sock" \
        --bridge=none --iptables=false --ip-masq=false \
        --exec-opt native.cgroupdriver=cgroupfs >"$OUT/docker/dockerd.log" 2>&1 &
    PIDS+=($!)
    DOCKER=(docker -H "unix://$OUT/docker/docker.sock")
    for _ in $(seq 60); do "${DOCKER[@]}" info >/dev/null 2>&1 && break; sleep 1; done
    DOCKER_ROOT="$OUT/docker/root/containers"
else
    DOCKER_ROOT=$(docker info -f '{{.DockerRootDir}}')/containers
fi

cleanup() {
    set +e
    for s in frontend api auth data pool; do "${DOCKER[@]}" rm -f "demo-$s" >/dev/null 2>&1; done
    "${DOCKER[@]}" network rm "$NET" >/dev/null 2>&1
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[$i]}" 2>/dev/null && wait "${PIDS[$i]}" 2>/dev/null
    done
}
trap cleanup EXIT

log "building the services (static, rustc) and their image"
mkdir -p "$OUT/image"
rustc --edition 2024 -O -C target-feature=+crt-static scripts/demo/demo-svc.rs -o "$OUT/image/demo-svc"
tar -C "$OUT/image" -cf "$OUT/demo.tar" demo-svc
"${DOCKER[@]}" import --change 'ENTRYPOINT ["/demo-svc"]' "$OUT/demo.tar" eunomia.demo/svc:1 >/dev/null

log "starting the agent (control socket $SOCK, metrics on :$AGENT_PORT)"
cat >"$OUT/eunomia.toml" <<TOML
[agent]
poll_interval = "1s"
[http]
enabled = true
# every request a span: the map and the traces count what the linker sees
sample_ratio = 1.0
max_spans_per_second = 100000
[enrich]
docker_root = "$DOCKER_ROOT"
[sinks.prometheus]
enabled = true
listen = "127.0.0.1:$AGENT_PORT"
TOML
"$EUNOMIA" run --config "$OUT/eunomia.toml" --socket "$SOCK" >"$OUT/agent.out" 2>"$OUT/agent.err" &
PIDS+=($!)
for _ in $(seq 60); do [ -S "$SOCK" ] && break; sleep 0.5; done

if [ -x /usr/bin/prometheus ]; then
    log "starting Prometheus on :$PROM_PORT"
    cat >"$OUT/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: eunomia
    static_configs:
      - targets: ['127.0.0.1:$AGENT_PORT']
YML
    /usr/bin/prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$OUT/prom-data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" >"$OUT/prometheus.log" 2>&1 &
    PIDS+=($!)
fi

log "starting the services on the Docker network $NET ($SUBNET.0/24)"
"${DOCKER[@]}" network create --subnet "$SUBNET.0/24" "$NET" >/dev/null
svc() { # name last-octet args...
    local name=$1 ip=$SUBNET.$2
    shift 2
    "${DOCKER[@]}" run -d --name "demo-$name" --network "$NET" --ip "$ip" \
        eunomia.demo/svc:1 serve --port 8080 "$@" >/dev/null
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/$ip/8080") 2>/dev/null && break; sleep 0.2; done
    echo "  demo-$name  $ip:8080  $*"
}
svc data 10 --fail-every "$FAIL_EVERY"
svc auth 11
svc api 12 --call "auth=$SUBNET.11:8080" --call "data=$SUBNET.10:8080"
svc frontend 13 --call "api=$SUBNET.12:8080"
svc pool 14 --call "data=$SUBNET.10:8080" --pool 2

log "waiting for the HTTP capture"
for _ in $(seq 60); do
    "$OUT/image/demo-svc" load --addr "$SUBNET.11:8080" --requests 1 >/dev/null
    "$EUNOMIA" map --json --socket "$SOCK" | grep -q '"server":"demo-auth"' && break
    sleep 1
done

log "load: $REQUESTS requests to frontend, $REQUESTS to pool"
echo "  frontend: $("$OUT/image/demo-svc" load --addr "$SUBNET.13:8080" --requests "$REQUESTS")"
echo "  pool:     $("$OUT/image/demo-svc" load --addr "$SUBNET.14:8080" --requests "$REQUESTS")"
sleep 5 # the linker holds spans 2 s for their parents; one more interval

log "the service map"
"$EUNOMIA" map -o "$OUT/map.svg" --socket "$SOCK"
"$EUNOMIA" map --json --socket "$SOCK" >"$OUT/map.json"
echo "  $OUT/map.svg (open it in a browser); the edges:"
python3 - "$OUT/map.json" <<'PY' 2>/dev/null || cat "$OUT/map.json"
import json, sys
m = json.load(open(sys.argv[1]))
for e in m["map"]["edges"]:
    if e["connection_type"] == "tcp":
        continue
    p99 = f'{e["p99_seconds"] * 1000:.1f} ms' if e["p99_seconds"] else "-"
    print(f'  {e["client"]:>22} -> {e["server"]:<22} {e["requests"]:>5} req {e["failed"]:>4} failed  p99 {p99}')
print("\n== link outcomes")
for k, v in sorted(m["links"]):
    print(f"  {k:<28} {v}")
print("\n== three traces")
traces = {}
for s in m["spans"]:
    traces.setdefault(s["trace_id"], []).append(s)
shown = 0
for tid, spans in traces.items():
    if not any(s["node"] == "demo-frontend" and s["kind"] == "server" for s in spans):
        continue
    print(f"  trace {tid}")
    by_id = {s["span_id"]: s for s in spans}
    def depth(s):
        d = 0
        while s.get("parent_id") in by_id and d < 16:
            s, d = by_id[s["parent_id"]], d + 1
        return d
    for s in sorted(spans, key=lambda s: (depth(s), s["kind"] != "client")):
        print(f'    {"  " * depth(s)}{s["kind"]:<6} {s["node"]:<16} {s["status"]} {s["duration_ns"] / 1e6:.2f} ms')
    shown += 1
    if shown == 3:
        break
PY

if [ -x /usr/bin/prometheus ]; then
    log "RED and service-graph metrics in Prometheus"
    q() {
        curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
            python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]
for x in r: print("  ", {k: v for k, v in x["metric"].items() if k in ("client","server","container_name","http_response_status_code","http_status_class")}, x["value"][1])' 2>/dev/null
    }
    sleep 2
    echo "  traces_service_graph_request_total"
    q 'sum by (client, server) (traces_service_graph_request_total{connection_type=""})'
    echo "  traces_service_graph_request_failed_total"
    q 'sum by (client, server) (traces_service_graph_request_failed_total)'
    echo "  http_server_request_duration_seconds_count by container and status class"
    q 'sum by (container_name, http_status_class) (http_server_request_duration_seconds_count)'
fi

if [ "${KEEP:-0}" = 1 ]; then
    log "running; Enter stops everything"
    read -r _
fi
