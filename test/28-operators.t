#!/bin/sh
# What operators ask for: -V, help without a root, list/status refusing a
# folder that is not a root, what a deploy brings (commits and subjects,
# a warning when it goes back), subjects in list, deploy log, --json for
# list and status, and notify (with examples/notify-slack.sh posting to a
# loopback listener).
. "$(dirname "$0")/lib.sh"

# ---- -V, --version, help: no root needed
run "$DEPLOY" -V
rc_is 0 "-V: exit 0"
like "$(out)" "deploy ?*" "-V prints 'deploy VERSION'"
is "$(out)" "$("$DEPLOY" --version)" "--version says the same"
for h in help -h --help; do
	(cd "$T" && run "$DEPLOY" $h)
	rc_is 0 "'deploy $h' without a root: exit 0"
	like "$(out)" "usage: deploy*" "'deploy $h' prints the usage"
done
mkdir -p "$T/notroot"
for c in list status; do
	run "$DEPLOY" -C "$T/notroot" $c
	rc_is 2 "$c on a folder that is not a deploy root: exit 2"
	like "$(err)" "*not a deploy root*" "$c says it is not a deploy root"
done

make_app

# ---- notify's 60 s cap, at its real value: a notify that hangs, in a
# root of its own whose deploy builds a release and fails its tests
# (notify runs only when something was attempted), with a timeout above
# the cap.  It runs in the background while the rest of this file runs
# (longer than 60 s), and is checked at the end.
R2=$T/root2
run "$DEPLOY" -C "$R2" init "$REMOTE"
rc_is 0 "a second root for the hanging notify"
printf 'repo = %s\nnotify = sleep 1000\ntimeout = 120\ntest = false\n' \
    "$REMOTE" >"$R2/shared/deploy.conf"
(
	t0=$(now_ms)
	timeout -k 5 115 env DEPLOY_TEST_MARK=notifycap "$DEPLOY" -C "$R2" \
	    deploy >"$T/cap.out" 2>"$T/cap.err" </dev/null
	echo $? >"$T/cap.rc"
	t1=$(now_ms)
	echo $((t1 - t0)) >"$T/cap.ms"
) &
cappid=$!

"$PY" "$TESTDIR/listener.py" "$T/port" "$T/posts" &
wait_for 10 test -s "$T/port" || bail "listener did not start"
PORT=$(cat "$T/port")
printf 'SLACK_WEBHOOK_URL=http://127.0.0.1:%s/hook\n' "$PORT" >"$T/app.env"
NOTIFY="notify = sh -c 'env | grep ^DEPLOY_ | sort >>$T/notified; echo --- >>$T/notified'"
setup_root "$NOTIFY"
A=$(new_commit first-one)
run_deploy deploy
rc_is 0 "first deploy: exit 0"

# ---- notify's environment
grep_ok "notify got DEPLOY_EVENT" "$T/notified" "^DEPLOY_EVENT=deploy\$"
grep_ok "notify got DEPLOY_STATUS" "$T/notified" "^DEPLOY_STATUS=0\$"
grep_ok "notify got DEPLOY_REVISION" "$T/notified" "^DEPLOY_REVISION=$A\$"
grep_ok "notify got DEPLOY_PREVIOUS (empty on a first deploy)" "$T/notified" "^DEPLOY_PREVIOUS=\$"
grep_ok "notify got DEPLOY_LOG" "$T/notified" "^DEPLOY_LOG=$ROOT/.deploy/logs/$A.log\$"
grep_ok "a notify step is reported" "$T/out" "^\[[0-9]+\] notify ok"

