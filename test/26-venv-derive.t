#!/bin/sh
# reuse_venv: a dependency bump derives the new venv from the nearest
# complete one (the current release's first) instead of building it from
# nothing: a copy with the old venv's path rewritten, then pip installs the
# difference and removes what the new requirements no longer bring in. The
# result must be what a fresh build gives (pip freeze), must name no other
# venv, and must keep working once its source is gone. A derive that fails
# builds from nothing; local paths still get a venv of their own.
. "$(dirname "$0")/lib.sh"
SEED_VENV=0	# the first deploy builds its venv: that is tested here

VENV="virtualenv -p python3"
key_of() { readlink "$ROOT/releases/$1/.venv" | sed 's|.*/||'; }
freeze() { "$1/bin/python" -m pip freeze 2>/dev/null | sort; }
# fresh DIR: a venv built from nothing, as deploy would, with the app's
# requirements
fresh() {
	rm -rf "$1"
	$VENV "$1" >/dev/null 2>&1 &&
		"$1/bin/python" -m pip install -q -r "$APP/requirements.txt" >/dev/null 2>&1
}

mkdir -p "$T/wheels"
mkwheel "$T/wheels" helper 1.0 >/dev/null
mkwheel "$T/wheels" tool 1.0 --script tool-cli \
    --requires "helper>=1" >/dev/null
mkwheel "$T/wheels" appdep 2.0 >/dev/null
setup_root "virtualenv = $VENV" "keep = 5"

printf 'appdep==1.0\ntool==1.0\n' >"$APP/requirements.txt"
A=$(new_commit a)
run_deploy deploy
rc_is 0 "deploy A"
K1=$(key_of "$A")
grep_ok "A's venv is built from nothing" "$T/out" '^\[[0-9]+\] venv ok [0-9.]+s$'
ok "its record says what it was built from" grep -qx 'tool==1.0' "$ROOT/venvs/$K1/.deploy-built"

# one pin bumped
printf 'appdep==2.0\ntool==1.0\n' >"$APP/requirements.txt"
B=$(new_commit b)
run_deploy deploy
rc_is 0 "deploy B, appdep bumped"
K2=$(key_of "$B")
isnt "$K2" "$K1" "B has a venv of its own"
grep_ok "the venv step says it was derived from A's" "$T/out" \
    "^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/$K1\)\$"
grep_ok "pip ran" "$T/out" '^\[[0-9]+\] pip ok'
grep_nok "virtualenv did not run" "$ROOT/.deploy/logs/$B.log" '^\$ virtualenv'
grep_ok "pip installed the difference" "$ROOT/.deploy/logs/$B.log" \
    "^\\\$ $ROOT/venvs/$K2/bin/python -m pip install -r "
fresh "$T/freshB"
is "$(freeze "$ROOT/venvs/$K2")" "$(freeze "$T/freshB")" \
    "pip freeze of the derived venv is a fresh build's"
ok "it is marked complete" test -f "$ROOT/venvs/$K2/.deploy-complete"
ok "the app runs from B" app_runs_from "$B"
is "$(cut -d' ' -f4 "$APPSTATE")" "2.0" "and imports appdep 2.0"

# it names no other venv, and works once its source is gone
left=$(grep -rl -- "$ROOT/venvs/$K1" "$ROOT/venvs/$K2" 2>/dev/null)
is "$left" "" "no file of the derived venv names the old venv"
left=$(find "$ROOT/venvs/$K2" -type l -lname "*$K1*")
is "$left" "" "no link of the derived venv points into the old one"
ok "activate names the new venv" grep -q "$ROOT/venvs/$K2" "$ROOT/venvs/$K2/bin/activate"
ok "the console script's shebang is the new venv's python" \
    sh -c "head -n 1 '$ROOT/venvs/$K2/bin/tool-cli' | grep -qx '#!$ROOT/venvs/$K2/bin/python'"
ok "modes kept: the console script is executable" test -x "$ROOT/venvs/$K2/bin/tool-cli"
rm -rf "$ROOT/releases/$A" "$ROOT/venvs/$K1"
ok "the source venv is gone" test ! -e "$ROOT/venvs/$K1"
run "$ROOT/releases/$B/.venv/bin/tool-cli"
is "$(out)" "tool 1.0" "the console script still runs"
run "$ROOT/releases/$B/.venv/bin/python" -m pip check
rc_is 0 "pip check passes"
run "$ROOT/releases/$B/.venv/bin/python" -m pip freeze
rc_is 0 "pip freeze runs"
run svctl restart app
ok "the app restarts and runs from B" wait_for 10 app_runs_from "$B"
is "$(cut -d' ' -f4 "$APPSTATE")" "2.0" "importing appdep 2.0"

# a requirement dropped: it and what only it brought in are gone
printf 'appdep==2.0\n' >"$APP/requirements.txt"
C=$(new_commit c)
run_deploy deploy
rc_is 0 "deploy C, tool dropped"
K3=$(key_of "$C")
grep_ok "derived from B's, the current one" "$T/out" \
    "^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/$K2\)\$"
fresh "$T/freshC"
is "$(freeze "$ROOT/venvs/$K3")" "$(freeze "$T/freshC")" \
    "pip freeze of the derived venv is a fresh build's"
