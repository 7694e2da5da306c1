#!/bin/sh
# A step failing before the switch: exit 1, current and the running app
# unchanged, no releases/<sha> left, the step named on stderr with the tail
# of its output, the full output kept in the log.  Tests, pip, build and a
# command that does not exist.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy"
pid=$(app_pid)

# expect_failed SHA STEP: the checks after a failed deploy of SHA
expect_failed() {
	rc_is 1 "exit status 1 when $2 fails"
	is "$(current_link)" "releases/$A" "current unchanged"
	ok "no releases/<sha> left behind" absent "$ROOT/releases/$1"
	grep_ok "stderr names the failed step '$2'" "$T/err" "^\[[0-9]+\] $2 FAILED"
	is "$(app_pid)" "$pid" "the app was not restarted"
	ok "it still runs from the old release" app_runs_from "$A"
	is "$(list_line "$1")" "" "list does not offer the failed build"
}

# ---- the test suite fails
touch "$APP/FAIL_TESTS"
B=$(new_commit broken-tests)
run_deploy deploy
expect_failed "$B" test
grep_ok "stderr shows the tail of the test's output" "$T/err" \
	"check_app: FAIL: test_release"
grep_ok "stderr says how it failed" "$T/err" "test FAILED.*exit status 1"
grep_ok "the log keeps the failed test's output" \
	"$ROOT/.deploy/logs/$B.log" "check_app: FAIL: test_release"
rm "$APP/FAIL_TESTS"

# ---- pip fails: a requirement no wheel provides
echo "no-such-package==9.9" >>"$APP/requirements.txt"
C=$(new_commit broken-requirements)
run_deploy deploy
expect_failed "$C" pip
grep_ok "stderr shows pip's complaint" "$T/err" "no-such-package"
git -C "$APP" checkout -q HEAD~1 -- requirements.txt

# ---- the build command fails (quoted words reach it as one argument)
D=$(new_commit build-fails)
write_conf 'build = python -c "import sys; print(\"building\"); sys.exit(7)"'
run_deploy deploy
expect_failed "$D" build
grep_ok "stderr says how it failed" "$T/err" "build FAILED.*exit status 7"
grep_ok "and shows its output" "$T/err" "building"
ok "the test step never ran" [ "$(testruns_of "$D")" -eq 0 ]

# ---- a test command that does not exist
write_conf "test = no-such-test-command --all"
run_deploy deploy
expect_failed "$D" test
grep_ok "stderr names the missing command" "$T/err" "no-such-test-command"

# ---- fixed: the same commit now deploys
write_conf
run_deploy deploy
rc_is 0 "after the fix the deploy exits 0"
is "$(current_link)" "releases/$D" "current is the new release"
ok "the app runs from it" app_runs_from "$D"
is "$(releases)" "$(printf '%s\n' "$A" "$D" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"releases/ holds only the two good releases"

done_testing
