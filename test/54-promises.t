#!/bin/sh
# Issue 29: promises kept on every way out.
#  1. every run that takes the lock and converges leaves the program
#     running the release current names, whatever ended it: a fetch that
#     fails, a head verify refuses, a migrate that fails;
#  7. a restart by convergence is news: prune and resume tell notify;
#  3. with verify on, rollback, activate and migrate take only a release
#     the mirror verifies afresh under today's keys;
#  4. verify = tag takes a tag only under the name it was signed with;
# 12. -n on a tag the remote moved says so.
# One root, one supervisord, real ssh signatures (ssh-keygen -Y via git).
. "$(dirname "$0")/lib.sh"

NOTIFY="notify = sh -c 'env | grep ^DEPLOY_ | sort >$T/notified'"
MIGRATE="migrate = sh -c 'echo >>$T/migrated; exit 1'"
setup_root "$NOTIFY"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
ok "A runs" app_runs_from "$A"

# stopped: the program is down, as after a reboot with autostart=false
stopped() {
	sv stop app >/dev/null
	rm -f "$T/notified"
	is "$(app_state)" STOPPED "$1: the program is STOPPED before it"
}

# ---- 7. prune and resume: a restart by convergence tells notify
stopped "prune"
run_deploy prune
rc_is 0 "prune: exit 0"
ok "prune started current" app_runs_from "$A"
grep_ok "notify heard of prune's restart" "$T/notified" "^DEPLOY_EVENT=prune\$"
rm -f "$T/notified"
run_deploy prune
ok "a prune that restarts nothing tells nobody" absent "$T/notified"
run_deploy pause "item 7"
stopped "resume"
run_deploy resume
rc_is 0 "resume: exit 0"
ok "resume started current" app_runs_from "$A"
grep_ok "notify heard of resume's restart" "$T/notified" "^DEPLOY_EVENT=resume\$"

# ---- 1a. the remote cannot be reached: fetch fails, current still runs
stopped "a fetch that fails"
mv "$APP" "$T/away"
run_deploy deploy
mv "$T/away" "$APP"
rc_is 1 "a fetch that fails: exit 1"
ok "after a failed fetch the program runs current" app_runs_from "$A"
grep_ok "notify heard of the restart" "$T/notified" "^DEPLOY_STATUS=1\$"

# ---- 1c. migrate fails: current stays, and runs
M=$(new_commit vM)
write_conf "$NOTIFY" "$MIGRATE"
stopped "a migrate that fails"
run_deploy deploy
rc_is 1 "a migrate that fails: exit 1"
is "$(current_sha)" "$A" "current is still A"
ok "after a failed migrate the program runs current" app_runs_from "$A"
is "$(list_state "$M")" complete "the release that failed its migrate stays built"

# ---- 1b. verify = commit and an unsigned head: refused, current runs
ssh-keygen -q -t ed25519 -N '' -C alice -f "$T/alice" || bail "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -C bob -f "$T/bob" || bail "ssh-keygen"
printf 'alice@example.invalid %s\n' "$(cat "$T/alice.pub")" \
    >"$ROOT/shared/allowed_signers"
printf 'bob@example.invalid %s\n' "$(cat "$T/bob.pub")" \
    >"$ROOT/shared/bob_signers"
chmod 644 "$ROOT/shared/allowed_signers" "$ROOT/shared/bob_signers"
SSH_ALICE="-c gpg.format=ssh -c user.signingkey=$T/alice"
signed_commit() {
	printf '%s\n' "$1" >"$APP/VERSION"
	git -C "$APP" add -A &&
		git -C "$APP" $SSH_ALICE commit -q -S -m "$1" &&
		git -C "$APP" rev-parse HEAD
}
VERIFY="allowed_signers = allowed_signers"
write_conf "$NOTIFY" "verify = commit" "$VERIFY"
U=$(new_commit vU)
stopped "an unsigned head"
run_deploy deploy
rc_is 1 "an unsigned head under verify = commit: exit 1"
grep_ok "it was refused" "$T/err" "refused ${U%????????????????????????????}: commit unsigned"
ok "after the refusal the program runs current" app_runs_from "$A"

# ---- 3. rollback, activate, migrate: verified afresh, under today's keys
S1=$(signed_commit vS1) || bail "ssh signing failed"
run_deploy deploy
rc_is 0 "deploy S1, signed by alice"
S2=$(signed_commit vS2)
run_deploy deploy
rc_is 0 "deploy S2, signed by alice"
# (M, whose migrate failed, never ran: prune has removed it; A ran, built
# while verify was off)
pid=$(app_pid)
run_deploy activate "$A"
rc_is 1 "activate of a release built while verify was off: exit 1"
grep_ok "activate says why" "$T/err" \
    "^deploy: refused ${A%????????????????????????????}: commit unsigned; nothing was switched\$"
