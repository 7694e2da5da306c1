#!/bin/sh
# Slow: deploys killed at random.  Each iteration starts a deploy of a new
# commit, sends it SIGKILL or SIGTERM 0-3 s later, then runs a deploy that
# must succeed (of a newer commit on odd iterations, of the same commit on
# even ones).  After it: nothing the killed deploy started still runs, no
# incomplete release or temp link is left, every complete release is whole,
# and the app runs from current (also when the follow-up had nothing to
# build because the killed deploy had switched already).  Meanwhile a
# reader reads current/VERSION (and checks current/.venv/bin/python)
# without pause: it must never fail.
# Every fourth commit changes requirements.txt so venv and pip run again.
#
# KILL_ITERATIONS (default 50) sets the number of kills.
. "$(dirname "$0")/lib.sh"

N=${KILL_ITERATIONS:-50}
setup_root "keep = 3" "test = python check_app.py $TESTRUNS 0.3"
run_deploy deploy
rc_is 0 "first deploy"
[ "$rc" = 0 ] || bail "cannot even deploy once"

"$PY" "$TESTDIR/reader.py" "$ROOT" "$T/reader.stop" "$T/reader.result" &
readerpid=$!

# ms_to_s MS: "1.234"
ms_to_s() {
	printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# whole_releases: every release list calls complete has its files
whole_releases() {
	for _s in $(awk '$2 == "complete" { print $1 }' "$T/list"); do
		if [ ! -f "$ROOT/releases/$_s/VERSION" ] ||
		    [ ! -e "$ROOT/releases/$_s/.venv/bin/python" ]; then
			echo "$_s"
		fi
	done
}

start=$(now_ms)
midway=0
stuck=0
i=1
while [ $i -le $N ]; do
	if [ $((i % 4)) -eq 0 ]; then
		echo "# iteration $i" >>"$APP/requirements.txt"
	fi
	K=$(new_commit "k$i")
	if [ "$(random_below 2)" -eq 0 ]; then sig=KILL; else sig=TERM; fi
	delay=$(random_below 3000)

	bg_deploy "k$i" deploy
	sleep "$(ms_to_s "$delay")"
	kill -s $sig "$bgpid" 2>/dev/null
	bg_wait
	problems=
	case $sig:$bgrc in
	KILL:0 | TERM:0) ;;
	KILL:137 | TERM:143) midway=$((midway + 1)) ;;
	*) problems="$problems; the killed deploy exited $bgrc" ;;
	esac
	before=$(current_sha)

	if [ $((i % 2)) -eq 1 ]; then
		FU=$(new_commit "f$i")
	else
		FU=$K
	fi
	MARK=f$i
	run_deploy deploy
	MARK=main
	[ "$rc" = 0 ] || problems="$problems; the follow-up deploy exited $rc: $(tail -n 3 "$T/err" | tr '\n' ' ')"
	[ "$(current_link)" = "releases/$FU" ] ||
		problems="$problems; current is $(current_link), not releases/$FU"
	marked_gone "k$i"
	left=$(marked_pids "k$i" | tr '\n' ' ')
	[ -z "$left" ] ||
		problems="$problems; still running from the killed deploy: $(ps_of $left | tail -n +2 | tr '\n' ';')"
	absent "$ROOT/.current.tmp" || problems="$problems; .current.tmp left"
	absent "$ROOT/.deploy/step" || problems="$problems; .deploy/step left"
	"$DEPLOY" -C "$ROOT" list >"$T/list" 2>&1
	inc=$(awk '$2 == "incomplete" { print $1 }' "$T/list" | tr '\n' ' ')
	[ -z "$inc" ] || problems="$problems; incomplete releases left: $inc"
	broken=$(whole_releases | tr '\n' ' ')
	[ -z "$broken" ] || problems="$problems; complete releases missing files: $broken"
	# also when the follow-up had nothing to build: a deploy SIGKILLed
	# between its switch and its restart left the app on the old release,
	# and the next run must finish that restart
	app_runs_from "$FU" 2>/dev/null ||
		problems="$problems; app is $(app_state) in $(app_cwd), not in releases/$FU (current before the follow-up: $(printf %.7s "$before"))"

	if [ -z "$problems" ]; then
		pass "iteration $i: SIG$sig after $delay ms (exit $bgrc), then deploy of $(printf %.7s "$FU") ok"
		stuck=0
	else
		fail "iteration $i: SIG$sig after $delay ms (exit $bgrc), then deploy of $(printf %.7s "$FU")"
		diag "problems${problems}"
		show_bg
		stuck=$((stuck + 1))
		if [ $stuck -ge 3 ]; then
			diag "three iterations in a row failed: the root does not recover; stopping the loop"
			break
		fi
	fi
	i=$((i + 1))
done
if [ $i -gt $N ]; then
	pass "all $N iterations ran"
else
	fail "all $N iterations ran (stopped after $i)"
fi
elapsed=$(($(now_ms) - start))
diag "$N iterations in $((elapsed / 1000)) s; $midway kills landed mid-deploy"

touch "$T/reader.stop"
wait "$readerpid"
read -r reads nfail <"$T/reader.result"
is "$nfail" 0 "the reader never failed to read current/VERSION ($reads reads)"
[ "$nfail" = 0 ] || sed -n '2,$p' "$T/reader.result" | sed 's/^/#   /' >&2
ok "the reader did read all along" [ "$reads" -gt 1000 ]
ok "many kills landed during a deploy ($midway of $N)" [ "$midway" -ge $((N / 3)) ]

done_testing
