#!/bin/sh
# -n prints what would be done and changes nothing: a listing of the whole
# root (names, types, modes, sizes, mtimes, link targets) is the same before
# and after, the app is not restarted.  The mirror in repo/ is compared on
# its own so that a fetch shows up as such.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
# A and B go live in turn (rollback and prune count releases that ran)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "deploy C"
is "$(list_mark "$B")" rollback "B is the rollback target"
D=$(new_commit v4)	# pushed, not deployed
D7=$(printf %.7s "$D")

# snapshot: the root without repo/ (the lock file's own mtime aside)
snapshot() {
	tree_listing "$ROOT" | grep -v -e '^repo[ /]' -e '^\.deploy/lock '
}
snapshot_repo() {
	tree_listing "$ROOT/repo"
}

# dry DESC ARGS...: runs deploy -n ARGS and checks nothing changed
dry() {
	_d=$1
	shift
	before=$(snapshot)
	before_repo=$(snapshot_repo)
	pid=$(app_pid)
	run_deploy -n "$@"
	rc_is 0 "-n $_d exits 0"
	ok "-n $_d prints a plan" [ -s "$T/out" ]
	after=$(snapshot)
	if [ "$after" = "$before" ]; then
		pass "-n $_d changes nothing in the root"
	else
		fail "-n $_d changes nothing in the root"
		printf '%s\n' "$before" >"$T/before"
		printf '%s\n' "$after" >"$T/after"
		diff "$T/before" "$T/after" | sed 's/^/#   /' >&2
	fi
	is "$(snapshot_repo)" "$before_repo" "-n $_d leaves the mirror in repo/ alone"
	is "$(current_link)" "releases/$C" "-n $_d: current unchanged"
	is "$(app_pid)" "$pid" "-n $_d: the app not restarted"
}

dry deploy deploy
like "$(out)" "*$D7*" "the plan names the commit it would deploy"
ok "no release was built" absent "$ROOT/releases/$D"
is "$(testruns_of "$D")" 0 "no test ran"

dry "deploy (no command)"
dry prepare prepare
ok "no release was built" absent "$ROOT/releases/$D"
dry "deploy of an existing release" deploy "$A"
dry rollback rollback
like "$(out)" "*$(printf %.7s "$B")*" "the plan names the rollback target"
dry activate activate "$A"
dry "prune -k 2" -k 2 prune
like "$(out)" "*$(printf %.7s "$A")*" "the plan names what prune would remove"
ok "which is still there" [ -d "$ROOT/releases/$A" ]

# and for real, afterwards
run_deploy -k 2 prune
rc_is 0 "prune -k 2 for real"
ok "removes what -n said" absent "$ROOT/releases/$A"

done_testing
