#!/bin/sh
# rollback walks back the completion order (A, B, C -> B -> A), rollback REV
# jumps; list and status say what is current, what rollback would pick, and
# whether a deploy runs.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "deploy C"

# ---- list
run_deploy list
rc_is 0 "list exits 0"
# INTERFACE.md: SHA  STATE  YYYY-MM-DD HH:MM:SS  MARK  LIFE  SUBJECT
# (columns may be padded; MARK is "-" when none)
LINE_RE='^[0-9a-f]{40}  +(complete|failed|incomplete|foreign)  +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}  +(current|rollback|-)  +(live|was-live|prepared|unmigrated|failed|-)  +v[0-9]$'
if grep -Evq -- "$LINE_RE" "$T/out"; then
	fail "list lines are SHA  STATE  DATE TIME  MARK  LIFE  SUBJECT"
	grep -Ev -- "$LINE_RE" "$T/out" | sed 's/^/# bad line: /' >&2
else
	pass "list lines are SHA  STATE  DATE TIME  MARK  LIFE  SUBJECT"
fi
is "$(awk '{ print $1 }' "$T/out" | tr '\n' ' ')" "$C $B $A " "list is newest first"
is "$(awk '{ print $2 }' "$T/out" | tr '\n' ' ')" "complete complete complete " "all complete"
is "$(awk '{ print $5 }' "$T/out" | tr '\n' ' ')" "current rollback - " "C current, B the rollback target"
today=$(date +%Y-%m-%d)
grep_ok "the time is when it was prepared (today)" "$T/out" "^$C  +complete  +$today "

# ---- status
run_deploy status
rc_is 0 "status exits 0"
grep_ok "status names the current release" "$T/out" \
	"^current: $C \(activated [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\)\$"
grep_ok "status names the rollback target" "$T/out" "^rollback: $B\$"
grep_ok "status says no deploy is running" "$T/out" "^running: no\$"

# ---- rollback chain
pid=$(app_pid)
run_deploy rollback
rc_is 0 "rollback exits 0"
is "$(current_link)" "releases/$B" "current is B"
ok "the app runs from B" app_runs_from "$B"
isnt "$(app_pid)" "$pid" "the app was restarted"
is "$(testruns_of "$B")" 1 "B was not rebuilt"
is "$(list_mark "$B")" current "list marks B current"
is "$(list_mark "$A")" rollback "and A the rollback target"
is "$(list_mark "$C")" "" "C is neither"
run_deploy status
grep_ok "status: current B" "$T/out" "^current: $B "
grep_ok "status: rollback A" "$T/out" "^rollback: $A\$"

run_deploy rollback
rc_is 0 "rollback again exits 0"
is "$(current_link)" "releases/$A" "current is A"
ok "the app runs from A" app_runs_from "$A"
run_deploy status
grep_ok "status: nothing to roll back to" "$T/out" "^rollback: none\$"

pid=$(app_pid)
before=$(tree_listing "$ROOT/releases")
run_deploy rollback
isnt "$rc" 0 "rollback with nothing before the oldest fails"
is "$(current_link)" "releases/$A" "current unchanged"
is "$(app_pid)" "$pid" "the app untouched"
is "$(tree_listing "$ROOT/releases")" "$before" "releases/ unchanged"

# ---- rollback REV
run_deploy rollback "$C"
rc_is 0 "rollback REV exits 0"
is "$(current_link)" "releases/$C" "current is C"
ok "the app runs from C" app_runs_from "$C"
run_deploy rollback "$(printf %.7s "$A")"
rc_is 0 "rollback PREFIX exits 0"
is "$(current_link)" "releases/$A" "current is A"
ok "the app runs from A" app_runs_from "$A"

pid=$(app_pid)
run_deploy rollback 1234567
rc_is 2 "rollback to an unknown REV exits 2"
is "$(current_link)" "releases/$A" "current unchanged"
is "$(app_pid)" "$pid" "the app untouched"

# list still lists by completion, whatever was activated since
run_deploy list
is "$(awk '{ print $1 }' "$T/out" | tr '\n' ' ')" "$C $B $A " \
	"list order is completion order, not activation order"

# status with no current
ROOT=$T/root2
mkdir -p "$ROOT"
run_deploy init "$REMOTE"
run_deploy status
rc_is 0 "status on a fresh root exits 0"
grep_ok "says current: none" "$T/out" "^current: none\$"
grep_ok "says rollback: none" "$T/out" "^rollback: none\$"
run_deploy list
rc_is 0 "list on a fresh root exits 0"
is "$(out)" "" "and lists nothing"

done_testing
