#!/bin/sh
# pause and resume: while paused, deploy and prepare refuse with exit 3
# naming who paused and why, building nothing, and no run starts the
# program on its own; rollback and activate by hand still work; status
# (text and --json) shows the pause; resume ends it.
. "$(dirname "$0")/lib.sh"

setup_root "check = python health.py $APPSTATE" "check_timeout = 5"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B"

run_deploy pause db migration tonight
rc_is 0 "pause: exit 0"
me=$(id -un)
like "$(out)" "*paused by $me (uid $(id -u))*db migration tonight*" "it says who paused and why"
pf=$ROOT/.deploy/pause
is "$(head -n 1 "$pf")" "deploy-pause 1" "the pause file starts with its format and version"
grep_ok "it records the reason" "$pf" '^reason db migration tonight$'
grep_ok "it records the uid" "$pf" "^uid $(id -u)\$"
grep_ok "it records when" "$pf" '^since [0-9]+$'

run_deploy status
like "$(out)" "*paused: by $me (uid $(id -u)) since *: db migration tonight*" "status shows the pause"
run_deploy status --json
like "$(out)" "*\"paused\": {\"user\": \"$me\", \"uid\": $(id -u), \"since\": *\"reason\": \"db migration tonight\"}*" \
    "status --json shows it"

C=$(new_commit v3)
nrel=$(releases)
run_deploy deploy
rc_is 3 "deploy while paused: exit 3"
like "$(err)" "*paused by $me*db migration tonight*resume*" "it names who paused, why, and resume"
is "$(releases)" "$nrel" "it built nothing"
is "$(testruns_of "$C")" 0 "not even the tests ran"
run_deploy prepare
rc_is 3 "prepare while paused: exit 3"

svctl stop app >/dev/null 2>&1
run_deploy prune
rc_is 0 "prune while paused: exit 0"
is "$(app_state)" STOPPED "it does not start the program on its own"
like "$(err)" "*paused*not starting it*" "and says so"

run_deploy rollback
rc_is 0 "rollback by hand while paused: exit 0"
ok "it runs A" app_runs_from "$A"
run_deploy activate "$B"
rc_is 0 "activate by hand while paused: exit 0"
ok "it runs B" app_runs_from "$B"

run_deploy resume
rc_is 0 "resume: exit 0"
absent "$pf" && pass "the pause file is gone" || fail "the pause file is gone"
run_deploy status --json
like "$(out)" '*"paused": null*' "status --json: paused null"
run_deploy deploy
rc_is 0 "deploy after resume: exit 0"
ok "it runs C" app_runs_from "$C"

done_testing
