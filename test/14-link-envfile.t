#!/bin/sh
# `link`: files and folders under shared/ appear in each release at the same
# relative path before build and test; a missing one fails the build naming
# it (exit 1); absolute paths and `..` are configuration errors.  `envfile`:
# its variables reach the build, test and check commands; a malformed line
# is a configuration error naming the line.
. "$(dirname "$0")/lib.sh"

LINK="link = config.ini data/uploads"
ENV="envfile = app.env"
CHECK="check = python health.py $APPSTATE $T/checkruns"
BUILD='build = sh -c "echo greeting=$GREETING >build.out; test -f config.ini"'
setup_root "$LINK" "$ENV" "$CHECK" "$BUILD"
S=$ROOT/shared
echo "db=prod" >"$S/config.ini"
mkdir -p "$S/data/uploads"
echo "photo" >"$S/data/uploads/1.jpg"
cat >"$S/app.env" <<'EOF'
# environment for build, test and check
GREETING=hello world
EMPTY=

DEPLOY_TEST_ENVFILE=yes
EOF

A=$(sha_of HEAD)
R=$ROOT/releases/$A
run_deploy deploy
rc_is 0 "deploy with link and envfile exits 0"
ok "config.ini is a symlink in the release" [ -L "$R/config.ini" ]
is "$(readlink -f "$R/config.ini")" "$S/config.ini" "to shared/config.ini"
ok "data/uploads is a symlink in the release" [ -L "$R/data/uploads" ]
is "$(readlink -f "$R/data/uploads")" "$S/data/uploads" "to shared/data/uploads"
is "$(cat "$ROOT/current/data/uploads/1.jpg")" photo "shared content reachable through current"
grep_ok "the test command saw the envfile's variable" "$TESTRUNS" "^rev=$A .* greeting=hello world\$"
grep_ok "the check command saw it" "$T/checkruns" "^rev=$A greeting=hello world\$"
is "$(cat "$R/build.out" 2>/dev/null)" "greeting=hello world" \
	"the build command saw it, and the links were there before it ran"
ok "the app runs from the release" app_runs_from "$A"

# ---- a missing linked file
write_conf "link = config.ini secrets/missing.key" "$ENV" "$CHECK"
B=$(new_commit v2)
pid=$(app_pid)
run_deploy deploy
rc_is 2 "a missing link target is refused before anything is built: exit 2"
like "$(err)" "*secrets/missing.key*" "the error names the missing file"
is "$(current_link)" "releases/$A" "current unchanged"
ok "no partial release left" absent "$ROOT/releases/$B"
is "$(app_pid)" "$pid" "the app untouched"

# ---- bad link paths are configuration errors
before=$(tree_listing "$ROOT/releases")
for l in "/etc/passwd" "../root.txt" "data/../../x" ; do
	write_conf "link = $l" "$ENV"
	_ln=$(grep -n '^link' "$ROOT/shared/deploy.conf" | cut -d: -f1)
	run_deploy deploy
	rc_is 2 "link = $l: exit 2"
	like "$(err)" "*deploy.conf:$_ln*" "link = $l: the error names deploy.conf:$_ln"
	is "$(current_link)" "releases/$A" "link = $l: current unchanged"
	is "$(tree_listing "$ROOT/releases")" "$before" "link = $l: releases/ unchanged"
done

# ---- a malformed envfile
write_conf "$LINK" "$ENV"
printf '# ok\nGOOD=1\nthis is not a variable\n' >"$S/app.env"
run_deploy deploy
rc_is 2 "a malformed envfile line: exit 2"
like "$(err)" "*app.env:3*" "the error names app.env:3"
is "$(current_link)" "releases/$A" "current unchanged"
is "$(tree_listing "$ROOT/releases")" "$before" "releases/ unchanged"

rm "$S/app.env"
run_deploy deploy
isnt "$rc" 0 "a missing envfile fails the deploy"
like "$(err)" "*app.env*" "naming the envfile"
is "$(current_link)" "releases/$A" "current unchanged"
is "$(tree_listing "$ROOT/releases")" "$before" "releases/ unchanged"

# ---- fixed: deploys again, with the new value
echo "GREETING=bonjour" >"$S/app.env"
run_deploy deploy
rc_is 0 "with a good envfile the deploy works again"
is "$(current_link)" "releases/$B" "and switches"
grep_ok "the test command saw the new value" "$TESTRUNS" "^rev=$B .* greeting=bonjour\$"

done_testing
