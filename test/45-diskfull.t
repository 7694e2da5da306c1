#!/bin/sh
# The root on a nearly full file system (a small tmpfs this test mounts):
# a checkout that does not fit, a virtualenv that does not fit, and a file
# system with no byte left.  Each build fails with exit 1, current and the
# release it points to are intact, the app keeps running, the history
# keeps every record, and once space is freed the same deploy works.
# An audit line the full disk cut short is said to be torn, not forged.
. "$(dirname "$0")/lib.sh"
. "$TESTDIR/hostile.sh"

SMALL=$T/small
mkdir "$SMALL"
if [ "$(id -u)" -ne 0 ] ||
    ! mount -t tmpfs -o size=64m,mode=0755 tmpfs "$SMALL" 2>"$T/mount.err"; then
	echo "1..0 # SKIP cannot mount a tmpfs here: $(cat "$T/mount.err" 2>/dev/null)"
	exit 0
fi
at_exit "umount '$SMALL' 2>/dev/null || umount -l '$SMALL'"
at_exit "stop_supervisord"	# the app's cwd is on the tmpfs: stop it first
ROOT=$SMALL/root

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A onto a 64 MiB tmpfs"

# fill KIB: leaves about KIB KiB free on the tmpfs (0: none at all)
fill() {
	rm -f "$SMALL/filler" "$SMALL/filler2"
	sync
	_avail=$(df -k --output=avail "$SMALL" | tail -n 1 | tr -d ' ')
	if [ $((_avail - $1)) -gt 0 ]; then
		dd if=/dev/zero of="$SMALL/filler" bs=1024 count=$((_avail - $1)) \
		    2>/dev/null
	fi
	if [ "$1" -eq 0 ]; then
		dd if=/dev/zero of="$SMALL/filler2" bs=512 2>/dev/null
	fi
	diag "free on the tmpfs: $(df -k --output=avail "$SMALL" | tail -n 1 | tr -d ' ') KiB"
}
unfill() {
	rm -f "$SMALL/filler" "$SMALL/filler2"
}

# full_case DESC SHA STEP: a deploy of SHA on the full file system fails
# cleanly, in the step whose name matches the ERE STEP (-: any step, or
# before the first)
full_case() {
	_cur=$(current_link)
	_pid=$(app_pid)
	tree_listing "$ROOT/$_cur" >"$T/cur.before"
	cp "$ROOT/.deploy/history" "$T/history.before"
	run_deploy deploy
	rc_is 1 "$1: the deploy fails with exit 1"
	if [ "$3" = - ]; then
		grep_ok "$1: stderr says what failed" "$T/err" \
			"^\[[0-9]+\] [a-z]+ FAILED|^deploy: .*: No space left"
	else
		grep_ok "$1: stderr says the $3 step failed" "$T/err" \
			"^\[[0-9]+\] ($3) FAILED"
	fi
	is "$(current_link)" "$_cur" "$1: current still points to the same release"
	tree_listing "$ROOT/$_cur" >"$T/cur.after"
	if cmp -s "$T/cur.before" "$T/cur.after"; then
		pass "$1: the current release is intact"
	else
		fail "$1: the current release is intact"
		diff "$T/cur.before" "$T/cur.after" | head -n 20 | sed 's/^/#   /' >&2
	fi
	is "$(app_pid)" "$_pid" "$1: the app was not restarted"
	ok "$1: the app still runs from current" app_runs_from "${_cur#releases/}"
	ok "$1: no releases/<sha> of the failed build is left" absent "$ROOT/releases/$2"
	is "$(list_state "$2")" "" "$1: list does not offer it"
	_nb=$(wc -l <"$T/history.before")
	if [ -s "$ROOT/.deploy/history" ] &&
	    head -n "$_nb" "$ROOT/.deploy/history" | cmp -s - "$T/history.before"; then
		pass "$1: the history kept every record"
	else
		fail "$1: the history kept every record"
		diff "$T/history.before" "$ROOT/.deploy/history" | sed 's/^/#   /' >&2
	fi
	unfill
	run_deploy deploy
	rc_is 0 "$1: with space freed, the same deploy works"
	is "$(current_link)" "releases/$2" "$1: and switches to it"
	ok "$1: the app runs from it" app_runs_from "$2"
}

