#!/bin/sh
# Edges of the build and of the bookkeeping:
# - a SIGKILL during the checkout leaves .deploy/index.lock (git read-tree
#   runs with GIT_INDEX_FILE there); the next deploy still works, both
#   after a real kill -9 and with the lock file planted as git leaves it;
# - git gc --auto, run by the prune step, runs in the foreground: no git
#   process outlives deploy (traced with strace -f, so a detached gc is
#   seen however long it takes);
# - .deploy/ is 0700 and its logs 0600 (they hold what build and test
#   print, with the envfile's variables); an older 0755 one is tightened;
# - a folder a build made read-only is removed by prune when deploy runs
#   as a user root's permissions do not cover (nobody).
. "$(dirname "$0")/lib.sh"

setup_root "keep = 2"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy"

# ---- SIGKILL during the checkout

# a commit of 30,000 small files (one blob), so read-tree takes a while
blob=$(echo x | git -C "$APP" hash-object -w --stdin)
sub=$(awk -v b="$blob" 'BEGIN { for (i = 0; i < 30000; i++)
	printf "100644 blob %s\tf%05d\n", b, i }' | git -C "$APP" mktree)
git -C "$APP" read-tree --prefix=many/ "$sub" || bail "read-tree failed"
echo big >"$APP/VERSION"
git -C "$APP" add VERSION && git -C "$APP" commit -q -m big ||
	bail "commit of the big tree failed"
B=$(sha_of HEAD)

bg_deploy bigkill deploy
if wait_for 120 test -e "$ROOT/.deploy/index.lock"; then
	# what an OOM kill or a kill of the whole service does: every
	# process of it at once, git read-tree too
	kill -KILL $(marked_pids bigkill) 2>/dev/null
fi
bg_wait
ok "the killed checkout left .deploy/index.lock" test -e "$ROOT/.deploy/index.lock"
is "$(current_link)" "releases/$A" "current unchanged by the killed deploy"
run_deploy deploy
rc_is 0 "the next deploy works"
unlike "$(err)" "*index.lock*" "no complaint about index.lock"
is "$(current_link)" "releases/$B" "current is the big commit"
ok "its checkout is whole" test -f "$ROOT/releases/$B/many/f29999"
ok "index.lock is gone" absent "$ROOT/.deploy/index.lock"

# the same, deterministic: the lock file as a killed git leaves it
printf 'DIRC\000\000\000\002' >"$ROOT/.deploy/index.lock"
C=$(new_commit v3)	# many/ is not in the app's folder: this drops it
run_deploy deploy
rc_is 0 "a deploy with a stale .deploy/index.lock works"
unlike "$(err)" "*index.lock*" "no complaint about it"
is "$(current_link)" "releases/$C" "current is the new commit"
ok "the stale lock is gone" absent "$ROOT/.deploy/index.lock"
rm -f "$ROOT/.deploy/index.lock"	# what follows tests other things

# ---- .deploy and its logs are private

is "$(stat -c %a "$ROOT/.deploy")" 700 ".deploy is 0700"
modes=$(find "$ROOT/.deploy/logs" -type f -exec stat -c %a {} + | sort -u | tr '\n' ' ')
is "$modes" "600 " "every log is 0600"
# as an older deploy left them
chmod 0755 "$ROOT/.deploy"
D=$(new_commit v4)
: >"$ROOT/.deploy/logs/$D.log"
chmod 0644 "$ROOT/.deploy/logs/$D.log"

# ---- git gc --auto does not outlive deploy

# more than one pack is too many for gc --auto: two more packs (of the
# commits alone, and of everything) make the mirror need a repack
G=$ROOT/repo
git --git-dir="$G" config gc.autoPackLimit 1
git --git-dir="$G" rev-list --all |
	git --git-dir="$G" pack-objects -q "$G/objects/pack/pack" >/dev/null
git --git-dir="$G" rev-list --objects --all |
	git --git-dir="$G" pack-objects -q "$G/objects/pack/pack" >/dev/null
ok "the mirror has more than one pack" \
    test "$(ls "$G/objects/pack" | grep -c '\.pack$')" -gt 1
run timeout -k 5 "$DEPLOY_TEST_LIMIT" strace -f -ttt -q \
    -e trace=execve,exit_group -o "$T/strace" \
    env DEPLOY_TEST_MARK=gc "$DEPLOY" -C "$ROOT" deploy
rc_is 0 "deploy under strace"
is "$(current_link)" "releases/$D" "current is D"
grep_ok "the prune step ran git gc --auto" "$T/strace" 'execve\(.*"gc", "--auto"'
grep_ok "and gc had work to do (it repacked)" "$T/strace" 'execve\(.*"repack"'
# pid and exit time of deploy (the first traced process), then every
# process that ended after it, with the last program it ran
late=$(awk '
	NR == 1 { top = $1 }
	/ execve\(/ { split($0, q, "\""); prog[$1] = q[2] }
	/exited with|killed by/ { end[$1] = $2 }
	END {
		for (p in end)
			if (p != top && end[p] > end[top])
				printf "%s(%s) ", p, (p in prog) ? prog[p] : "forked"
	}' "$T/strace")
is "$late" "" "no process deploy started ends after deploy"
no_marked_procs "nothing of that deploy still runs" gc

is "$(stat -c %a "$ROOT/.deploy")" 700 "an older 0755 .deploy is now 0700"
is "$(stat -c %a "$ROOT/.deploy/logs/$D.log")" 600 "an older 0644 log is now 0600"

# ---- a read-only folder, removed by a user root's rights do not cover

# deploy, the root, the app and HOME belong to nobody; git refuses repos
# owned by others, so the commits are made first and the app chowned
NOBODY=65534
as_nobody() {
	setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups \
	    env HOME="$T/home" "$@"
}
chmod 0755 "$T"
mkdir -p "$APP/assets/css"
echo 'body {}' >"$APP/assets/css/site.css"
echo logo >"$APP/assets/logo.txt"
R1=$(new_commit r1)
R2=$(new_commit r2)
R3=$(new_commit r3)
mkdir -p "$T/home"
chown -R $NOBODY:$NOBODY "$APP" "$T/home"
chmod -R a+rX "$T/wheels"
ROOT=$T/nroot
mkdir "$ROOT" && chown $NOBODY:$NOBODY "$ROOT"
run as_nobody "$DEPLOY" -C "$ROOT" init "$APP"
rc_is 0 "init as nobody"
write_conf "-program" "-supervisorctl" "keep = 2" \
    "test = python check_app.py" \
    "build = chmod -R a-w assets"
for r in "$R1" "$R2" "$R3"; do
	run timeout -k 5 "$DEPLOY_TEST_LIMIT" env DEPLOY_TEST_MARK=nobody \
	    setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups \
	    env HOME="$T/home" "$DEPLOY" -C "$ROOT" deploy "$r"
	rc_is 0 "deploy ${r%"${r#???????}"} as nobody"
done
is "$(stat -c %a "$ROOT/releases/$R3/assets")" 555 "the build made assets read-only"
ok "the oldest release is gone from releases/" absent "$ROOT/releases/$R1"
unlike "$(err)" "*try again*" "prune did not warn"
is "$(releases)" "$(printf '%s\n' "$R2" "$R3" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "releases/ holds the two kept"

done_testing
