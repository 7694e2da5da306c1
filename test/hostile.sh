# hostile.sh -- sourced after lib.sh by test/4*.t: snapshots of a root,
# payloads that leave a marker when anything executes them, and checks of
# the "clear one-line error, nothing changed" contract.
#
# POSIX sh only, like lib.sh.

# A payload: an executable that creates $PWNED when run.  Every hostile
# input below names it in a way that a shell, or git taking the word as an
# option, would run it.
PWNED=$T/PWNED
PAYLOAD=$T/payload.sh
cat >"$PAYLOAD" <<EOF
#!/bin/sh
echo "payload ran: \$0 \$*" >>"$PWNED"
EOF
chmod +x "$PAYLOAD"

# not_pwned DESC: nothing ran the payload
not_pwned() {
	if absent "$PWNED"; then
		_tap 0 "$1"
	else
		_tap 1 "$1"
		diag "the payload ran:"
		sed 's/^/#   /' "$PWNED" >&2
		show_run
		rm -f "$PWNED"
	fi
}

# root_state: what must not change when deploy refuses an input: where
# current points, everything under releases/ (types, modes, sizes, mtimes,
# link targets), the durable history, and the running app's pid.
root_state() {
	echo "current: $(current_link)"
	echo "app pid: $(app_pid 2>/dev/null)"
	echo "history:"
	[ -f "$ROOT/.deploy/history" ] &&
		while IFS= read -r _hl || [ -n "$_hl" ]; do
			printf '%s\n' "$_hl"
		done <"$ROOT/.deploy/history"
	echo "releases:"
	tree_listing "$ROOT/releases"
}

# snapshot: remember root_state for unchanged
snapshot() {
	root_state >"$T/state.before"
}

# unchanged DESC: root_state is what snapshot saw
unchanged() {
	root_state >"$T/state.after"
	if cmp -s "$T/state.before" "$T/state.after"; then
		_tap 0 "$1: nothing changed"
	else
		_tap 1 "$1: nothing changed"
		diff "$T/state.before" "$T/state.after" | head -n 40 |
			sed 's/^/#   /' >&2
		show_run
	fi
}

