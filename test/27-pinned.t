#!/bin/sh
# The pinned fast path: when every requirement line is name==version, a
# derived venv gets no resolver: the copy, pip uninstall of what the file
# does not name, one pip install --no-deps of the lines that changed (their
# hashes kept), then pip check, all in one python. The result must be what
# a fresh build gives, name no other venv and outlive its source, like
# 26's derive; a file that is not closed under its dependencies falls back
# to the resolve and still ends as a fresh build; ranges never take it;
# environment markers are evaluated as pip does.
. "$(dirname "$0")/lib.sh"
SEED_VENV=0	# the first deploy builds its venv: that is tested here

VENV="virtualenv -p python3"
key_of() { readlink "$ROOT/releases/$1/.venv" | sed 's|.*/||'; }
freeze() { "$1/bin/python" -m pip freeze 2>/dev/null | sort; }
fresh() {
	rm -rf "$1"
	$VENV "$1" >/dev/null 2>&1 &&
		"$1/bin/python" -m pip install -q -r "$APP/requirements.txt" >/dev/null 2>&1
}
log_of() { cat "$ROOT/.deploy/logs/$1.log"; }
sha256() { "$PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"; }

mkdir -p "$T/wheels"
W1=$(mkwheel "$T/wheels" helper 1.0)
WT=$(mkwheel "$T/wheels" tool 1.0 --script tool-cli \
    --requires "helper>=1")
mkwheel "$T/wheels" appdep 2.0 >/dev/null
mkwheel "$T/wheels" newdep 1.0 >/dev/null
mkwheel "$T/wheels" appdep 3.0 --requires "newdep>=1" >/dev/null
setup_root "virtualenv = $VENV" "keep = 5"

# pip freeze's shape, options and comments included
printf '# pinned\n--prefer-binary\nappdep==1.0\ntool==1.0  # the cli\nhelper==1.0\n' \
    >"$APP/requirements.txt"
A=$(new_commit a)
run_deploy deploy
rc_is 0 "deploy A, from nothing"
K1=$(key_of "$A")

# one pin bumped
printf '# pinned\n--prefer-binary\nappdep==2.0\ntool==1.0  # the cli\nhelper == 1.0\n' \
    >"$APP/requirements.txt"
B=$(new_commit b)
run_deploy deploy
rc_is 0 "deploy B, appdep bumped"
K2=$(key_of "$B")
grep_ok "the venv is derived from A's" "$T/out" \
    "^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/$K1\)\$"
grep_ok "the pip step took the pinned path" "$T/out" '^\[[0-9]+\] pip ok [0-9.]+s \(pinned\)$'
grep_ok "the log says what it planned" "$ROOT/.deploy/logs/$B.log" \
    '^pinned: 3 lines, 1 to install, 0 to uninstall$'
grep_nok "no resolve: no dry run" "$ROOT/.deploy/logs/$B.log" 'pip install --dry-run'
n=$(grep -c '^\$ .*/bin/python ' "$ROOT/.deploy/logs/$B.log")
is "$n" "1" "one python (one pip start) for the whole pip step"
grep_ok "pip installed without deps and checked" "$ROOT/.deploy/logs/$B.log" \
    '^pinned times: import [0-9.]+, install [0-9.]+, check [0-9.]+$'
grep_ok "pip installed appdep 2.0 only" "$ROOT/.deploy/logs/$B.log" \
    '^Successfully installed appdep-2.0$'
ok "the pinned run's files are gone" sh -c "! ls -a '$ROOT/venvs/$K2' | grep -q pinned"
fresh "$T/freshB"
is "$(freeze "$ROOT/venvs/$K2")" "$(freeze "$T/freshB")" \
    "pip freeze of the pinned derive is a fresh build's"
is "$(freeze "$T/freshB")" "$(printf 'appdep==2.0\nhelper==1.0\ntool==1.0')" \
    "which holds exactly the pins"
ok "the app runs from B" app_runs_from "$B"
is "$(cut -d' ' -f4 "$APPSTATE")" "2.0" "and imports appdep 2.0"
left=$(grep -rl -- "$ROOT/venvs/$K1" "$ROOT/venvs/$K2" 2>/dev/null)
is "$left" "" "no file of it names the old venv"
left=$(find "$ROOT/venvs/$K2" -type l -lname "*$K1*")
is "$left" "" "no link of it points into the old one"
rm -rf "$ROOT/releases/$A" "$ROOT/venvs/$K1"
run "$ROOT/releases/$B/.venv/bin/tool-cli"
is "$(out)" "tool 1.0" "its console script runs once the source is gone"
run "$ROOT/releases/$B/.venv/bin/python" -m pip check
rc_is 0 "pip check passes"

# hashes the installed versions were not checked by are checked, as a
# fresh build would: a wrong one fails the deploy
printf '# pinned\nappdep==2.0 --hash=sha256:%064d\ntool==1.0 --hash=sha256:%s\nhelper==1.0 --hash=sha256:%s\n' \
    0 "$(sha256 "$WT")" "$(sha256 "$W1")" >"$APP/requirements.txt"
X=$(new_commit x)
run_deploy deploy
isnt "$rc" "0" "a pin with a wrong hash fails the deploy"
grep_ok "derived" "$T/out" '^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/'
grep_ok "the pinned run reinstalled all three, checking their hashes" \
    "$ROOT/.deploy/logs/$X.log" '^pinned: 3 lines, 3 to install, 0 to uninstall$'
grep_ok "pip said why" "$ROOT/.deploy/logs/$X.log" 'DO NOT MATCH THE HASHES'

# requirements dropped: tool and helper (what only tool pulled in) go
printf '# pinned\nappdep==2.0\n' >"$APP/requirements.txt"
C=$(new_commit c)
run_deploy deploy
rc_is 0 "deploy C, tool and helper dropped"
K3=$(key_of "$C")
grep_ok "derived from B's" "$T/out" \
    "^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/$K2\)\$"