# ---- a checkout that does not fit: an 8 MiB file of 'x', tiny once
# compressed so that the fetch fits and the checkout does not (not zeros:
# git writes those as holes)
head -c 8388608 /dev/zero | tr '\0' x >"$APP/big.bin"
B=$(new_commit big-file)
fill 2048
full_case "checkout of an 8 MiB file with 2 MiB free" "$B" checkout
ok "the big file is there after the retry" [ -s "$ROOT/releases/$B/big.bin" ]

# ---- a virtualenv that does not fit (new requirements: a new venv)
rm -f "$APP/big.bin"
printf '# changed\nappdep==1.0\n' >"$APP/requirements.txt"
C=$(new_commit new-requirements)
fill 2048
full_case "a new virtualenv with 2 MiB free" "$C" "venv|pip"

# ---- no byte left at all
D=$(new_commit v4)
fill 0
full_case "a file system with no byte left" "$D" "[a-z]+"

# ---- no byte left, with the new commit already fetched into the mirror:
# the build itself meets the full disk
E=$(new_commit v5)
git --git-dir="$ROOT/repo" fetch --quiet "$REMOTE" \
	'+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*' ||
	bail "fetch into the mirror failed"
fill 0
full_case "no byte left, the commit already fetched" "$E" -

# ---- an audit line cut short by the full disk: the writer closes the
# torn line and chains the next one off it; audit --verify says it is
# torn (a warning, exit 0), and an edit of it is still an edit.  Long
# escaped claims (about 18 KB) make the line longer than the three pages
# left (so that a page or two written before it changes nothing).
run_deploy prune
rc_is 0 "prune with space: nothing left for the next one to remove"
V=$(head -c 256 /dev/zero | tr '\0' '\001')
fill 12
run timeout -k 5 "$DEPLOY_TEST_LIMIT" env DEPLOY_ACTOR="$V" GITHUB_ACTOR="$V" \
    GITHUB_RUN_ID="$V" GITHUB_REPOSITORY="$V" CIRCLE_USERNAME="$V" \
    CIRCLE_BUILD_URL="$V" GITLAB_USER_LOGIN="$V" CI_JOB_URL="$V" \
    SUDO_USER="$V" SSH_CONNECTION="$V $V" "$DEPLOY" -C "$ROOT" prune
grep_ok "prune on a full disk says the audit line was not written" "$T/err" \
    "cannot append to .*/audit: No space left on device"
ok "the trail ends in a torn line" [ "$(tail -c 1 "$ROOT/.deploy/audit" | od -An -c | tr -d ' ')" != '\n' ]
unfill
run_deploy prune
rc_is 0 "prune with space again"
NL=$(wc -l <"$ROOT/.deploy/audit" | tr -d ' ')
run_deploy audit --verify
rc_is 0 "audit --verify on a trail with a torn line the next one chains off: exit 0"
grep_ok "it warns that the line is torn" "$T/err" \
    "audit line $((NL - 1)): torn \(a write cut short, a full disk\?\); line $NL follows it"
grep_ok "and counts every line" "$T/out" "audit: $NL lines, each follows the one before"
cp "$ROOT/.deploy/audit" "$T/audit.torn"
sed -i "$((NL - 1))s/u0001/u0002/" "$ROOT/.deploy/audit"
run_deploy audit --verify
rc_is 1 "the torn line edited: exit 1"
grep_ok "it is named" "$T/err" "audit line $((NL - 1)): not an audit record"
cp "$T/audit.torn" "$ROOT/.deploy/audit"

done_testing