# one_error DESC GLOB: stderr holds exactly one error line, "deploy: ...",
# matching GLOB; any other stderr line is a step's "[N] NAME FAILED" report
# (a refused REF is reported by its resolve step too) or the usage text
# that may follow a usage error.
one_error() {
	# one awk: the error lines, the other lines, the first error line
	_oe=$(awk '/^deploy: / { if (!e++) first = $0; next }
	    !/^(deploy: |\[[0-9]+\] [a-z ]+ FAILED |usage: deploy |commands: |          )/ { o++ }
	    END { printf "%d %d\n%s\n", e, o, first }' "$T/err")
	_nerr=${_oe%%[!0-9]*}
	_nother=${_oe#* }
	_nother=${_nother%%[!0-9]*}
	_line=${_oe#*"
"}
	if [ "$_nerr" -eq 1 ] && [ "$_nother" -eq 0 ]; then
		like "$_line" "$2" "$1"
	else
		_tap 1 "$1"
		diag "expected one 'deploy: ...' line and nothing else; got" \
		    "$_nerr error line(s) and $_nother other line(s)"
		show_run
	fi
}

# refused DESC STATUS GLOB: the last run exited STATUS with one clear error
# matching GLOB, and changed nothing since snapshot
refused() {
	rc_is "$2" "$1: exit $2"
	one_error "$1: one-line error naming it" "$3"
	unchanged "$1"
}

# sorted_words WORD...: sorted, space-separated, like lib.sh's releases
sorted_words() {
	printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'
}

# glob_quote STRING: STRING with the sh pattern characters * ? [ ] \
# escaped, so that like() matches it literally
glob_quote() {
	printf '%s' "$1" | sed 's/[][*?\\]/\\&/g'
}

# vg_run ARGS...: the binary under valgrind on $ROOT; valgrind's logs in
# $T/vg/, one per process (forks of deploy are checked too; what they exec
# is not)
vg_run() {
	rm -rf "$T/vg"
	mkdir -p "$T/vg"
	run timeout -k 5 "$DEPLOY_TEST_LIMIT" env DEPLOY_TEST_MARK="$MARK" \
	    valgrind --leak-check=full --error-exitcode=1 \
	    --trace-children=no --child-silent-after-fork=no \
	    --log-file="$T/vg/%p.log" "$DEPLOY" -C "$ROOT" "$@"
}

# vg_clean DESC: every valgrind log of the last vg_run is free of errors
# and of definitely, indirectly or possibly lost blocks.  On failure the
# diagnostics show, per log, each error or loss record with its first
# frames in src/*.c; the log of deploy itself (not one of its forks) first.
vg_clean() {
	_bad=
	_main=
	_pids=$(ls "$T"/vg/ 2>/dev/null | sed -n 's/\.log$//p')
	for _f in "$T"/vg/*.log; do
		[ -f "$_f" ] || continue
		_pp=$(sed -n 's/^==[0-9]*== Parent PID: //p' "$_f")
		case " $(echo $_pids) " in
		*" $_pp "*) ;;
		*) _main=$_f ;;
		esac
		# (a fork that exec'd something else ends its log without a
		# summary: what it runs is not traced)
		if grep -Eq 'ERROR SUMMARY: [1-9]|(definitely|indirectly|possibly) lost: [1-9]' "$_f"; then
			_bad="$_bad $_f"
		fi
	done
	if [ -n "$_main" ] && ! grep -q 'ERROR SUMMARY: ' "$_main"; then
		_bad="$_bad $_main"
	fi
	if [ -z "$_bad" ] && [ -n "$_main" ]; then
		_tap 0 "$1"
		return
	fi
	_tap 1 "$1"
	[ -z "$_main" ] && diag "no valgrind log in $T/vg"
	for _f in $_bad; do
		[ "$_f" = "$_main" ] || continue
		diag "deploy itself (${_f##*/}):"
		vg_summary "$_f"
	done
	_nf=0
	for _f in $_bad; do
		[ "$_f" = "$_main" ] && continue
		_nf=$((_nf + 1))
		[ $_nf -gt 1 ] && continue
		diag "a process deploy forked (${_f##*/}):"
		vg_summary "$_f"
	done
	[ $_nf -gt 1 ] && diag "... and $((_nf - 1)) more forked processes"
}

# vg_summary LOG: each error or loss record, with its frames in src/*.c
vg_summary() {
	awk '
	/==[0-9]+== [A-Z][a-z]+ (read|write)|uninitialised|Conditional jump|Syscall param|Mismatched|lost in loss record|Invalid free/ {
		sub(/^==[0-9]+== /, ""); print "#   " $0; n = 0; inrec = 1; next
	}
	inrec && /\([a-z0-9_]+\.c:[0-9]+\)/ && n < 4 {
		sub(/^==[0-9]+== +/, ""); print "#       " $0; n++; next
	}
	/^==[0-9]+== $/ { inrec = 0 }
	/LEAK SUMMARY|ERROR SUMMARY/ { sub(/^==[0-9]+== +/, ""); print "#   " $0 }
	' "$1" >&2
}

# A private copy of the binary under test, so that a rebuild elsewhere
# while this test runs cannot swap it in the middle.
cp "$DEPLOY" "$T/deploy.bin" || bail "cannot copy $DEPLOY"
DEPLOY=$T/deploy.bin

# at_exit CMD: CMD runs at exit, before lib.sh's cleanup removes $T (e.g.
# an umount); later ones first
_at_exit=:
at_exit() {
	_at_exit="$1 || true; $_at_exit"
}
_hostile_exit() {
	_hs=$?
	set +e
	eval "$_at_exit"
	(exit $_hs)
	cleanup
}
trap _hostile_exit EXIT