# ---- what a deploy brings
B1=$(new_commit second-one)
B2=$(new_commit third-one)
B3=$(new_commit fourth-one)
before=$(tree_listing "$ROOT")
run_deploy -n deploy
like "$(out)" "*3 new commits since ${A%"${A#????????????}"}*" "-n says how many commits come"
(cd "$ROOT" && TMPDIR=tmp run_deploy -n deploy)
like "$(out)" "*3 new commits*" "-n with a relative TMPDIR says it too"
is "$(tree_listing "$ROOT")" "$before" "and -n left nothing in the root"
run_deploy deploy
rc_is 0 "deploy of three commits: exit 0"
like "$(out)" "*3 new commits since*fourth-one*third-one*second-one*" \
    "deploy lists their subjects, newest first"
grep_ok "notify saw DEPLOY_PREVIOUS" "$T/notified" "^DEPLOY_PREVIOUS=$A\$"
i=0
while [ $i -lt 24 ]; do
	git -C "$APP" commit -q --allow-empty -m "empty $i"
	i=$((i + 1))
done
C=$(new_commit many)
run_deploy deploy
like "$(out)" "*25 new commits*... and 5 more*" "more than 20: the first 20, then how many more"
run_deploy deploy "$B1"
like "$(out)" "*BEHIND current*older commit*" "a deploy of an older commit says it goes back"

# ---- list shows subjects; log prints a release's log
like "$(list_line "$A")" "*first-one" "list ends a release's line with its subject"
is "$(list_mark "$B1")" current "the mark column is still the fifth"
run_deploy log
rc_is 0 "log: exit 0"
like "$(out)" "*deploy $B1*" "log without REV prints the newest log"
run_deploy log "$(printf '%.9s' "$A")"
rc_is 0 "log REV: exit 0"
like "$(out)" "*deploy $A*" "log REV prints that release's log"
run_deploy log 123
rc_is 2 "log with a malformed REV: exit 2"

# ---- a subject cut to fit at a character boundary; JSON stays valid
git -C "$APP" commit -q --allow-empty -m "a$(printf 'é%.0s' $(seq 1 40))"
U=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "a commit with a long non-ASCII subject deploys"
run_deploy list
is "$("$PY" -c '
import sys
for line in open(sys.argv[1], "rb"):
    line.decode("utf-8")
print("ok")' "$T/out" 2>&1)" ok "list cuts subjects at a character boundary (valid UTF-8)"
run_deploy --json list
is "$("$PY" -c '
import json, sys
d = json.loads(open(sys.argv[1], "rb").read())
s = [r["subject"] for r in d["releases"] if r["current"]][0]
print(s.startswith("a\u00e9") and set(s[1:]) == {"\u00e9"})
' "$T/out" 2>&1)" True "--json list is valid JSON, the subject cut between characters"
run_deploy deploy "$B1"

# ---- --json
run_deploy --json list
rc_is 0 "--json list: exit 0"
is "$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
cur = [r for r in d["releases"] if r["current"]][0]
print(cur["sha"], cur["state"], cur["subject"], len(d["releases"]) > 1,
      all(isinstance(r["completed_epoch"], int) for r in d["releases"]))
' "$T/out" 2>&1)" "$B1 complete second-one True True" "--json list parses: current's sha, state, subject"
run_deploy status --json
rc_is 0 "status --json: exit 0"
is "$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["current"], d["current_state"], d["rollback"] is not None, d["running"])
' "$T/out" 2>&1)" "$B1 ok True None" "--json status parses: current, state, rollback, running"

# ---- the Slack example, against the loopback listener
write_conf "notify = $TOP/examples/notify-slack.sh" "envfile = app.env"
cp "$T/app.env" "$ROOT/shared/app.env"
chmod 0600 "$ROOT/shared/app.env"
run_deploy deploy "$C"
rc_is 0 "deploy with the Slack notify: exit 0"
grep_ok "the listener got one post for it" "$T/posts" "^/hook .*deploy of $(printf '%.12s' "$C") .*: done"
touch "$APP/FAIL_TESTS"
D=$(new_commit failing)
rm "$APP/FAIL_TESTS"
run_deploy deploy
rc_is 1 "a failing deploy: exit 1 still"
grep_ok "notify is told of the failure too" "$T/posts" "deploy of $(printf '%.12s' "$D") .*failed before the switch"
run_deploy rollback
rc_is 0 "rollback: exit 0"
grep_ok "and of a rollback" "$T/posts" "rollback of .*: done"
is "$(wc -l <"$T/posts" | tr -d ' ')" 3 "one post per deploy, failed deploy and rollback"

# ---- a failing notify never changes the exit status
printf 'SLACK_WEBHOOK_URL=http://127.0.0.1:1/nobody\n' >"$ROOT/shared/app.env"
run_deploy activate "$C"
rc_is 0 "notify failing (nobody listens): the exit status is still 0"
grep_ok "its failure is reported" "$T/err" "notify FAILED"

# ---- a subject holding backslashes and double quotes, through --json
# (last: the listener above lives 300 s)
printf '%s\n' 'q"uote back\slash \"both\" \n end\' >"$T/subject"
git -C "$APP" add -A && git -C "$APP" commit -q --allow-empty -F "$T/subject"
Q=$(sha_of HEAD)
run_deploy prepare
rc_is 0 "prepare a commit whose subject holds \\ and \""
run_deploy --json list
rc_is 0 "--json list: exit 0"
is "$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
want = open(sys.argv[2]).read().rstrip("\n")
got = [r["subject"] for r in d["releases"] if r["sha"] == sys.argv[3]]
print(got == [want] or "got %r, want %r" % (got, want))
' "$T/out" "$T/subject" "$Q" 2>&1)" True "--json list parses; the subject with \\ and \" is exact"

# ---- the hanging notify started at the top: ended at 60 s, though
# timeout = 120
wait "$cappid"
is "$(cat "$T/cap.rc")" 1 "a hanging notify: the exit status stays the failed tests' (1)"
ms=$(cat "$T/cap.ms")
ok "it is ended after the 60 s cap, not the 120 s timeout ($ms ms, a build included)" \
    [ "$ms" -ge 59000 -a "$ms" -lt 110000 ]
grep_ok "the notify step says it timed out after 60 s" "$T/cap.err" \
    '^\[[0-9]+\] notify FAILED [0-9.]+s: timed out after 60s'
grep_ok "and that the exit status stays 1" "$T/cap.err" \
    'notify failed .*; the exit status stays 1$'
no_marked_procs "its sleep is gone" notifycap

done_testing
