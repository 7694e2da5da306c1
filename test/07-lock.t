#!/bin/sh
# One deploy at a time: a second one exits 3 at once naming the holder's
# pid (and does not release the holder's lock); -w waits and then succeeds;
# -w with too short a wait gives up with 3; list and status work meanwhile.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy"

# a test suite that takes a while, so the lock is held long enough
write_conf "test = python check_app.py $TESTRUNS 10"
B=$(new_commit v2)
C=$(new_commit v3)
rm -f "$TESTRUNS.started"
bg_deploy holder deploy "$B"
ok "the first deploy reaches its test step" wait_for 60 test -s "$TESTRUNS.started"

t0=$(now_ms)
run_deploy deploy "$C"
t1=$(now_ms)
rc_is 3 "a second deploy exits 3"
like "$(err)" "*$bgpid*" "and names the holder's pid ($bgpid)"
ok "at once, not after the holder is done ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 3000 ]
ok "it built nothing" absent "$ROOT/releases/$C"

for cmd in "rollback" "prune" "activate $A"; do
	run_deploy $cmd
	rc_is 3 "'$cmd' during a deploy exits 3"
done

run_deploy deploy "$C"
rc_is 3 "a refused deploy did not take the holder's lock away"

run_deploy status
rc_is 0 "status works during a deploy"
grep_ok "status says who is running" "$T/out" \
	"^running: pid $bgpid since [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \(.*deploy.*\)\$"
run_deploy list
rc_is 0 "list works during a deploy"
grep_ok "the lock file says who holds it" "$ROOT/.deploy/lock" "^pid $bgpid started [0-9]+ "

t0=$(now_ms)
run_deploy -w 1 deploy "$C"
t1=$(now_ms)
rc_is 3 "-w 1 gives up with 3 when the holder takes longer"
ok "after about a second ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 900 -a $((t1 - t0)) -lt 5000

run_deploy -w 120 deploy "$C"
rc_is 0 "-w 120 waits for the holder, then deploys"
bg_wait
is "$bgrc" 0 "the holder finished its deploy"
[ "$bgrc" = 0 ] || show_bg
is "$(current_link)" "releases/$C" "the waiting deploy ran after the holder's"
ok "the app runs from it" app_runs_from "$C"
is "$(sed -n 's/^rev=\([0-9a-f]*\) .*/\1/p' "$TESTRUNS" | tail -n 2 | tr '\n' ' ')" "$B $C " \
	"the two test steps ran one after the other"

run_deploy status
grep_ok "status: nothing running afterwards" "$T/out" "^running: no\$"

done_testing
