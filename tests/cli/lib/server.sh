# Starting and stopping `bitnet serve` for the server tests. Source it after common.sh:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"
# Servers listen on 127.0.0.1 on a free port (--port 0) and are killed when the script exits.
SERVER_PIDS=()
trap 'for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# A small random-weight model (2B4T's layout) that answers in milliseconds; --ctx large enough
# for slow-ending streams. Arguments are passed on to `bitnet dummy`.
make_model() {  # FILE [dummy overrides...]
  local out=$1; shift
  "$BIN" dummy --shape 2b4t --type i2_s -o "$out" "${SMALL[@]}" --ctx 8192 "$@" 2>/dev/null
}

# start_server VAR LOG [serve options...]: starts the server, waits until /health is 200 and sets
# VAR to its base URL (and VAR_PID to its process id).
start_server() {
  local var=$1 log=$2; shift 2
  "$BIN" serve --port 0 -t 2 "$@" >"$log" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  local url=""
  for _ in $(seq 1 300); do
    if [[ -z $url ]]; then
      url=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/listening on //') || true
    fi
    if [[ -n $url && $(curl -s -o /dev/null -w '%{http_code}' "$url/health") == 200 ]]; then
      printf -v "$var" '%s' "$url"
      printf -v "${var}_PID" '%s' "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not become ready; its log:" >&2
  cat "$log" >&2
  return 1
}

# Installs the pinned npm clients (tests/server/package-lock.json) once; several tests may run this
# at the same time, so it holds a lock. Exits 77 (skip) when node or npm is missing.
need_node_clients() {
  command -v node >/dev/null && command -v npm >/dev/null || { echo "skip: node/npm not installed" >&2; exit 77; }
  local dir=$SRC/tests/server
  (
    flock 9
    if [[ ! -d $dir/node_modules/openai || ! -d $dir/node_modules/playwright-core ]]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi
  ) 9>"$dir/.npm-install.lock"
  export NODE_CLIENTS=$dir
}
