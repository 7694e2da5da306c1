#!/bin/sh
# An unreadable root is an error: status, list, log and their --json, run
# as a user (uid 65534) who cannot read .deploy/ or releases/, exit 2
# naming the path and the permission, never a partial answer.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null 2>&1; then
	echo "1..0 # SKIP needs root and setpriv to run as uid 65534"
	exit 0
fi
setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B (A is the rollback)"
chmod 0755 "$T"	# others may reach the root, as under /srv
cp "$DEPLOY" "$T/deploy-bin" && chmod 0755 "$T/deploy-bin"

# as_nobody ARGS...: the binary as uid 65534, without groups
as_nobody() {
	run setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$T/deploy-bin" -C "$ROOT" "$@"
}

# refused WHAT PATH: every read-only command exits 2 naming PATH
refused() {
	for args in status "status --json" list "list --json" log; do
		as_nobody $args
		rc_is 2 "$1: '$args' as uid 65534 exits 2"
		like "$(err)" "*$2: Permission denied (mode *, owner uid 0, we are uid 65534)*" \
		    "$1: '$args' names $2 and the permission"
		is "$(out)" "" "$1: '$args' prints no partial answer"
	done
}

is "$(stat -c %a "$ROOT/.deploy")" 700 ".deploy/ is 0700"
refused ".deploy/ 0700" "$ROOT/.deploy"

chmod 0755 "$ROOT/.deploy"
refused "history 0600" "$ROOT/.deploy/history"

chmod 0644 "$ROOT/.deploy/history"
chmod 0755 "$ROOT/.deploy/logs"
chmod 0700 "$ROOT/releases"
refused "releases/ 0700" "$ROOT/releases"

chmod 0755 "$ROOT/releases"
as_nobody list
rc_is 0 "all readable: list as uid 65534 exits 0"
like "$(out)" "*$A  complete*rollback*" "and marks A rollback"
run_deploy status
rc_is 0 "the deploy user's status still exits 0"

done_testing
