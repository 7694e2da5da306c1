#!/bin/sh
# reuse_venv: a virtualenv per (requirements bytes, python, virtualenv
# command) under venvs/, built once and linked from each release; a
# code-only deploy runs neither virtualenv nor pip. Changed requirements
# make a new one; local paths and editables never share; rollback runs with
# the release's own venv; prune drops unused venvs; a venv whose build was
# killed is rebuilt, never reused.
. "$(dirname "$0")/lib.sh"
SEED_VENV=0	# the first deploy builds its venv: that is tested here

nvenvs() { ls "$ROOT/venvs" 2>/dev/null | wc -l | tr -d ' '; }
dep_of() { "$ROOT/releases/$1/.venv/bin/python" -c 'import appdep; print(appdep.VERSION)'; }

setup_root "keep = 2"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
is "$(nvenvs)" 1 "one shared venv"
K1=$(ls "$ROOT/venvs")
is "$(readlink "$ROOT/releases/$A/.venv")" "../../venvs/$K1" "A's .venv links to it"
ok "it is marked complete" test -f "$ROOT/venvs/$K1/.deploy-complete"
grep_ok "pip ran for A" "$T/out" '^\[[0-9]+\] pip ok'

B=$(new_commit v2)
run_deploy deploy
rc_is 0 "a code-only deploy B"
grep_ok "no virtualenv was made" "$T/out" '^\[[0-9]+\] venv skipped \(reused'
grep_ok "pip did not run" "$T/out" '^\[[0-9]+\] pip skipped'
grep_nok "the log shows no pip install" "$ROOT/.deploy/logs/$B.log" 'pip install'
is "$(nvenvs)" 1 "still one venv"
is "$(readlink "$ROOT/releases/$B/.venv")" "../../venvs/$K1" "B shares it"
ok "the app runs from B" app_runs_from "$B"

mkwheel "$T/wheels" appdep 2.0 >/dev/null
echo "appdep==2.0" >"$APP/requirements.txt"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "deploy C with changed requirements"
grep_ok "pip ran for C" "$T/out" '^\[[0-9]+\] pip ok'
is "$(nvenvs)" 2 "a second venv"
isnt "$(readlink "$ROOT/releases/$C/.venv")" "../../venvs/$K1" "C has its own"
is "$(dep_of "$C")" "2.0" "C's venv has appdep 2.0"
is "$(dep_of "$B")" "1.0" "B's venv still has appdep 1.0"

run_deploy rollback
rc_is 0 "rollback to B"
ok "the app runs from B" app_runs_from "$B"
is "$(cut -d' ' -f4 "$APPSTATE")" "1.0" "and imports B's appdep 1.0"

# keep = 2: a deploy of D (requirements as C) prunes A; K1 stays for B
run_deploy activate "$C"
rc_is 0 "back to C"
D=$(new_commit v4)
run_deploy deploy
rc_is 0 "deploy D"
ok "A was pruned" test ! -e "$ROOT/releases/$A"
echo "appdep==2.0" >"$APP/requirements.txt"
E=$(new_commit v5)
run_deploy deploy
rc_is 0 "deploy E"
run_deploy prune
rc_is 0 "prune"
used=$(for r in "$ROOT"/releases/*/; do readlink "$r.venv"; done | sort -u | sed 's|.*/||')
is "$(ls "$ROOT/venvs" | sort | tr '\n' ' ')" "$(printf '%s\n' $used | sort | tr '\n' ' ')" \
	"venvs/ holds exactly the venvs kept releases use"
ok "K1 was removed once no release used it" test ! -e "$ROOT/venvs/$K1"

# a local path never shares: the release gets a venv folder of its own
mkdir -p "$APP/vendor"
cp "$T/wheels"/appdep-2.0-*.whl "$APP/vendor/"
echo "./vendor/$(ls "$APP/vendor")" >"$APP/requirements.txt"
F=$(new_commit v6)
run_deploy deploy
rc_is 0 "deploy F with a local-path requirement"
ok "F's .venv is a folder, not a link" sh -c "test -d '$ROOT/releases/$F/.venv' && test ! -L '$ROOT/releases/$F/.venv'"
grep_ok "pip ran" "$T/out" '^\[[0-9]+\] pip ok'

# an editable install never shares either
mkdir -p "$APP/pkg"
printf 'from setuptools import setup\nsetup(name="localapp", version="0.1", py_modules=["localapp"])\n' >"$APP/setup.py"
echo "X = 1" >"$APP/localapp.py"
printf 'appdep==2.0\n-e .\n' >"$APP/requirements.txt"
G=$(new_commit v7)
PIP_NO_BUILD_ISOLATION=0 run_deploy deploy
rc_is 0 "deploy G with '-e .'"
ok "G's .venv is its own folder" sh -c "test -d '$ROOT/releases/$G/.venv' && test ! -L '$ROOT/releases/$G/.venv'"

# a venv build killed half-way is rebuilt, not reused
mkwheel "$T/wheels" appdep 3.0 >/dev/null
echo "appdep==3.0" >"$APP/requirements.txt"
H=$(new_commit v8)
before=$(ls "$ROOT/venvs" | sort)
bg_deploy killme deploy
half() {
	for v in $(ls "$ROOT/venvs"); do
		case " $(echo $before) " in *" $v "*) continue ;; esac
		[ -d "$ROOT/venvs/$v/bin" ] && [ ! -e "$ROOT/venvs/$v/.deploy-complete" ] && return 0
	done
	return 1
}
if wait_for 60 half; then
	kill -KILL "$bgpid"
	bg_wait
	pass "a deploy was killed while its new venv was half built"
else
	bg_wait
	fail "never saw the new venv half built"
fi
run_deploy deploy
rc_is 0 "the next deploy succeeds"
like "$(out)" "*removed incomplete virtualenv*" "it says it removed the broken venv"
grep_ok "it ran virtualenv again" "$T/out" '^\[[0-9]+\] venv ok'
grep_ok "and pip" "$T/out" '^\[[0-9]+\] pip ok'
is "$(dep_of "$H")" "3.0" "H's venv works, with appdep 3.0"

done_testing