is "$(current_sha)" "$S2" "current is unchanged"
is "$(app_pid)" "$pid" "the program was not restarted"
run_deploy -n activate "$A"
rc_is 1 "activate -n of it: exit 1"
grep_ok "-n says it would refuse" "$T/err" "would refuse ${A%????????????????????????????}: commit unsigned"
write_conf "$NOTIFY" "$MIGRATE" "verify = commit" "$VERIFY"
run_deploy migrate "$A"
rc_is 1 "migrate of an unverified release: exit 1"
grep_ok "migrate says why" "$T/err" "refused ${A%????????????????????????????}: commit unsigned; nothing was migrated"
is "$(wc -l <"$T/migrated" | tr -d ' ')" 1 "migrate did not run (once only, in 1c)"
write_conf "$NOTIFY" "verify = commit" "allowed_signers = bob_signers"
run_deploy pause "rollback is by hand"
stopped "a refused rollback, paused"
run_deploy rollback
rc_is 1 "rollback to a release signed by a key no longer allowed: exit 1"
grep_ok "rollback says why" "$T/err" "refused ${S1%????????????????????????????}: commit signed by a key not allowed"
is "$(current_sha)" "$S2" "current is unchanged"
ok "by hand, paused or not, the program runs current after it" app_runs_from "$S2"
run_deploy resume
write_conf "$NOTIFY" "verify = commit" "$VERIFY"
run_deploy rollback
rc_is 0 "rollback to a release signed by a key allowed today: exit 0"
is "$(current_sha)" "$S1" "current is S1"
ok "S1 runs" app_runs_from "$S1"

# ---- 4. verify = tag: a signed tag copied under another name is refused
# v1 is an old release's signed tag (M's); current is S1
git -C "$APP" $SSH_ALICE tag -s -m "release v1" v1 "$M" || bail "tag -s"
git -C "$APP" update-ref refs/tags/v9 "$(git -C "$APP" rev-parse v1)"
write_conf "$NOTIFY" "verify = tag" "$VERIFY"
run_deploy activate "$S2"
rc_is 1 "verify = tag: activate of a release no signed tag names: exit 1"
grep_ok "it says no tag names it" "$T/err" "no tag in the mirror that names it is signed by an allowed key"
run_deploy deploy v9
rc_is 1 "deploy v9, v1's signed tag object under another name: exit 1"
grep_ok "the refusal names the tag's signed name" "$T/err" \
    "tag 'v9' is a copy of the tag object 'v1' \(its signed name\)"
is "$(current_sha)" "$S1" "current is unchanged"
write_conf "$NOTIFY" "verify = tag" "$VERIFY" "branch = v9"
run_deploy deploy
rc_is 1 "branch = v9: refused too"
grep_ok "and says why" "$T/err" "tag 'v9' is a copy of the tag object 'v1'"
is "$(current_sha)" "$S1" "current is still unchanged"
write_conf "$NOTIFY" "verify = tag" "$VERIFY"
git -C "$APP" $SSH_ALICE tag -s -m "release v2" v2 "$S2" || bail "tag -s"
run_deploy deploy v1
rc_is 0 "deploy v1 under its own name: exit 0"
is "$(current_sha)" "$M" "current is v1's commit"
run_deploy activate "$S2"
rc_is 0 "verify = tag: activate of a release a signed tag (v2) names: exit 0"
is "$(current_sha)" "$S2" "current is v2's commit"

# ---- 12. -n on a tag the remote moved since the mirror's fetch
git -C "$APP" $SSH_ALICE tag -f -s -m "release v1 again" v1 "$S2" >/dev/null ||
	bail "tag -s"
run_deploy -n deploy v1
grep_ok "-n says the remote moved the tag" "$T/out" \
    "signature: not checked: the mirror's tag 'v1' names ${M%????????????????????????????}, not ${S2%????????????????????????????} \(the remote moved it"
grep_nok "-n does not call it absent from the mirror" "$T/out" "not in the mirror yet"
# ---- 13 after the switch: a reader of the output that goes away once the
# switch is made does not stop the switch back of a release whose check
# fails (only a signal would); the run goes on, exit 4, current as before
write_conf "check = false" "check_timeout = 5"
V=$(new_commit vV)
( timeout -k 5 120 env DEPLOY_TEST_MARK="$MARK" "$DEPLOY" -C "$ROOT" deploy \
    2>"$T/err"; echo $? >"$T/rc" ) |
	while IFS= read -r l; do case $l in *"switch ok"*) exit 0 ;; esac; done
is "$(cat "$T/rc")" 4 "its reader gone after the switch, the check fails: exit 4"
is "$(current_sha)" "$S2" "current is back on S2"
ok "no pending switch is left" absent "$ROOT/.deploy/pending"
done_testing
