#!/usr/bin/env bash
# The chat page in Chromium (playwright-core, tests/server/page.test.mjs): readable streamed replies
# from the shipped demo model, reload from localStorage, settings, a phone-sized viewport; and on a
# slower random model (2B4T's width, 2 layers: tens of tokens/s) a long reply stopped by the button.
# Skips (77) when Debian's chromium is not installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" server_page "$@"
source "$SRC/tests/cli/lib/server.sh"
[[ -x /usr/bin/chromium ]] || { echo "skip: /usr/bin/chromium is not installed (scripts/install-deps.sh)" >&2; exit 77; }
need_node_clients
DEMO=$SRC/models/bitnet-demo-stories
"$BIN" dummy --shape 2b4t --type i2_s -o slow.gguf --embd 2560 --layers 2 --ff 6912 --heads 20 --heads-kv 5 \
  --vocab 1000 --ctx 4096 2>/dev/null
start_server D d.log -m "$DEMO.gguf" -np 2 --alias demo-stories
start_server S s.log -m slow.gguf -np 1 -c 4096 --alias slow
rc=0
node "$NODE_CLIENTS/page.test.mjs" "$D" "$S" "$WORK/chromium-profile" "$DEMO.words" || rc=$?
((rc == 0)) || { echo "server logs:" >&2; tail -20 d.log s.log >&2; }
exit $rc