grep_ok "pinned again" "$T/out" '^\[[0-9]+\] pip ok [0-9.]+s \(pinned\)$'
grep_ok "nothing to install, two to uninstall" "$ROOT/.deploy/logs/$C.log" \
    '^pinned: 1 lines, 0 to install, 2 to uninstall$'
# as B's fresh build showed, a closed pinned file's holds exactly its pins
is "$(freeze "$ROOT/venvs/$K3")" "appdep==2.0" \
    "pip freeze of it is a fresh build's: the one pin"
run "$ROOT/venvs/$K3/bin/python" -m pip freeze
unlike "$(out)" "*tool==*" "tool is uninstalled"
unlike "$(out)" "*helper==*" "and helper"
ok "tool-cli is gone from bin/" test ! -e "$ROOT/venvs/$K3/bin/tool-cli"
ok "B's venv still has tool" test -x "$ROOT/venvs/$K2/bin/tool-cli"
left=$(grep -rl -- "$ROOT/venvs/$K2" "$ROOT/venvs/$K3" 2>/dev/null)
is "$left" "" "no file of it names B's venv"

# not closed: appdep 3.0 requires newdep, which the file does not pin
printf '# pinned\nappdep==3.0\n' >"$APP/requirements.txt"
D=$(new_commit d)
run_deploy deploy
rc_is 0 "deploy D, a new version with a new dependency"
K4=$(key_of "$D")
grep_ok "derived from C's" "$T/out" \
    "^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/$K3\)\$"
grep_ok "pip check's failure is logged" "$ROOT/.deploy/logs/$D.log" \
    '^pinned fast path failed: pip check failed: .*; resolving instead$'
grep_ok "pip check named the missing one" "$ROOT/.deploy/logs/$D.log" \
    'appdep 3.0 requires newdep'
grep_ok "the resolve ran" "$ROOT/.deploy/logs/$D.log" 'pip install --dry-run'
grep_nok "the step does not say pinned" "$T/out" '\(pinned\)'
fresh "$T/freshD"
is "$(freeze "$ROOT/venvs/$K4")" "$(freeze "$T/freshD")" \
    "pip freeze of it is a fresh build's"
like "$(freeze "$ROOT/venvs/$K4")" "*newdep==1.0*" "newdep is in"
run "$ROOT/venvs/$K4/bin/python" -m pip check
rc_is 0 "pip check passes"
ok "the app runs from D" app_runs_from "$D"

# a range is not pinned: today's resolve, no fast path tried
printf '# pinned\nappdep>=2.0,<3\n' >"$APP/requirements.txt"
E=$(new_commit e)
run_deploy deploy
rc_is 0 "deploy E, a range"
grep_ok "derived" "$T/out" '^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/'
grep_nok "no pinned plan" "$ROOT/.deploy/logs/$E.log" '^pinned'
grep_ok "the resolve ran" "$ROOT/.deploy/logs/$E.log" 'pip install --dry-run'
is "$(cut -d' ' -f4 "$APPSTATE")" "2.0" "appdep 2.0 runs"

# environment markers, as pip reads them: a line whose marker is false
# here is not wanted (pip ignores it), so a copy that has it loses it;
# one whose marker is true is installed; extras are checked only for
# lines that apply. Compared by pip freeze with a fresh build.
"$PY" "$TESTDIR/mkwheel.py" "$T/wheels" foo 1.0 >/dev/null
"$PY" "$TESTDIR/mkwheel.py" "$T/wheels" bar 1.0 >/dev/null
"$PY" "$TESTDIR/mkwheel.py" "$T/wheels" extradep 1.0 >/dev/null
"$PY" "$TESTDIR/mkwheel.py" "$T/wheels" withx 1.0 --extra fast \
    --requires 'extradep>=1; extra == "fast"' >/dev/null
"$PY" "$TESTDIR/mkwheel.py" "$T/wheels" oldx 1.0 --extra fast \
    --requires 'newdep>=1; extra == "fast"' >/dev/null
printf '# pinned\nappdep==2.0\nfoo==1.0\n' >"$APP/requirements.txt"
F=$(new_commit f)
run_deploy deploy
rc_is 0 "deploy F, foo pinned"
like "$(freeze "$ROOT/releases/$F/.venv")" "*foo==1.0*" "F's venv has foo"
printf '%s\n' '# pinned' 'appdep==2.0' 'foo==1.0 ; python_version < "3"' \
    'bar==1.0; python_version >= "3"' 'withx[fast]==1.0 ; python_version >= "3"' \
    'extradep==1.0' 'oldx[fast]==1.0 ; python_version < "3"' >"$APP/requirements.txt"
G=$(new_commit g)
run_deploy deploy
rc_is 0 "deploy G: markers false and true, extras"
KG=$(key_of "$G")
grep_ok "derived" "$T/out" '^\[[0-9]+\] venv ok [0-9.]+s \(derived from venvs/'
grep_ok "pinned, even though oldx's extra needs a newdep it does not pin (its marker is false)" \
    "$T/out" '^\[[0-9]+\] pip ok [0-9.]+s \(pinned\)$'
fresh "$T/freshG"
is "$(freeze "$ROOT/venvs/$KG")" "$(freeze "$T/freshG")" \
    "pip freeze of the pinned derive with markers is a fresh build's"
is "$(freeze "$T/freshG")" "$(printf 'appdep==2.0\nbar==1.0\nextradep==1.0\nwithx==1.0')" \
    "which holds the lines whose markers are true, and withx's extra"
run "$ROOT/venvs/$KG/bin/python" -m pip check
rc_is 0 "pip check passes"

done_testing
