#!/usr/bin/env bash
# bitnet serve with the openai npm client (tests/server/openai.test.mjs): chat, streaming,
# completions, responses, errors, concurrency equal to sequential answers, disconnect; a
# conversation with the shipped demo model that reads as text.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" server_openai "$@"
source "$SRC/tests/cli/lib/server.sh"
need_node_clients
make_model small.gguf
start_server S s.log -m small.gguf -np 4 -c 32768 --alias tiny --metrics
start_server K k.log -m small.gguf -np 1 --alias tiny --api-key secret-key --sse-keepalive 0.2
DEMO=$SRC/models/bitnet-demo-stories
start_server D d.log -m "$DEMO.gguf" -np 1 --alias demo-stories
rc=0
node "$NODE_CLIENTS/openai.test.mjs" "$S" "$K" secret-key "$D" "$DEMO.words" || rc=$?
((rc == 0)) || { echo "server log:" >&2; tail -20 s.log >&2; }
exit $rc
