#!/bin/sh
# `timeout`: a test suite that hangs, with children (one deaf to SIGTERM),
# is killed with its whole process group within timeout + grace; the step
# fails naming the timeout; nothing of it survives; the next deploy works.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy"
pid=$(app_pid)

B=$(new_commit v2)
write_conf "timeout = 2" "test = ./hang.sh $T/hang.pids"
MARK=hang
t0=$(now_ms)
run_deploy deploy
t1=$(now_ms)
MARK=main
rc_is 1 "a hanging test step fails the deploy: exit 1"
ok "it was stopped within timeout + grace ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 20000 ]
ok "not before the timeout" [ $((t1 - t0)) -ge 2000 ]
grep_ok "stderr names the test step" "$T/err" "^\[[0-9]+\] test FAILED"
grep_ok "and the timeout" "$T/err" "test FAILED.*time"
ok "the test suite had started its children" [ "$(wc -l <"$T/hang.pids")" -eq 3 ]
left=
for p in $(cat "$T/hang.pids"); do
	alive "$p" && left="$left $p"
done
is "$left" "" "hang.sh and both children are gone, the TERM-deaf one too"
[ -z "$left" ] || ps_of $left | sed 's/^/#   /' >&2
no_marked_procs "no process of that deploy is left" hang
is "$(current_link)" "releases/$A" "current unchanged"
ok "no partial release left" absent "$ROOT/releases/$B"
is "$(app_pid)" "$pid" "the app untouched"

write_conf
run_deploy deploy
rc_is 0 "the next deploy works"
is "$(current_link)" "releases/$B" "and switches"
ok "the app runs from it" app_runs_from "$B"

# timeout = 0: no limit (a quick step still passes)
C=$(new_commit v3)
write_conf "timeout = 0" "test = python check_app.py $TESTRUNS 3"
run_deploy deploy
rc_is 0 "timeout = 0 lets a 3 s test step finish"
is "$(current_link)" "releases/$C" "and deploys"

done_testing
