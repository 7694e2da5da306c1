#!/bin/sh
# Every run converges: after a reboot (supervisord restarted for real, the
# program autostart=false and so STOPPED), a cron `deploy` with nothing
# new starts the release current names and checks it; `activate` of the
# current release and `prune` do too; a program running another release
# is restarted into current; a current release that does not come up is
# not switched away from: exit 5 with the program's output.
. "$(dirname "$0")/lib.sh"

setup_root "check = python health.py $APPSTATE" "check_timeout = 5"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
ok "A runs" app_runs_from "$A"

# ---- a reboot: supervisord comes back with the program STOPPED
stop_supervisord
start_supervisord
is "$(app_state)" STOPPED "after supervisord's restart the program is STOPPED"
run_deploy status
like "$(out)" "*program: app STOPPED*" "status shows the program STOPPED"
run_deploy status --json
like "$(out)" '*"program": {"name": "app", "processes": \[{"name": "app", "state": "STOPPED", "pid": null, "release": null, "current": false}\]}*' \
    "status --json shows it too"
run_deploy -q deploy
rc_is 0 "cron deploy with nothing new: exit 0"
ok "it started the current release" app_runs_from "$A"
like "$(out)" "*program app was STOPPED: started ${A%"${A#????????????}"} and checked*" \
    "it says in one line what it did"
pid1=$(app_pid)
run_deploy status
like "$(out)" "*program: app RUNNING pid $pid1 (releases/$A, current)*" \
    "status shows the program RUNNING, its pid and release"
run_deploy status --json
like "$(out)" "*\"processes\": \\[{\"name\": \"app\", \"state\": \"RUNNING\", \"pid\": $pid1, \"release\": \"$A\", \"current\": true}\\]*" \
    "status --json: RUNNING, pid, release, current"
run_deploy deploy
rc_is 0 "again: exit 0"
like "$(out)" "*already current: nothing to do*" "nothing to do when it runs"
is "$(app_pid)" "$pid1" "and the program was not restarted"

# ---- stopped by hand: activate of the current release starts it
svctl stop app >/dev/null 2>&1
run_deploy activate "$A"
rc_is 0 "activate of the current release: exit 0"
ok "activate started it" app_runs_from "$A"

# ---- prune starts it too
svctl stop app >/dev/null 2>&1
run_deploy prune
rc_is 0 "prune: exit 0"
ok "prune started it" app_runs_from "$A"

# ---- the program runs another release than current
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B"
ok "B runs" app_runs_from "$B"
ln -s "releases/$A" "$ROOT/cur.tmp" && mv -T "$ROOT/cur.tmp" "$ROOT/current"
run_deploy deploy "$A"
rc_is 0 "deploy of A, current by hand, B running: exit 0"
like "$(out)" "*program app ran ${B%"${B#????????????}"}, not current*" "it says the program ran B"
ok "A runs now" app_runs_from "$A"

# ---- a current release that will not start: exit 5, no switch
touch "$ROOT/releases/$A/CRASH"
svctl stop app >/dev/null 2>&1
run_deploy deploy "$A"
rc_is 5 "current will not start: exit 5"
is "$(current_sha)" "$A" "current is not switched away"
like "$(err)" "*does not run*" "it says the current release does not run"
like "$(err)" "*CRASH present*" "and shows the program's output"
absent "$ROOT/.deploy/pending" && pass "no switch pending" || fail "no switch pending"
is "$(list_state "$A")" complete "the release stays complete"
rm "$ROOT/releases/$A/CRASH"
run_deploy deploy "$A"
rc_is 0 "fixed: the next run starts it"
ok "A runs again" app_runs_from "$A"

done_testing
