#!/bin/sh
# The command line at the edges: options after any command ("deploy
# rollback -n" is a dry run, "deploy deploy -w 10 main" deploys); a
# malformed REV is refused with 2 before the lock (it neither waits for nor
# reports another run's lock); `list` rows have no trailing spaces, for
# foreign and incomplete entries too; the log names the app's real pid
# after a restart.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)

run_deploy deploy
rc_is 0 "first deploy (A)"
# the log line after the restart names the app's real pid
set -- $(app_status)
apid=${2:-none}
ok "the app runs from A" app_runs_from "$A"
grep_ok "A's log names the app's pid ($apid) after the restart" \
	"$ROOT/.deploy/logs/$A.log" "^app is RUNNING \(pid $apid\)\$"

# ---- options after the command
B=$(new_commit v2)
run_deploy deploy -w 10 main
rc_is 0 "'deploy deploy -w 10 main' deploys"
is "$(current_link)" "releases/$B" "current is B"

before=$(tree_listing "$ROOT")
run_deploy rollback -n
rc_is 0 "'deploy rollback -n' exits 0"
like "$(out)" "*would switch*$A*" "it says what it would do"
is "$(tree_listing "$ROOT")" "$before" "and changes nothing under ROOT"
is "$(current_link)" "releases/$B" "current is still B"

run_deploy activate -q "$A"
rc_is 0 "'deploy activate -q A' works"
is "$(out)" "" "quietly"
is "$(current_link)" "releases/$A" "current is A"

run_deploy activate -- -q
rc_is 2 "after '--', '-q' is a REV, and refused: exit 2"

# -c FILE after the command takes FILE: a config of its own, whose notify
# says it was read
sed '/^notify/d' "$ROOT/shared/deploy.conf" >"$T/other.conf"
echo "notify = sh -c 'echo \$DEPLOY_EVENT \$DEPLOY_STATUS >>$T/other.notified'" \
    >>"$T/other.conf"
run_deploy list -c "$T/other.conf"
rc_is 0 "'deploy list -c FILE' exits 0"
like "$(out)" "*$A  *current*" "and lists the releases"
# (notify runs only when something was done: B's release, not current)
run_deploy deploy -c "$T/other.conf" "$B"
rc_is 0 "'deploy deploy -c FILE B' exits 0 (a switch to B's release)"
is "$(cat "$T/other.notified" 2>/dev/null)" "deploy 0" "it read FILE: FILE's notify ran"
run_deploy activate -q "$A"
rc_is 0 "back to A"

# ---- arguments checked before the lock
write_conf "test = python check_app.py $TESTRUNS 1000"
C=$(new_commit v3)
rm -f "$TESTRUNS.started"
bg_deploy holder deploy "$C"
ok "a deploy holds the lock (in its test step)" \
	wait_for 60 test -s "$TESTRUNS.started"
for args in "activate zz" "rollback 123" "-w 30 activate zz" \
    "rollback -w 30 123" "activate"; do
	t0=$(now_ms)
	run_deploy $args
	t1=$(now_ms)
	rc_is 2 "'deploy $args' during a deploy: exit 2"
	unlike "$(err)" "*lock*" "it does not report the lock"
	ok "at once ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 3000 ]
done

# ---- list: no trailing spaces, an incomplete and a foreign entry too
kill -9 "$bgpid"
bg_wait
mkdir "$ROOT/releases/not-a-release"
: >"$ROOT/releases/stray-file"
run "$DEPLOY" -C "$ROOT" list
rc_is 0 "list exits 0"
is "$(list_state "$C")" incomplete "the killed deploy's release is incomplete"
is "$(list_state not-a-release)" foreign "a folder deploy did not make is foreign"
is "$(list_state stray-file)" foreign "so is a file"
is "$(list_mark "$A")" current "A is current"
grep_nok "no line of list ends in a space" "$T/out" ' $'
grep_nok "no line of list ends in a tab" "$T/out" '	$'

done_testing
