#!/usr/bin/env bash
# bitnet serve with curl: /health while loading and after, every endpoint's JSON, SSE streams (chat,
# completions, /completion, responses), and bad input: malformed JSON, wrong types, missing fields,
# n > 1, tools, a prompt longer than a slot, an oversized body, API keys, a full queue.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" server "$@"
source "$SRC/tests/cli/lib/server.sh"

# check NAME COMMAND...: one check, counted.
check() { local name=$1; shift; if "$@"; then ok; else fail "$name"; fi; }
# req METHOD URL [BODY]: sets CODE, BODY (response body) and HEADERS.
req() {
  local method=$1 url=$2
  local args=(-s -X "$method" -D headers.txt -o body.txt -w '%{http_code}' "$url")
  (($# > 2)) && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  CODE=$(curl "${args[@]}" "${EXTRA[@]}") || CODE=000
  BODY=$(cat body.txt)
  HEADERS=$(cat headers.txt)
}
EXTRA=()
has() { [[ $BODY == *"$1"* ]]; }
expect() {  # NAME STATUS PATTERN: the last response had this status and holds this text
  if [[ $CODE == "$2" && $BODY == *"$3"* ]]; then ok; else fail "$1: got $CODE $BODY"; fi
}

# ---- while loading: opening the tokenizer file waits for a gate file (tests/cli/lib/gate_open.c) --
make_model small.gguf
cc -shared -fPIC -o gate_open.so "$SRC/tests/cli/lib/gate_open.c" -ldl
echo "not a tokenizer" > tokenizer.gated
LD_PRELOAD=$PWD/gate_open.so "$BIN" serve --port 0 -m small.gguf --tokenizer tokenizer.gated >loading.log 2>&1 &
LOADING_PID=$!
SERVER_PIDS+=("$LOADING_PID")
URL=""
for _ in $(seq 1 100); do
  URL=$(grep -o 'listening on http://127.0.0.1:[0-9]*' loading.log | sed 's/listening on //') || true
  [[ -n $URL ]] && break
  sleep 0.1
done
req GET "$URL/health"
expect "health while loading" 503 '"status":"loading model"'
req POST "$URL/v1/chat/completions" '{"messages":[{"role":"user","content":"hi"}]}'
expect "chat while loading" 503 '"type":"unavailable_error"'
touch tokenizer.gated.go  # the load goes on and fails: the server says why and exits 1
rc=0; wait "$LOADING_PID" || rc=$?
check "failed load exits 1" [ "$rc" = 1 ]
check "failed load is reported" grep -q "^error: " loading.log

# ---- a ready server --------------------------------------------------------------------------
start_server S s.log -m small.gguf -np 4 -c 4096 --metrics --alias tiny
req GET "$S/health"; expect "health" 200 '{"status":"ok"}'
req GET "$S/v1/models"; expect "models" 200 '"id":"tiny"'
req GET "$S/props"; expect "props" 200 '"total_slots":4'
check "props n_ctx is per slot" has '"n_ctx":1024'
req GET "$S/slots"; expect "slots" 200 '"is_processing":false'
req GET "$S/metrics"; expect "metrics" 200 'llamacpp:prompt_tokens_total'
for m in llamacpp:tokens_predicted_total llamacpp:requests_processing llamacpp:requests_deferred \
         llamacpp:n_decode_total llamacpp:prompt_tokens_seconds llamacpp:predicted_tokens_seconds \
         'vllm:num_requests_waiting{model_name="tiny"}' 'vllm:num_requests_running{model_name="tiny"}' \
         'vllm:kv_cache_usage_perc{model_name="tiny"}'; do
  check "metric $m" has "$m"
done
req GET "$S/"; expect "chat page" 200 '<title>bitnet chat</title>'
check "page is html" grep -qi '^content-type: text/html' headers.txt
req GET "$S/app.js"; expect "page script" 200 '/v1/chat/completions'

req POST "$S/tokenize" '{"content":"hello world"}'; expect "tokenize" 200 '"tokens":['
ids=$(grep -o '\[[0-9,]*\]' body.txt)
req POST "$S/detokenize" "{\"tokens\":$ids}"; expect "detokenize round trip" 200 '"content":"hello world"'
req POST "$S/tokenize" '{"content":"hi","with_pieces":true}'; expect "tokenize pieces" 200 '"piece":"h"'
req POST "$S/apply-template" '{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"}]}'
# dummy models carry the BitNet b1.58 2B4T template
expect "apply-template" 200 '"prompt":"System: S<|eot_id|>User: U<|eot_id|>Assistant: "'

CHAT='{"messages":[{"role":"user","content":"hello"}],"max_tokens":8,"temperature":0'
req POST "$S/v1/chat/completions" "$CHAT}"
expect "chat" 200 '"object":"chat.completion"'
check "chat finish" has '"finish_reason":"length"'
check "chat usage" has '"completion_tokens":8'
check "chat cached tokens field" has '"prompt_tokens_details":{"cached_tokens":'
req POST "$S/v1/chat/completions" '{"messages":[{"role":"user","content":[{"type":"text","text":"hel"},{"type":"text","text":"lo"}]}],"max_tokens":8,"temperature":0}'
expect "chat with text parts" 200 '"completion_tokens":8'
req POST "$S/v1/chat/completions" "$CHAT,\"logprobs\":true,\"top_logprobs\":3}"
expect "chat logprobs" 200 '"top_logprobs":[{"token":'
req POST "$S/v1/completions" '{"prompt":"Once upon a time","max_tokens":5,"temperature":0}'
expect "completions" 200 '"object":"text_completion"'
req POST "$S/completion" '{"prompt":"Once upon a time","n_predict":5,"temperature":0}'
expect "llama completion" 200 '"tokens_predicted":5'
check "llama completion stop type" has '"stop_type":"limit"'
req POST "$S/completion" '{"prompt":[1,2,3],"n_predict":3,"temperature":0}'
expect "llama completion from token ids" 200 '"tokens_evaluated":3'
req POST "$S/v1/responses" '{"input":"hello","max_output_tokens":4,"temperature":0}'
expect "responses" 200 '"object":"response"'
check "responses output text" has '"type":"output_text"'

# ---- SSE ---------------------------------------------------------------------------------------
sse() { curl -sN "$S$1" -H 'Content-Type: application/json' -d "$2" > sse.txt; }
sse /v1/chat/completions "$CHAT,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
check "sse: chat chunks" [ "$(grep -c '^data: {"id":"chatcmpl-' sse.txt)" -ge 10 ]
check "sse: first chunk has the role" grep -q '"delta":{"role":"assistant"' <(head -1 sse.txt)
check "sse: ends with [DONE]" [ "$(grep -v '^$' sse.txt | tail -1)" = "data: [DONE]" ]
check "sse: usage chunk" grep -q '"choices":\[\],"usage":{"prompt_tokens":' sse.txt
check "sse: finish reason" grep -q '"finish_reason":"length"' sse.txt
check "sse: events are separated by blank lines" [ "$(grep -c '^$' sse.txt)" = "$(grep -c '^data: ' sse.txt)" ]
# The streamed text equals the non-streamed answer.
req POST "$S/v1/chat/completions" "$CHAT}"
whole=$(grep -o '"content":"[^"]*"' body.txt | head -1 | sed 's/"content":"//; s/"$//')
streamed=$(grep -o '"delta":{"content":"[^"]*"' sse.txt | sed 's/.*"content":"//; s/"$//' | tr -d '\n')
check "sse: streamed text equals the whole reply" [ "$whole" = "$streamed" ]
sse /v1/completions '{"prompt":"Once","max_tokens":4,"temperature":0,"stream":true}'
check "sse: completions" grep -q '"object":"text_completion"' sse.txt
check "sse: completions [DONE]" grep -q '^data: \[DONE\]' sse.txt
sse /completion '{"prompt":"Once","n_predict":4,"temperature":0,"stream":true}'
check "sse: /completion tokens" [ "$(grep -c '"stop":false' sse.txt)" -ge 1 ]
check "sse: /completion final" grep -q '"stop":true' sse.txt
sse /v1/responses '{"input":"hi","max_output_tokens":4,"temperature":0,"stream":true}'
for e in response.created response.output_text.delta response.output_text.done response.incomplete; do  # ended by max_output_tokens
  check "sse: responses $e" grep -q "^event: $e" sse.txt
done

# ---- bad input ---------------------------------------------------------------------------------
req POST "$S/v1/chat/completions" '{"messages": [ {"role":"user",'; expect "malformed JSON" 400 'malformed JSON'
req POST "$S/v1/chat/completions" ''; expect "empty body" 400 'empty'
req POST "$S/v1/chat/completions" '[1,2]'; expect "not an object" 400 'must be a JSON object'
req POST "$S/v1/chat/completions" '{}'; expect "missing messages" 400 "'messages' is required"
req POST "$S/v1/chat/completions" '{"messages":[]}'; expect "no messages" 400 'at least one message'
req POST "$S/v1/chat/completions" '{"messages":[{"content":"x"}]}'; expect "missing role" 400 "needs a 'role'"
req POST "$S/v1/chat/completions" '{"messages":[{"role":"wizard","content":"x"}]}'; expect "unknown role" 400 'unknown role'
req POST "$S/v1/chat/completions" '{"messages":[{"role":"user","content":5}]}'; expect "content type" 400 'must be a string or an array'
req POST "$S/v1/chat/completions" "$CHAT,\"temperature\":\"hot\"}"; expect "temperature type" 400 "'temperature' must be a number"
req POST "$S/v1/chat/completions" "$CHAT,\"max_tokens\":1.5}"; expect "max_tokens type" 400 "'max_tokens' must be an integer"
req POST "$S/v1/chat/completions" "$CHAT,\"top_p\":7}"; expect "top_p range" 400 "'top_p' must be in [0, 1]"
req POST "$S/v1/chat/completions" "$CHAT,\"stream\":\"yes\"}"; expect "stream type" 400 "'stream' must be a boolean"
req POST "$S/v1/chat/completions" "$CHAT,\"stop\":[1]}"; expect "stop type" 400 "'stop' must be a string or an array"
req POST "$S/v1/chat/completions" "$CHAT,\"n\":2}"; expect "n > 1" 400 "'n' must be 1"
req POST "$S/v1/chat/completions" "$CHAT,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}"
expect "tools" 400 "'tools' (function calling) is not supported"
req POST "$S/v1/chat/completions" '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}'
expect "image parts" 400 'only text'
req POST "$S/v1/completions" '{"max_tokens":3}'; expect "completions without prompt" 400 "'prompt' is required"
req POST "$S/completion" '{"prompt":[1,-4]}'; expect "negative token id" 400 'invalid token id'
req POST "$S/completion" '{"prompt":[999999]}'; expect "token outside the vocabulary" 400 'vocabulary'
req POST "$S/detokenize" '{"tokens":"x"}'; expect "detokenize type" 400 "'tokens'"
long=$(printf 'word %.0s' $(seq 1 1200))
req POST "$S/v1/completions" "{\"prompt\":\"$long\",\"max_tokens\":1}"; expect "prompt longer than a slot" 400 "context"
check "too long names the slot context" has '1024'
head -c $((9 << 20)) /dev/zero | tr '\0' 'a' > big.json
CODE=$(curl -s -o body.txt -w '%{http_code}' "$S/v1/completions" -H 'Content-Type: application/json' --data-binary @big.json) || true
BODY=$(cat body.txt); expect "body over 8 MiB" 413 '"code":413'
req GET "$S/no/such/thing"; expect "unknown path" 404 '"type":"not_found_error"'
req POST "$S/v1/chat/completions" "$CHAT}"; expect "still serving after bad input" 200 '"object":"chat.completion"'
check "log line per request" grep -q '^request: POST /v1/chat/completions 200 | prompt [0-9]* (cached [0-9]*) | predicted 8 | ' s.log

# ---- API keys ----------------------------------------------------------------------------------
printf 'key-one\nkey-two\n' > keys.txt
start_server K k.log -m small.gguf -np 1 --api-key-file keys.txt
req GET "$K/health"; expect "health needs no key" 200 '"status":"ok"'
req POST "$K/v1/chat/completions" "$CHAT}"; expect "missing key" 401 '"type":"authentication_error"'
EXTRA=(-H 'Authorization: Bearer wrong'); req POST "$K/v1/chat/completions" "$CHAT}"; expect "wrong key" 401 'API key'
EXTRA=(-H 'Authorization: Bearer key-two'); req POST "$K/v1/chat/completions" "$CHAT}"; expect "right key" 200 '"object":"chat.completion"'
EXTRA=(-H 'X-Api-Key: key-one'); req GET "$K/props"; expect "X-Api-Key" 200 '"total_slots":1'
EXTRA=()

# ---- a full queue: one slot busy, one request waiting, the next is refused with Retry-After ------
start_server Q q.log -m small.gguf -np 1 --max-queue 1 -c 8192
LONG='{"prompt":"a","n_predict":100000,"temperature":0,"stream":true}'
curl -sN "$Q/completion" -d "$LONG" > /dev/null & busy1=$!
sleep 0.3
curl -sN "$Q/completion" -d "$LONG" > /dev/null & busy2=$!
sleep 0.3
req POST "$Q/completion" '{"prompt":"b","n_predict":2}'
expect "queue full" 503 '"type":"unavailable_error"'
check "queue full says when to retry" grep -qi '^retry-after: ' headers.txt
kill "$busy1" "$busy2" 2>/dev/null; wait "$busy1" "$busy2" 2>/dev/null || true
# The clients went away: their slot and queue place are free again at once.
for _ in $(seq 1 20); do
  req POST "$Q/completion" '{"prompt":"b","n_predict":2}'
  [[ $CODE == 200 ]] && break
  sleep 0.1
done
expect "slot freed after the clients left" 200 '"tokens_predicted":2'

report
