#!/bin/sh
# make demo, as the README's quick start runs it, in DEMO_DIR=$T/demo so
# that the developer's ./demo is never touched: exit status, what the app
# served at each stage, where current points at the end, and that it runs
# a second time and make demo-clean stops its supervisord.
. "$(dirname "$0")/lib.sh"

D=$T/demo
# -o deploy: the binary under test is $DEPLOY, never a rebuild in the tree
demo() {
	run timeout -k 5 240 env DEPLOY="$DEPLOY" make -s -C "$TOP" -o deploy \
	    "$@" DEMO_DIR="$D"
}

demo demo
rc_is 0 "make demo exits 0"
url=$(sed -n 's|.* \(http://127\.0\.0\.1:[0-9]*/\) says: .*|\1|p' "$T/out" | head -n 1)
like "$url" "http://127.0.0.1:*/" "it serves on a loopback port"
grep_ok "v1 deployed and served" "$T/out" '^demo: deployed v1: .* says: hello from v1$'
grep_ok "v2 deployed and served" "$T/out" '^demo: deployed v2: .* says: hello from v2$'
grep_ok "list shows two complete releases, v2 current" "$T/out" \
    '^    [0-9a-f]{40} +complete .*current( .*)?$'
grep_ok "status names the current release" "$T/out" '^    current: [0-9a-f]{40} '
grep_ok "v3 fails its tests with exit 1 and v2 still serves" "$T/out" \
    '^demo: deploy of v3 .*exit 1: \[[0-9]+\] test FAILED.* still says: hello from v2$'
grep_ok "the rollback serves v1 again" "$T/out" '^demo: rolled back: .* says: hello from v1$'

v1=$(git -C "$D/app" rev-parse HEAD~2 2>/dev/null)
is "$(readlink "$D/root/current")" "releases/$v1" "current points to v1 on disk"
is "$(curl -fsS --max-time 5 "$url" 2>&1)" "hello from v1" \
    "the app answers v1 after the demo"
is "$(supervisorctl -c "$D/supervisord.conf" status demoapp |
    awk '{print $2}')" RUNNING "supervisord runs the program"
svpid=$(cat "$D/supervisord.pid" 2>/dev/null)

demo demo
rc_is 0 "make demo runs again over its own leftovers"
grep_ok "and again ends on v1" "$T/out" '^demo: rolled back: .* says: hello from v1$'
ok "the first run's supervisord is gone" sh -c "! kill -0 $svpid 2>/dev/null"

svpid=$(cat "$D/supervisord.pid" 2>/dev/null)
demo demo-clean
rc_is 0 "make demo-clean exits 0"
ok "its supervisord is stopped" wait_for 5 sh -c "! kill -0 $svpid 2>/dev/null"
ok "DEMO_DIR is removed" test ! -e "$D"

done_testing
