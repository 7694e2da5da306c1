#!/bin/sh
# The first five minutes: setup mistakes refused before anything is
# fetched or built (exit 2, nothing changed), -n reporting each check, a
# config template naming every key, a REVISION file in each release, what
# rollback switched from and to, a failed check's output collapsed with the
# program's own output shown, and what -w waits for.
. "$(dirname "$0")/lib.sh"

make_app
setup_root "check = python health.py $APPSTATE" "check_timeout = 3"

# ---- init writes a config that names every key, commented out
run "$DEPLOY" -C "$T/root2" init "$REMOTE" main
rc_is 0 "init of a second root: exit 0"
for key in keep virtualenv requirements reuse_venv build test program \
    supervisorctl supervisor restart check check_timeout link envfile timeout; do
	grep_ok "init's deploy.conf names $key, commented out" \
	    "$T/root2/shared/deploy.conf" "^# $key ="
done
grep_ok "and the repo and branch given, set" "$T/root2/shared/deploy.conf" "^branch = main\$"
run "$DEPLOY" -C "$T/root2" -n deploy
like "$(out)" "*would fetch*" "the template parses as it is"
run "$DEPLOY" -C "$T/root2" init "$T/other-remote"
rc_is 0 "init with another URL on an existing root: exit 0"
like "$(out)" "*still names repo = $REMOTE, not $T/other-remote*" \
    "it says the config still names the old URL"

# mirror_head: what the mirror knows of main (a fetch would change it)
mirror_head() {
	git --git-dir="$ROOT/repo" rev-parse --verify -q refs/heads/main
}

# refused DESC CONFLINES...: deploy refuses with 2 before fetching
refused() {
	_desc=$1
	shift
	write_conf "check = python health.py $APPSTATE" "$@"
	_head=$(mirror_head)
	_rel=$(releases)
	run_deploy deploy
	rc_is 2 "$_desc: exit 2"
	is "$(mirror_head)" "$_head" "$_desc: nothing fetched"
	is "$(releases)" "$_rel" "$_desc: nothing built"
}

A=$(new_commit first-release)

# ---- supervisord not running: its socket is not there
cat >"$T/down.conf" <<EOF
[supervisorctl]
serverurl=unix://$T/nobody-listens.sock
EOF
refused "supervisord down" "supervisorctl = supervisorctl -c $T/down.conf"
like "$(err)" "*program app*reach*" "supervisord down: the error says supervisorctl cannot reach it"
ok "supervisord down: one line" [ "$(wc -l <"$T/err")" -eq 1 ]

refused "program misspelled" "program = webap"
like "$(err)" "*program webap*does not know*" "program misspelled: the error names it"

refused "a group that does not exist" "program = web:*"
like "$(err)" "*web:**does not know*" "unknown group: the error names it"

refused "virtualenv command missing" "virtualenv = no-such-virtualenv -p python3"
like "$(err)" "*no-such-virtualenv*" "virtualenv missing: the error names it"

refused "supervisorctl command missing" "supervisorctl = no-such-supervisorctl"
like "$(err)" "*no-such-supervisorctl*" "supervisorctl missing: the error names it"

refused "a link path missing in shared/" "link = settings_local.py"
like "$(err)" "*shared/settings_local.py*" "missing link: the error names it"

# ---- -n runs the same checks and reports each one
write_conf "check = python health.py $APPSTATE" "program = webap"
run_deploy -n deploy
rc_is 2 "-n with a misspelled program: exit 2"
like "$(err)" "*preflight: program webap*" "-n reports the failing check"
like "$(out)" "*preflight: virtualenv command: ok*" "-n reports the passing ones too"
write_conf "check = python health.py $APPSTATE" "check_timeout = 3"
run_deploy -n deploy
rc_is 0 "-n with a sound setup: exit 0"
like "$(out)" "*preflight: program app: ok*" "-n says the program is known"

# ---- the program defined but STOPPED: a first deploy works
is "$(app_state)" STOPPED "the program is STOPPED before the first deploy"
run_deploy deploy
rc_is 0 "a first deploy with the program STOPPED works"
ok "the app runs from it" app_runs_from "$A"

# ---- REVISION in each release
is "$(cat "$ROOT/releases/$A/REVISION")" "$A" "releases/SHA/REVISION holds the full sha"
is "$(cat "$ROOT/current/REVISION")" "$A" "so the app reads current/REVISION"

# ---- rollback says from what to what, and warns about the branch
git -C "$APP" commit -q --allow-empty -m "second subject" 2>/dev/null
B=$(new_commit v2-with-a-subject)
run_deploy deploy
rc_is 0 "v2 deployed"
run_deploy rollback
rc_is 0 "rollback: exit 0"
like "$(out)" "*from ${B%"${B#???????????}"}*v2-with-a-subject*to ${A%"${A#???????????}"}*first-release*" \
    "rollback prints from and to, with short shas and subjects"
like "$(err)" "*still points to ${B%"${B#???????????}"}*next plain 'deploy' brings it back*" \
    "rollback warns that the branch still points to the release rolled away from"
run_deploy activate "$B"
rc_is 0 "activate: exit 0"
like "$(out)" "*activating from*to*v2-with-a-subject*" "activate prints from and to"
unlike "$(err)" "*still points*" "no branch warning when activating the branch's own release"

# ---- a failed check: repeated lines collapsed, the program's output shown
touch "$APP/BAD_HEALTH"
C=$(new_commit bad-health)
rm "$APP/BAD_HEALTH"
run_deploy deploy
rc_is 4 "a failing check: exit 4"
like "$(err)" "*health: BAD_HEALTH is present*repeated*more time*" \
    "the check's identical lines are shown once with a count"
is "$(grep -c 'health: BAD_HEALTH is present' "$T/err")" 1 "only once"
like "$(err)" "*supervisorctl tail app*" "it says where the program's own output is"

touch "$APP/CRASH"
D=$(new_commit crash)
rm "$APP/CRASH"
run_deploy deploy
rc_is 4 "an app that exits at once: exit 4"
like "$(err)" "*supervisorctl tail app*app: CRASH present*" \
    "the program's last lines are shown"

# ---- -w says once whom it waits for, in local time
write_conf "check = python health.py $APPSTATE" "test = python check_app.py $TESTRUNS 30"
rm -f "$TESTRUNS.started"
E=$(new_commit v3)
bg_deploy holder deploy
ok "a deploy holds the lock" wait_for 60 test -s "$TESTRUNS.started"
run_deploy -w 1 deploy
rc_is 3 "-w 1 gives up: exit 3"
is "$(grep -c 'waiting up to 1s' "$T/out")" 1 "it says once that it waits, and how long"
like "$(out)" "*pid $bgpid (deploy, since [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:*" \
    "for whom: pid, command, since when in local time"
like "$(err)" "*holds the lock*pid $bgpid (deploy, since *" "the lock message names the holder once"
unlike "$(err)" "*[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]*" "no raw epoch"
kill -TERM "$bgpid"
bg_wait

done_testing
