#!/bin/sh
# prepare builds and tests, prints the sha, switches nothing; activate REV
# takes a full sha or a unique prefix of at least 7; too short, ambiguous,
# unknown or malformed REVs exit 2 and change nothing.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy"

# ---- prepare
B=$(new_commit v2)
pid=$(app_pid)
run_deploy prepare
rc_is 0 "prepare exits 0"
is "$(last_line)" "$B" "prepare prints the full sha as its last line"
is "$(current_link)" "releases/$A" "current unchanged"
is "$(app_pid)" "$pid" "the app was not restarted"
ok "it still runs from the old release" app_runs_from "$A"
ok "the release was built" [ -x "$ROOT/releases/$B/.venv/bin/python" ]
is "$(testruns_of "$B")" 1 "and tested"
is "$(list_state "$B")" complete "list shows it complete"
is "$(list_mark "$B")" "" "and not current"

run_deploy -q prepare
rc_is 0 "prepare -q of the same commit exits 0"
is "$(out)" "$B" "prepare -q prints only the sha"
is "$(testruns_of "$B")" 1 "a complete release is not built again"

C=$(new_commit v3)
run_deploy prepare "$B"
rc_is 0 "prepare REF"
is "$(last_line)" "$B" "prints that REF's sha"
ok "did not build the branch head" absent "$ROOT/releases/$C"

# ---- activate
run_deploy activate "$B"
rc_is 0 "activate FULLSHA exits 0"
is "$(current_link)" "releases/$B" "current points to it"
ok "the app runs from it" app_runs_from "$B"
is "$(testruns_of "$B")" 1 "no rebuild"

A7=$(printf %.7s "$A")
run_deploy activate "$A7"
rc_is 0 "activate with a 7-digit prefix exits 0"
is "$(current_link)" "releases/$A" "current points to that release"
ok "the app runs from it" app_runs_from "$A"

# unchanged DESC: current, releases/ and the app as before
pid=$(app_pid)
before=$(tree_listing "$ROOT/releases")
unchanged() {
	if [ "$(current_link)" = "releases/$A" ] &&
	    [ "$(tree_listing "$ROOT/releases")" = "$before" ] &&
	    [ "$(app_pid)" = "$pid" ]; then
		pass "$1"
	else
		fail "$1"
		diag "current: $(current_link), app pid $(app_pid) (was $pid)"
	fi
}

run_deploy activate "$(printf %.6s "$B")"
rc_is 2 "a 6-digit prefix exits 2"
unchanged "and changes nothing"

run_deploy activate 0000000
case $A$B in 0000000*) ;; *)
	rc_is 2 "a prefix matching no release exits 2"
	unchanged "and changes nothing" ;;
esac

run_deploy activate "$C"
rc_is 2 "a commit with no release exits 2"
unchanged "and changes nothing"
ok "and builds nothing" absent "$ROOT/releases/$C"

run_deploy activate zzzzzzz
rc_is 2 "a non-hex REV exits 2"
unchanged "and changes nothing"

run_deploy activate main
rc_is 2 "a branch name is not a REV: exit 2"
unchanged "and changes nothing"

run_deploy activate
rc_is 2 "activate without REV exits 2"
unchanged "and changes nothing"

# two releases sharing their first 7 digits
set -- $("$PY" "$TESTDIR/collide.py" "$APP")
X=$1
Y=$2
is "$(printf %.7s "$X")" "$(printf %.7s "$Y")" "made two commits with a common 7-digit prefix"
run_deploy prepare collide-a
rc_is 0 "prepare the first"
run_deploy prepare collide-b
rc_is 0 "prepare the second"
pid=$(app_pid)
before=$(tree_listing "$ROOT/releases")
run_deploy activate "$(printf %.7s "$X")"
rc_is 2 "an ambiguous prefix exits 2"
unchanged "and changes nothing"
like "$(err)" "*mbiguous*" "and says it is ambiguous"

# the shortest prefix telling them apart
n=8
while [ "$(echo "$X" | cut -c1-$n)" = "$(echo "$Y" | cut -c1-$n)" ]; do
	n=$((n + 1))
done
run_deploy activate "$(echo "$Y" | cut -c1-$n)"
rc_is 0 "a longer, unique prefix activates"
is "$(current_link)" "releases/$Y" "the release it names"
ok "the app runs from it" app_runs_from "$Y"

done_testing
