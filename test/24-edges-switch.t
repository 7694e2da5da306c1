#!/bin/sh
# The switch is atomic, checked syscall by syscall rather than by racing a
# reader: under strace, every call of activate, rollback and deploy (and
# of what they run) that creates, removes or renames ROOT/current is a
# rename of .current.tmp over current; current itself is never unlinked
# or made by symlink(2), so a reader never finds it missing.
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || bail "strace is not installed"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy (A)"
B=$(new_commit v2)
run_deploy prepare "$B"
rc_is 0 "prepare B"

# traced NAME ARGS...: deploy ARGS under strace -f, file calls in $T/st.NAME
traced() {
	_tn=$1
	shift
	run timeout -k 5 "$DEPLOY_TEST_LIMIT" env DEPLOY_TEST_MARK="$MARK" \
	    strace -f -qq -e trace=%file -o "$T/st.$_tn" \
	    "$DEPLOY" -C "$ROOT" "$@"
}

# switched_by_rename NAME: the trace of NAME replaced current only by
# renaming .current.tmp over it, at least once
switched_by_rename() {
	_f=$T/st.$1
	# a path argument that is current itself, relative or absolute
	_cur='"([^"]*/)?current"'
	grep -E "^[0-9]+ +(unlink|unlinkat|symlink|symlinkat|link|linkat|rmdir|mkdir|mkdirat|mknod|mknodat)\(.*$_cur" \
	    "$_f" >"$T/st.bad"
	grep -E "^[0-9]+ +rename(at|at2)?\(.*$_cur" "$_f" >"$T/st.renames"
	# or (a rollback to the release previous names) one atomic swap of
	# previous and current
	grep -Ev "^[0-9]+ +rename(at|at2)?\([^\"]*\"([^\"]*/)?\.current\.tmp\", [^\"]*$_cur" \
	    "$T/st.renames" |
	    grep -Ev "^[0-9]+ +renameat2\([^\"]*\"previous\", [^\"]*$_cur, RENAME_EXCHANGE\)" \
	    >>"$T/st.bad"
	ok "$1: strace saw file calls" test -s "$_f"
	if [ -s "$T/st.bad" ]; then
		_tap 1 "$1: current is only replaced by rename of .current.tmp"
		sed 's/^/#   /' "$T/st.bad" >&2
	else
		_tap 0 "$1: current is only replaced by rename of .current.tmp"
	fi
	ok "$1: and it was (renameat .current.tmp -> current)" \
		test -s "$T/st.renames"
}

traced activate activate "$B"
rc_is 0 "activate B under strace"
is "$(current_link)" "releases/$B" "current is B"
switched_by_rename activate

traced rollback rollback
rc_is 0 "rollback under strace"
is "$(current_link)" "releases/$A" "current is A"
switched_by_rename rollback

C=$(new_commit v3)
traced deploy deploy "$C"
rc_is 0 "deploy C under strace"
is "$(current_link)" "releases/$C" "current is C"
ok "the app runs from C" app_runs_from "$C"
switched_by_rename deploy

done_testing