run "$ROOT/venvs/$K3/bin/python" -m pip freeze
unlike "$(out)" "*tool==*" "tool is uninstalled"
unlike "$(out)" "*helper==*" "and helper, which only tool needed"
ok "tool-cli is gone from bin/" test ! -e "$ROOT/venvs/$K3/bin/tool-cli"
ok "B's venv still has tool" test -x "$ROOT/venvs/$K2/bin/tool-cli"
run "$ROOT/venvs/$K3/bin/python" -m pip check
rc_is 0 "pip check passes"
left=$(grep -rl -- "$ROOT/venvs/$K2" "$ROOT/venvs/$K3" 2>/dev/null)
is "$left" "" "no file of it names B's venv"
ok "the app runs from C" app_runs_from "$C"

# a derive that fails builds from nothing: the current venv lost its pip
rm -rf "$ROOT/venvs/$K3"/lib/python*/site-packages/pip
printf 'appdep==2.0\nhelper==1.0\n' >"$APP/requirements.txt"
D=$(new_commit d)
run_deploy deploy
rc_is 0 "deploy D while C's venv is broken"
grep_ok "one venv line says it was built from nothing, and why" "$T/out" \
    "^\[4\] venv ok [0-9.]+s \(built from nothing: deriving from venvs/$K3 failed: .*\)\$"
is "$(grep -c '^\[[0-9]*\] venv ' "$T/out")" 1 "one venv line, not two"
is "$(grep -o '^\[[0-9]*\]' "$T/out" | tr -d '[]' | tr '\n' ' ')" "1 2 3 4 5 6 7 8 9 10 11 12 " \
    "steps numbered without gaps"
grep_ok "the log says the derive failed" "$ROOT/.deploy/logs/$D.log" '^venv derive failed: .*; building from nothing'
grep_ok "virtualenv ran" "$ROOT/.deploy/logs/$D.log" '^\$ virtualenv'
K4=$(key_of "$D")
fresh "$T/freshD"
is "$(freeze "$ROOT/venvs/$K4")" "$(freeze "$T/freshD")" "D's venv is a fresh build's"
run "$ROOT/venvs/$K4/bin/python" -c 'import helper, appdep; print(appdep.VERSION)'
is "$(out)" "2.0" "and works"
ok "the app runs from D" app_runs_from "$D"

# a derive whose pip fails for a reason a fresh build meets too (no
# matching distribution) fails the pip step once: no build from nothing
printf 'appdep==2.0\nhelper==1.0\nnosuch==1.0\n' >"$APP/requirements.txt"
E=$(new_commit e)
run_deploy deploy
rc_is 1 "deploy E, a requirement no index has: exit 1"
grep_ok "the venv line says derived" "$T/out" "^\[4\] venv ok [0-9.]+s \(derived from venvs/$K4\)\$"
grep_ok "pip fails once, saying why" "$T/err" \
    '^\[5\] pip FAILED [0-9.]+s: pip: exit status 1 \(no matching distribution: a venv built from nothing would fail the same\)$'
grep_ok "with pip's own words" "$T/err" '^  \| ERROR: No matching distribution found for nosuch==1.0'
is "$(cat "$T/out" "$T/err" | grep -c '^\[[0-9]*\] \(venv\|pip\) ')" 2 "one venv and one pip line"
grep_nok "virtualenv did not run" "$ROOT/.deploy/logs/$E.log" '^\$ virtualenv'
grep_nok "no build from nothing" "$T/err" 'building from nothing'
printf 'appdep==2.0\nhelper==1.0\n' >"$APP/requirements.txt"
new_commit e-fixed >/dev/null

# exactly one leaf dropped (helper, which nothing else needs): pip
# uninstalls it alone. helper's line becomes a range whose marker is false
# here: not all pins, so the resolver path (its dry run, then
# derive_uninstall) runs, not the pinned one; a fresh build holds
# appdep alone, as C's did, so C's fresh build is the reference.
printf 'appdep==2.0\nhelper>=1 ; python_version < "3"\n' >"$APP/requirements.txt"
E2=$(new_commit e2)
run_deploy deploy
rc_is 0 "deploy E2, helper dropped"
K5=$(key_of "$E2")
grep_ok "derived from D's, the current one" "$T/out" \
    "^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/$K4\)\$"
grep_ok "by the resolver path: its dry run" "$ROOT/.deploy/logs/$E2.log" 'pip install --dry-run'
grep_ok "and an uninstall of helper alone" "$ROOT/.deploy/logs/$E2.log" \
    "^\\\$ $ROOT/venvs/$K5/bin/python -m pip uninstall -y helper\$"
is "$(freeze "$ROOT/venvs/$K5")" "$(freeze "$T/freshC")" \
    "pip freeze of the derived venv is a fresh build's"
run "$ROOT/venvs/$K5/bin/python" -c 'import helper'
isnt "$rc" 0 "helper is uninstalled"

# a local path never shares nor derives
mkdir -p "$APP/vendor"
cp "$T/wheels"/appdep-2.0-*.whl "$APP/vendor/"
echo "./vendor/$(ls "$APP/vendor")" >"$APP/requirements.txt"
F=$(new_commit f)
run_deploy deploy
rc_is 0 "deploy F with a local-path requirement"
ok "F's .venv is a folder, not a link" real_dir "$ROOT/releases/$F/.venv"
grep_nok "nothing was derived" "$T/out" 'derived from'

# pruning keeps working with derived venvs
run_deploy prune
rc_is 0 "prune"
used=$(for r in "$ROOT"/releases/*/; do readlink "$r.venv"; done | grep venvs/ | sort -u | sed 's|.*/||')
is "$(ls "$ROOT/venvs" | sort | tr '\n' ' ')" "$(printf '%s\n' $used | sort | tr '\n' ' ')" \
	"venvs/ holds exactly the venvs kept releases use"

done_testing
