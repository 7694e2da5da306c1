#!/bin/sh
# A `current` deploy did not make: a plain directory, a regular file, a
# dangling link, a link loop, links that leave releases/ (absolute or
# relative, or through a sha-named link in releases/).  Every command that
# would switch or prune refuses with exit 2 and one error naming current,
# and nothing under the root, nor the folder current points to, changes.
. "$(dirname "$0")/lib.sh"
. "$TESTDIR/hostile.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B"
C=$(new_commit v3)	# what a deploy would build
mkdir -p "$T/elsewhere/sub"
echo "elsewhere" >"$T/elsewhere/index.html"
echo "elsewhere" >"$T/elsewhere/sub/file"
cur=$ROOT/current

# whole_state: everything under the root and the outside folder, and the app
whole_state() {
	echo "app pid: $(app_pid)"
	tree_listing "$ROOT"
	tree_listing "$T/elsewhere"
	cat "$T/elsewhere/index.html" "$T/elsewhere/sub/file"
	ls -la "$cur" 2>&1
}

# hostile_current DESC: with current set up by the caller, every command
# refuses and changes nothing
hostile_current() {
	whole_state >"$T/whole.before"
	for args in "deploy" "deploy $C" "-n deploy" "rollback" "activate $A" \
	    "activate $B" "prune" "-k 2 prune"; do
		run_deploy $args
		rc_is 2 "$1: '$args' exits 2"
		one_error "$1: '$args' gives one error naming current" \
			"*$ROOT/current*"
		whole_state >"$T/whole.after"
		if cmp -s "$T/whole.before" "$T/whole.after"; then
			pass "$1: '$args' changed nothing"
		else
			fail "$1: '$args' changed nothing"
			diff "$T/whole.before" "$T/whole.after" | head -n 30 |
				sed 's/^/#   /' >&2
			whole_state >"$T/whole.before"
		fi
	done
	run_deploy list
	rc_is 0 "$1: list still works"
	run_deploy status
	rc_is 5 "$1: status exits 5 (a person must look)"
	grep_ok "$1: status says current is broken" "$T/out" "^current: broken: "
	run_deploy status --json
	rc_is 5 "$1: status --json exits 5 too"
	is "$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["current"], d["current_state"], sys.argv[2] in (d["problem"] or ""))
' "$T/out" "$ROOT/current" 2>&1)" "None broken True" \
	    "$1: status --json: current null, state broken, a problem naming current"
	not_pwned "$1: nothing ran a payload"
}

reset_current() {
	rm -rf "$cur"
	ln -s "releases/$B" "$cur"
}

# ---- a plain directory (the blog post's layout before migrating)
rm "$cur"
mkdir "$cur"
echo "live" >"$cur/index.html"
hostile_current "current a plain directory"
run_deploy deploy
like "$(err)" "*director*" "the error says current is a directory"

# ---- a regular file
rm -rf "$cur"
echo "not a link" >"$cur"
hostile_current "current a regular file"

# ---- dangling links
rm -f "$cur"
ln -s "releases/$(printf %.40s "$C$C")" "$cur"
hostile_current "current dangling to releases/<a sha never built>"
rm -f "$cur"
ln -s "/nonexistent/releases/$A" "$cur"
hostile_current "current dangling to an absolute path"
rm -f "$cur"
ln -s current "$cur"
hostile_current "current a link to itself"

# ---- links out of releases/
rm -f "$cur"
ln -s "$T/elsewhere" "$cur"
hostile_current "current an absolute link to a folder outside the root"
rm -f "$cur"
ln -s ../elsewhere "$cur"
hostile_current "current a relative link to a folder outside the root"
rm -f "$cur"
ln -s shared "$cur"
hostile_current "current a link to shared/"
rm -f "$cur"
ln -s "releases/../shared" "$cur"
hostile_current "current a link to releases/../shared"
rm -f "$cur"
ln -s "releases/$B/.." "$cur"
hostile_current "current a link to releases/<sha>/.."
rm -f "$cur"
ln -s "$ROOT/releases/../shared" "$cur"
hostile_current "current an absolute link through releases/.. to shared/"
rm -f "$cur"
ln -s / "$cur"
hostile_current "current a link to /"
# a sha-named link in releases/ that leads outside
HEX=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
ln -s "$T/elsewhere" "$ROOT/releases/$HEX"
rm -f "$cur"
ln -s "releases/$HEX" "$cur"
hostile_current "current a link to a sha-named link to outside the root"
rm -f "$cur"
ln -s "$ROOT/releases/$HEX" "$cur"
hostile_current "current an absolute link to a sha-named link to outside"
rm -f "$ROOT/releases/$HEX"

# ---- and with current made right again, deploy works
reset_current
run_deploy deploy
rc_is 0 "with current a link to a release again, deploy works"
is "$(current_link)" "releases/$C" "and switches to C"
ok "the outside folder was never touched" \
	[ "$(cat "$T/elsewhere/index.html" "$T/elsewhere/sub/file")" = "elsewhere
elsewhere" ]

done_testing
