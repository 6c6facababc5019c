#!/usr/bin/env bash
# The agent's CPU per HTTP request when every request has a path of its
# own (`/users/<n>`, a wrk Lua script): the worst case of the kernel's RED
# series map (a series per distinct path, the map full within the
# interval, the rest sent as records). Two builds alternate, REPS pairs:
#
#   bash scripts/bench-http-paths.sh BIN_A BIN_B [REPS]
#
# nginx (one worker, `return 200`) on 127.0.0.1:18482, `eunomia run` with
# the default [http] (no tools, rules off), `wrk -t2 -c8 -d5s`; the
# agent's utime+stime from /proc over wrk's requests (both sides of each
# request are on this host). Run as root, nothing else running.
set -u
[ $# -ge 2 ] || { sed -n 2,12p "$0"; exit 2; }
A=$1; B=$2; REPS=${3:-3}
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
cat > "$W/unique.lua" <<'EOL'
counter = 0
request = function()
   counter = counter + 1
   return wrk.format(nil, "/users/" .. counter)
end
EOL
cat > "$W/agent.toml" <<EOC
[agent]
poll_interval = "1s"
control_socket = "$W/agent.sock"
[tools]
enabled = []
[rules]
enabled = false
[enrich]
container_stats = false
EOC
cat > "$W/nginx.conf" <<EOC
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:18482; location / { return 200 "ok\n"; } } }
EOC
nginx -c "$W/nginx.conf" -g 'daemon off;' &
sleep 0.5
hz=$(getconf CLK_TCK)
for rep in $(seq "$REPS"); do
  for bin in "$A" "$B"; do
    "$bin" run --config "$W/agent.toml" > "$W/agent.log" 2>&1 &
    agent=$!
    for _ in $(seq 100); do grep -q "hot path attached" "$W/agent.log" && break; sleep 0.2; done
    t0=$(awk '{print $14+$15}' /proc/$agent/stat)
    reqs=$(wrk -t2 -c8 -d5s -s "$W/unique.lua" http://127.0.0.1:18482/ | awk '/requests in/{print $1}')
    sleep 2.5 # the interval's series read
    t1=$(awk '{print $14+$15}' /proc/$agent/stat)
    kill -INT $agent; wait $agent
    echo "rep $rep $bin: $reqs requests, agent $(( (t1 - t0) * 1000000000 / hz / reqs )) ns per request"
  done
done
