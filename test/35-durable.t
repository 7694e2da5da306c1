#!/bin/sh
# The pending record is durable before current moves: strace shows the
# record's file fsynced, renamed in and .deploy/ fsynced before the rename
# of current, for the switch and for the switch back.
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null 2>&1 || {
	echo "1..0 # SKIP no strace"
	exit 0
}
setup_root "check = python health.py $APPSTATE" "check_timeout = 5"
run_deploy deploy
rc_is 0 "deploy A"

# synced_before TRACE: for each rename of current in TRACE, the last
# rename of pending.tmp before it was preceded by an fsync of pending.tmp
# and followed by an fsync of .deploy/; prints one word per switch
synced_before() {
	awk -v root="$ROOT" '
	/fsync\([0-9]+<.*\/\.deploy\/pending\.tmp>/ { fp = NR }
	/rename.*"pending\.tmp".*"pending"/ { rp = NR; okf = (fp > 0 && fp < NR); dp = 0 }
	/fsync\([0-9]+<.*\/\.deploy>\)/ { if (rp) dp = NR }
	# current moves by rename of .current.tmp, or (a switch back, with a
	# previous link) by exchanging previous and current in one renameat2
	/rename.*"\.current\.tmp".*"current"/ || /renameat2.*"previous".*"current", RENAME_EXCHANGE/ {
		print (rp && okf && dp > rp ? "synced" : "unsynced")
		fp = rp = dp = 0
	}' "$1"
}

B=$(new_commit v2)
run strace -f -y -e trace=fsync,fdatasync,rename,renameat,renameat2 \
    -o "$T/trace" "$DEPLOY" -C "$ROOT" deploy
rc_is 0 "deploy B under strace"
is "$(synced_before "$T/trace" | tr '\n' ' ')" "synced " \
    "pending.tmp fsynced, renamed, .deploy/ fsynced, then current renamed"

touch "$APP/CRASH"
C=$(new_commit crash)
rm "$APP/CRASH"
run strace -f -y -e trace=fsync,fdatasync,rename,renameat,renameat2 \
    -o "$T/trace2" "$DEPLOY" -C "$ROOT" deploy
rc_is 4 "a release that does not start: switched back, exit 4"
is "$(synced_before "$T/trace2" | tr '\n' ' ')" "synced synced " \
    "the back record is durable before current moves back too"

done_testing
