#!/bin/sh
# Slow: deploys killed at random.  Each iteration starts a deploy of a new
# commit, sends it SIGKILL or SIGTERM 0-3 s later, then runs a deploy that
# must succeed (of a newer commit on odd iterations, of the same commit on
# even ones).  After it: nothing the killed deploy started still runs, no
# incomplete release or temp link is left, every complete release is whole,
# and the app runs from current (also when the follow-up had nothing to
# build because the killed deploy had switched already).  Meanwhile a
# reader reads current/VERSION (and checks current/.venv/bin/python)
# without pause: it must never fail.  Every fourth commit changes
# requirements.txt so venv and pip run again.
#
# The kills are shared among KILL_LOOPS (default 2) loops run side by side,
# each on a root of its own with its own remote, supervisord and reader:
# most of a deploy's time is spent waiting on supervisord, so two loops
# take little longer than one.  KILL_ITERATIONS (default 50) is the total.
. "$(dirname "$0")/lib.sh"

[ -x "$DEPLOY" ] || bail "no deploy binary at $DEPLOY (run make)"
N=${KILL_ITERATIONS:-50}
LOOPS=${KILL_LOOPS:-2}

# ms_to_s MS: "1.234"
ms_to_s() {
	printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# whole_releases: every release that list (in $T/list) calls complete
# has its files
whole_releases() {
	for _s in $(awk '$2 == "complete" { print $1 }' "$T/list"); do
		if [ ! -f "$ROOT/releases/$_s/VERSION" ] ||
		    [ ! -e "$ROOT/releases/$_s/.venv/bin/python" ]; then
			echo "$_s"
		fi
	done
}

# kill_loop NAME COUNT: COUNT iterations on a root of its own, printing
# TAP (numbered from 1) and diagnostics; meant for a subshell
kill_loop() {
	trap - EXIT HUP INT TERM	# cleanup is the parent's job
	name=$1
	count=$2
	T=$T/$name
	mkdir -p "$T"
	ROOT=$T/root
	APP=$T/app
	REMOTE=$APP
	SVCONF=$T/supervisord.conf
	TESTRUNS=$T/testruns
	APPSTATE=$T/appstate
	PIP_FIND_LINKS=$T/wheels
	MARK=$name-main

	setup_root "keep = 3" "test = python check_app.py $TESTRUNS 0.3"
	run_deploy deploy
	rc_is 0 "$name: first deploy"
	if [ "$rc" != 0 ]; then
		stop_supervisord
		return 1
	fi

	"$PY" "$TESTDIR/reader.py" "$ROOT" "$T/reader.stop" "$T/reader.result" &
	readerpid=$!

	start=$(now_ms)
	midway=0
	stuck=0
	i=1
	while [ $i -le "$count" ]; do
		if [ $((i % 4)) -eq 0 ]; then
			echo "# iteration $i" >>"$APP/requirements.txt"
		fi
		K=$(new_commit "k$i")
		if [ "$(random_below 2)" -eq 0 ]; then sig=KILL; else sig=TERM; fi
		delay=$(random_below 3000)

		bg_deploy "$name-k$i" deploy
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
		MARK=$name-f$i
		run_deploy deploy
		MARK=$name-main
		[ "$rc" = 0 ] ||
			problems="$problems; the follow-up deploy exited $rc: $(tail -n 3 "$T/err" | tr '\n' ' ')"
		[ "$(current_link)" = "releases/$FU" ] ||
			problems="$problems; current is $(current_link), not releases/$FU"
		marked_gone "$name-k$i"
		left=$(marked_pids "$name-k$i" | tr '\n' ' ')
		[ -z "$left" ] ||
			problems="$problems; still running from the killed deploy: $(ps_of $left | tail -n +2 | tr '\n' ';')"
		absent "$ROOT/.current.tmp" || problems="$problems; .current.tmp left"
		absent "$ROOT/.deploy/step" || problems="$problems; .deploy/step left"
		"$DEPLOY" -C "$ROOT" list >"$T/list" 2>&1
		inc=$(awk '$2 == "incomplete" { print $1 }' "$T/list" | tr '\n' ' ')
		[ -z "$inc" ] || problems="$problems; incomplete releases left: $inc"
		broken=$(whole_releases | tr '\n' ' ')
		[ -z "$broken" ] ||
			problems="$problems; complete releases missing files: $broken"
		# also when the follow-up had nothing to build: a deploy
		# SIGKILLed between its switch and its restart left the app on
		# the old release, and the next run must finish that restart
		app_runs_from "$FU" 2>/dev/null ||
			problems="$problems; app is $(app_state) in $(app_cwd), not in releases/$FU (current before the follow-up: $(printf %.7s "$before"))"

		what="$name iteration $i: SIG$sig after $delay ms (exit $bgrc), then deploy of $(printf %.7s "$FU")"
		if [ -z "$problems" ]; then
			pass "$what ok"
			stuck=0
		else
			fail "$what"
			diag "problems${problems}"
			show_bg
			stuck=$((stuck + 1))
			if [ $stuck -ge 3 ]; then
				diag "$name: three iterations in a row failed: the root does not recover; stopping this loop"
				break
			fi
		fi
		i=$((i + 1))
	done
	if [ $i -gt "$count" ]; then
		pass "$name: all $count iterations ran"
	else
		fail "$name: all $count iterations ran (stopped after $i)"
	fi
	diag "$name: $count iterations in $((($(now_ms) - start) / 1000)) s; $midway kills landed mid-deploy"

	touch "$T/reader.stop"
	wait "$readerpid"
	read -r reads nfail <"$T/reader.result"
	is "$nfail" 0 "$name: the reader never failed to read current/VERSION ($reads reads)"
	[ "$nfail" = 0 ] || sed -n '2,$p' "$T/reader.result" | sed 's/^/#   /' >&2
	ok "$name: the reader did read all along" [ "$reads" -gt 1000 ]
	ok "$name: many kills landed during a deploy ($midway of $count)" \
		[ "$midway" -ge $((count / 3)) ]
	stop_supervisord
	return 0
}

# replay FILE: a loop's TAP, renumbered into this test's; the rest as diag
replay() {
	while IFS= read -r _line; do
		case $_line in
		"ok "*) _tap 0 "${_line#ok * - }" ;;
		"not ok "*) _tap 1 "${_line#not ok * - }" ;;
		"#"*) printf '%s\n' "$_line" >&2 ;;
		*) diag "$_line" ;;
		esac
	done <"$1"
}

per=$(((N + LOOPS - 1) / LOOPS))
l=1
pids=
while [ $l -le "$LOOPS" ]; do
	(kill_loop "loop$l" "$per") >"$T/loop$l.tap" 2>&1 &
	pids="$pids $!"
	l=$((l + 1))
done
l=1
for p in $pids; do
	wait "$p"
	st=$?
	replay "$T/loop$l.tap"
	is "$st" 0 "loop$l ran to its end"
	l=$((l + 1))
done
diag "$((per * LOOPS)) kills in all"

done_testing
