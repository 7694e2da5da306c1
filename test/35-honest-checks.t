#!/bin/sh
# Checks that say the truth (issue 18, items 1-4):
#   1. a restart command from the release's own venv (a console script of
#      a wheel in requirements.txt) is not refused by the preflight; it is
#      looked for once .venv/bin exists, before the tests; activate and
#      rollback look for it in the release they switch to;
#   2. -n with a remote that cannot be reached says so with git's error,
#      marks the mirror's sha stale, and exits 1;
#   3. -n checks that test, check, migrate and notify can run: an
#      absolute path is an executable file, a path in the repository is
#      mode 100755 in git's tree at the ref;
#   4. an unquoted shell operator in a command is warned about at config
#      load, with file:line; the config stays valid.
. "$(dirname "$0")/lib.sh"

setup_root "-program" "test = python check_app.py $TESTRUNS"
A=$(sha_of HEAD)
CONF=$ROOT/shared/deploy.conf

# ---- 1. restart = a console script of the app's own wheel
mkwheel "$T/wheels" appctl 1.0 --script appctl \
    >/dev/null || bail "mkwheel appctl failed"
write_conf "-program" "restart = appctl"
run_deploy deploy "$A"
rc_is 1 "A has no appctl in its venv: exit 1 (a step failed before the switch)"
like "$(err)" "*restart command: 'appctl' is neither in the release's .venv/bin nor on PATH*" \
	"it says where appctl was looked for"
n=$(testruns_of "$A")
is "${n:-0}" 0 "and said so before the tests ran"
unlike "$(err)" "*is not on PATH (install it*" "not refused as missing from PATH"

printf 'appdep==1.0\nappctl==1.0\n' >"$APP/requirements.txt"
B=$(new_commit v2-appctl)
run_deploy deploy "$B"
rc_is 0 "B lists appctl in requirements.txt: restart = appctl deploys (exit 0)"
grep_ok "the restart step ran" "$T/out" "^\[[0-9]+\] restart ok"
is "$(current_sha)" "$B" "current is B"
C=$(new_commit v3-appctl)
run_deploy deploy "$C"
rc_is 0 "C deploys with restart = appctl"
run_deploy -n rollback
rc_is 0 "rollback -n with restart = appctl: exit 0"
like "$(out)" "*restart command: ok in releases/${B%"${B#????????????}"}*" \
	"-n looked for appctl in the release rollback would switch to"
run_deploy rollback
rc_is 0 "rollback with restart = appctl: exit 0"
is "$(current_sha)" "$B" "current is B again"
run_deploy activate "$C"
rc_is 0 "activate C with restart = appctl: exit 0"

# ---- 3. -n checks the commands' files
printf '#!/bin/sh\nexit 0\n' >"$APP/health.sh"
chmod 0644 "$APP/health.sh"
D=$(new_commit v4-health)
printf '#!/bin/sh\nexit 0\n' >"$T/notify.sh"
chmod 0644 "$T/notify.sh"
write_conf "-program" "check = ./health.sh" "notify = $T/notify.sh"
run_deploy -n deploy
rc_is 2 "-n: a check script not executable in git, a notify not executable: exit 2"
like "$(err)" "*check command: health.sh is not executable in the repository*chmod=+x*" \
	"-n names the check script that git holds without its execute bit"
like "$(err)" "*notify command: $T/notify.sh is not an executable file*" \
	"-n names the notify script without its execute bit"
is "$(current_sha)" "$C" "-n changed nothing"

chmod 0755 "$APP/health.sh" "$T/notify.sh"
E=$(new_commit v5-health-x)
write_conf "-program" "check = ./health.sh" "notify = $T/notify.sh" \
    "migrate = bin/missing"
run_deploy -n deploy
rc_is 2 "-n: a migrate path that is not in the repository: exit 2"
like "$(err)" "*migrate command: bin/missing is not in the repository at*" \
	"-n says the migrate path is not in the repository"
like "$(out)" "*check command: ok*" "the executable check script is ok"
like "$(out)" "*notify command: ok*" "the executable notify script is ok"
write_conf "-program" "check = ./health.sh" "notify = $T/notify.sh"
run_deploy -n deploy
rc_is 0 "-n with every command runnable: exit 0"
write_conf "-program" "check = ./health.sh" "restart = appctl"
run_deploy -n deploy "$B"
rc_is 2 "-n to the built release B, whose tree has no health.sh: exit 2"
like "$(err)" "*check command: health.sh is not in the repository at ${B%"${B#????????????}"}*" \
	"-n checks the commands of a release that is already built too"
like "$(out)" "*restart command: ok in releases/${B%"${B#????????????}"}*" \
	"and looks for the restart command in that release"

# ---- 4. a command written for a shell
write_conf "-program" "check = curl -sf 'http://127.0.0.1:1/' && echo ok"
line=$(grep -n '^check' "$CONF" | cut -d: -f1)
run_deploy -n deploy
rc_is 0 "a shell operator in check: -n still exits 0 (the config is valid)"
like "$(err)" "*warning: $CONF:$line: check: '&&' is a shell operator*curl*script*" \
	"warned with file:line, the operator and the advice of a script"
write_conf "-program" "test = python check_app.py 2>&1" "build = echo '|' \\;"
run_deploy -n deploy
like "$(err)" "*test: '2>&1' is a shell operator*" "2>&1 is warned about"
unlike "$(err)" "*build:*" "a quoted or escaped operator is not"

# ---- 2. a remote that cannot be reached
write_conf "-program"
mv "$APP" "$APP.away"
run_deploy -n deploy
rc_is 1 "-n with the remote gone: exit 1"
like "$(err)" "*cannot reach the remote $APP:*$APP*" \
	"it says the remote cannot be reached, with git's error"
like "$(out)" "*HEAD was [0-9a-f]* in the mirror at its last fetch (stale*" \
	"the mirror's sha is labelled stale"
unlike "$(out)" "*is [0-9a-f]* on the remote*" "no sha is said to be the remote's"
mv "$APP.away" "$APP"
run_deploy -n deploy
rc_is 0 "-n with the remote back: exit 0"

done_testing
