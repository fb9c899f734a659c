#!/usr/bin/env bash
# deploy/nginx.conf in front of two bitnet serve replicas on loopback: a load test through nginx
# during which one replica is killed. Requests running on it may fail; every request started after
# the kill must succeed (nginx retries connection failures on the other replica).
# Skips (77) when nginx is not installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" server_nginx "$@"
source "$SRC/tests/cli/lib/server.sh"
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) || { echo "skip: nginx is not installed" >&2; exit 77; }
need_node_clients
make_model small.gguf
start_server R1 r1.log -m small.gguf -np 2
start_server R2 r2.log -m small.gguf -np 2

# The example config with the replicas' ports, a free port for nginx and scratch paths. Another
# test may take the port between the check and nginx's bind: then nginx exits and another is tried.
mkdir -p nginx
NGINX_UP=0
for _ in $(seq 1 10); do
  PORT=$((20000 + RANDOM % 40000))
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && continue  # something listens there
  sed -e "s|127.0.0.1:8081|${R1#http://}|; s|127.0.0.1:8082|${R2#http://}|; s|listen 127.0.0.1:8080|listen 127.0.0.1:$PORT|" \
      -e "s|^http {|http {\n  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;\n  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;|" \
      "$SRC/deploy/nginx.conf" > nginx/nginx.conf
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2> nginx.log &
  NGINX_PID=$!
  for _ in $(seq 1 50); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health") == 200 ]] && { NGINX_UP=1; break; }
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  ((NGINX_UP)) && { SERVER_PIDS+=("$NGINX_PID"); break; }
  kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null
done
((NGINX_UP)) || { echo "FAIL: nginx did not start; its log:" >&2; cat nginx.log >&2; exit 1; }
rc=0
node "$NODE_CLIENTS/load.mjs" "http://127.0.0.1:$PORT" --clients 6 --seconds 8 --max-tokens 32 --kill "$R2_PID" --kill-after 3 \
  --kill-once-served r2.log || rc=$?
# Both replicas served before the kill (least_conn spreads the load).
grep -q "^request: POST /v1/chat/completions 200" r1.log || { echo "FAIL: replica 1 served nothing" >&2; rc=1; }
grep -q "^request: POST /v1/chat/completions 200" r2.log || { echo "FAIL: replica 2 served nothing" >&2; rc=1; }
((rc == 0)) || { echo "nginx log:" >&2; tail -5 nginx.log >&2; }
exit $rc
