#!/bin/sh
# deploy end to end: a release per commit at releases/<full sha>, a
# relative current, the app restarted from it; no command means deploy;
# the current commit again is a no-op; an existing complete release is
# switched to without a rebuild; REF as sha, prefix, annotated tag, branch;
# -q, -v and the per-release log.
. "$(dirname "$0")/lib.sh"
SEED_VENV=0	# the first deploy builds its venv: that is tested here

setup_root
A=$(sha_of HEAD)
R=$ROOT/releases/$A

run_deploy deploy
rc_is 0 "deploy exits 0"
is "$(current_link)" "releases/$A" "current is the relative link releases/<full sha>"
ok "releases/<sha> is a real directory" real_dir "$R"
is "$(cat "$ROOT/current/VERSION")" v1 "current/VERSION is the commit's"
ok "the release holds the checkout" test -f "$R/app.py" -a -f "$R/check_app.py"
ok "the release has its virtualenv at .venv" [ -x "$R/.venv/bin/python" ]
ok "pip installed the requirements into it" "$R/.venv/bin/python" -c 'import appdep'
ok "the checkout does not borrow the mirror's objects" \
	sh -c '[ ! -f "$1/.git" ] && [ ! -s "$1/.git/objects/info/alternates" ]' sh "$R"
is "$(app_state)" RUNNING "the app is RUNNING"
is "$(app_cwd)" "$R" "the running app's cwd is the release"
is "$(testruns_of "$A")" 1 "the test step ran once"
grep_ok "the test ran in the release" "$TESTRUNS" "^rev=$A cwd=$R release=$R root=$ROOT "
grep_ok "the test ran with the release's python" "$TESTRUNS" "^rev=$A .* prefix=$ROOT/"
for step in fetch checkout venv pip test switch restart; do
	grep_ok "step '$step' reported ok with its time" "$T/out" \
		"^\[[0-9]+\] $step ok [0-9.]+s\$"
done
grep_nok "no step failed" "$T/out" "FAILED"
grep_nok "without -v the test's own output is not shown" "$T/out" "check_app: OK"
grep_ok "the log of the deploy holds every step's output" \
	"$ROOT/.deploy/logs/$A.log" "check_app: OK, all tests passed"

# ---- no command is deploy
B=$(new_commit v2)
pid=$(app_pid)
run timeout -k 5 "$DEPLOY_TEST_LIMIT" "$DEPLOY" -C "$ROOT"
rc_is 0 "deploy with no command exits 0"
is "$(current_link)" "releases/$B" "and deploys the new head"
ok "the app runs from the new release" app_runs_from "$B"
isnt "$(app_pid)" "$pid" "the app was restarted"

# ---- the current commit again: nothing to do
pid=$(app_pid)
before=$(tree_listing "$ROOT/releases")
run_deploy deploy
rc_is 0 "deploying the current commit again exits 0"
like "$(cat "$T/out" "$T/err")" "*current*" "and says it is already current"
is "$(current_link)" "releases/$B" "current unchanged"
is "$(testruns_of "$B")" 1 "no rebuild: the test step did not run again"
is "$(tree_listing "$ROOT/releases")" "$before" "releases/ unchanged"
is "$(app_pid)" "$pid" "the app was not restarted"

# ---- an existing complete release: switched to, not rebuilt
inode=$(stat -c %i "$R/app.py")
run_deploy deploy "$A"
rc_is 0 "deploy of an older, complete release exits 0"
is "$(current_link)" "releases/$A" "current points to it"
ok "the app runs from it" app_runs_from "$A"
is "$(testruns_of "$A")" 1 "the test step did not run again"
is "$(stat -c %i "$R/app.py")" "$inode" "the release's files were not rebuilt"
is "$(releases)" "$(printf '%s\n' "$A" "$B" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"no other release appeared"

# ---- REF forms
B12=$(printf %.12s "$B")
run_deploy deploy "$B12"
rc_is 0 "deploy of an abbreviated sha"
is "$(current_link)" "releases/$B" "resolves to the full sha"

C=$(new_commit v3)
git -C "$APP" tag -a v3-tag -m "release v3"
tagobj=$(git -C "$APP" rev-parse v3-tag)
D=$(new_commit v4)
run_deploy deploy v3-tag
rc_is 0 "deploy of an annotated tag"
is "$(current_link)" "releases/$C" "current is the tagged commit"
ok "no release named after the tag object" absent "$ROOT/releases/$tagobj"
ok "the app runs the tagged commit" app_runs_from "$C"

git -C "$APP" checkout -q -b feature
E=$(new_commit feature-1)
git -C "$APP" checkout -q main
run_deploy deploy feature
rc_is 0 "deploy of another branch"
is "$(current_link)" "releases/$E" "current is that branch's head"

pid=$(app_pid)
before=$(tree_listing "$ROOT/releases")
run_deploy deploy no-such-branch
rc_is 2 "an unknown REF exits 2"
is "$(current_link)" "releases/$E" "current unchanged"
is "$(tree_listing "$ROOT/releases")" "$before" "releases/ unchanged"
is "$(app_pid)" "$pid" "the app untouched"

run_deploy deploy
rc_is 0 "back to the default branch"
is "$(current_link)" "releases/$D" "current is main's head"

# ---- -q and -v
F=$(new_commit v5)
run_deploy -q deploy
rc_is 0 "deploy -q exits 0"
is "$(out)" "" "-q prints nothing on success"
is "$(current_link)" "releases/$F" "and deploys"

G=$(new_commit v6)
run_deploy -v deploy
rc_is 0 "deploy -v exits 0"
grep_ok "-v shows the test command's own output" "$T/out" "check_app: OK, all tests passed"
is "$(current_link)" "releases/$G" "and deploys"
ok "the app runs from it" app_runs_from "$G"

done_testing
