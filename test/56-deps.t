#!/bin/sh
# Dependencies are never skipped in silence (issue 31): a commit that
# declares them in a way deploy cannot install (pyproject.toml's
# [project] dependencies, uv.lock, Pipfile.lock) and has no requirements
# file is refused with exit 2 before anything is built, the message
# naming the file and the export command; -n says the same. A
# requirements file beside a lock file is used, as before, and -n says
# so; deps = none installs nothing; a bad deps value names its line.
. "$(dirname "$0")/lib.sh"

setup_root
git -C "$APP" rm -q requirements.txt
cat >"$APP/pyproject.toml" <<'EOF'
[project]
name = "example"
version = "1.0"
dependencies = ["appdep==1.0"]
EOF
P=$(new_commit pyproject-only)

# refused DESC FILE LINE: prepare and -n both exit 2 naming FILE and LINE,
# with nothing built
refused() {
	run_deploy -n prepare
	rc_is 2 "$1: -n exits 2"
	like "$(err)" "*deps*$2*" "$1: -n names $2"
	like "$(err)" "*$3*" "$1: -n gives the export line"
	run_deploy prepare
	rc_is 2 "$1: prepare exits 2"
	like "$(err)" "*$2*$3*" "$1: the refusal names $2 and the export line"
	is "$(releases)" "" "$1: nothing built in releases/"
	ok "$1: no venv made" absent "$ROOT/venvs"
	_runs=$(testruns_of "$(sha_of HEAD)")
	is "${_runs:-0}" 0 "$1: no test ran"
}

UV='uv export --frozen --no-dev --no-emit-project -o requirements.txt'
refused "pyproject-only" "pyproject.toml" "$UV"
like "$(err)" "*pyproject.toml*\\[project\\] dependencies*" \
    "pyproject-only: names its [project] dependencies"

printf 'version = 1\n[[package]]\nname = "appdep"\nversion = "1.0"\n' \
    >"$APP/uv.lock"
U=$(new_commit uv.lock)
refused "uv.lock-only" "uv.lock" "$UV"

git -C "$APP" rm -q uv.lock
printf '{"default": {"appdep": {"version": "==1.0"}}}\n' >"$APP/Pipfile.lock"
new_commit Pipfile.lock >/dev/null
run_deploy -n prepare
rc_is 2 "Pipfile.lock-only: -n exits 2"
like "$(err)" "*Pipfile.lock*pipenv requirements > requirements.txt*" \
    "Pipfile.lock-only: -n names it and the pipenv line"

# a requirements file beside the lock files: used as before
git -C "$APP" rm -q Pipfile.lock
printf 'version = 1\n' >"$APP/uv.lock"
echo "appdep==1.0" >"$APP/requirements.txt"
R=$(new_commit requirements-beside)
run_deploy -n prepare
rc_is 0 "requirements.txt beside uv.lock: -n exits 0"
like "$(out)" "*deps: requirements.txt*uv.lock beside it is not read*" \
    "-n says requirements.txt is used, uv.lock not read"
run_deploy prepare
rc_is 0 "requirements.txt beside uv.lock: prepare exits 0"
ok "it was built" [ -f "$ROOT/releases/$R/REVISION" ]
is "$(testruns_of "$R")" 1 "its test ran, appdep installed"

# deps = none: nothing installed, said so
git -C "$APP" rm -q requirements.txt uv.lock
echo 'import sys; print("no deps")' >"$APP/nodeps.py"
N=$(new_commit no-deps)
write_conf "deps = none" "test = python nodeps.py"
run_deploy prepare
rc_is 0 "deps = none: prepare of a pyproject-only commit exits 0"
grep_ok "the pip step says deps = none" "$T/out" \
    '^\[[0-9]+\] pip skipped \(deps = none\)'

# dryrefuses DESC PATTERN: -n of HEAD exits 2, stderr matching PATTERN
dryrefuses() {
	run_deploy -n prepare
	rc_is 2 "$1: -n exits 2"
	like "$(err)" "*preflight: deps: $2*" "$1: -n says why"
}
# dryok DESC PATTERN: -n of HEAD exits 0, stdout matching PATTERN
dryok() {
	run_deploy -n prepare
	rc_is 0 "$1: -n exits 0"
	like "$(out)" "*$2*" "$1: -n says what is used"
}
write_conf
# a root key named dependencies is not [project]'s
printf 'dependencies = ["x"]\n[project]\nname = "x"\ndependencies = []\n' \
    >"$APP/pyproject.toml"
printf '[tool.poetry.dependencies]\npython = "^3.7"\n' >>"$APP/pyproject.toml"
new_commit empty-deps >/dev/null
dryok "pyproject.toml declaring nothing" "deps: none: the commit declares no dependencies"
printf '[tool.poetry.dependencies]\npython = "^3.7"\nappdep = "*"\n' \
    >"$APP/pyproject.toml"
new_commit poetry-deps >/dev/null
dryrefuses "[tool.poetry.dependencies] without a lock" \
    "pyproject.toml*\\[tool.poetry.dependencies\\]*poetry lock*poetry export -o requirements.txt*"
printf '# poetry\n' >"$APP/poetry.lock"
new_commit poetry-lock >/dev/null
dryok "poetry.lock alone" "deps: poetry.lock, by poetry install"
printf 'version = 1\n' >"$APP/uv.lock"
new_commit two-locks >/dev/null
dryrefuses "poetry.lock and uv.lock" "*more than one lock file ( poetry.lock uv.lock)*"
git -C "$APP" rm -q uv.lock poetry.lock pyproject.toml
echo 'from setuptools import setup; setup()' >"$APP/setup.py"
new_commit setup.py >/dev/null
dryrefuses "setup.py" "setup.py at *install_requires*"
write_conf "deps = requirements"
dryrefuses "deps = requirements, none committed" \
    "deps = requirements, but * has no requirements.txt*"
write_conf "deps = poetry"
dryrefuses "deps = poetry, no poetry.lock" "deps = poetry, but * has no poetry.lock*"

write_conf "deps = yes"
run_deploy -n prepare
rc_is 2 "deps = yes: exit 2"
like "$(err)" "*deploy.conf:*deps must be auto, requirements, poetry or none*" \
    "deps = yes: the line is named"

done_testing
