#!/bin/sh
# Configuration and usage errors exit 2, name the file and line where there
# is one, and change nothing; a config others can write is refused; -c FILE
# reads another config; a REF starting with '-' or holding shell syntax is
# refused or harmless.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy"
B=$(new_commit v2)	# what a working deploy would take
CONF=$ROOT/shared/deploy.conf

pid=$(app_pid)
before=$(tree_listing "$ROOT/releases")
# unchanged DESC
unchanged() {
	if [ "$(current_link)" = "releases/$A" ] &&
	    [ "$(tree_listing "$ROOT/releases")" = "$before" ] &&
	    [ "$(app_pid)" = "$pid" ]; then
		pass "$1: nothing changed"
	else
		fail "$1: nothing changed"
		diag "current: $(current_link); app pid $(app_pid) (was $pid)"
		diag "releases: $(releases)"
	fi
}

# bad_line DESC LINE: a config with LINE added is an error naming its line
bad_line() {
	write_conf "$2"
	_ln=$(grep -nF -- "$2" "$CONF" | head -n 1 | cut -d: -f1)
	run_deploy deploy
	rc_is 2 "$1: exit 2"
	like "$(err)" "*deploy.conf:$_ln*" "$1: the error names deploy.conf:$_ln"
	unchanged "$1"
}

bad_line "unknown key" "colour = blue"
bad_line "a line with no =" "this line is not a setting"
bad_line "keep below 2" "keep = 1"
bad_line "keep not a number" "keep = five"
bad_line "keep out of range" "keep = 99999999999999999999999"
bad_line "a negative timeout" "timeout = -3"
bad_line "check_timeout with junk" "check_timeout = 30s"
bad_line "reuse_venv neither yes nor no" "reuse_venv = maybe"
bad_line "an unbalanced quote in a command" 'test = python "check_app.py'

write_conf -repo
run_deploy deploy
rc_is 2 "no repo key: exit 2"
like "$(err)" "*repo*" "the error says repo is missing"
unchanged "no repo key"

# ---- a config others could change is refused
write_conf
chmod 0664 "$CONF"
run_deploy deploy
rc_is 2 "a group-writable deploy.conf is refused with 2"
like "$(err)" "*deploy.conf*" "the error names the file"
unchanged "group-writable config"
chmod 0646 "$CONF"
run_deploy deploy
rc_is 2 "a world-writable deploy.conf is refused with 2"
unchanged "world-writable config"
chmod 0644 "$CONF"
chown nobody "$CONF"
run_deploy deploy
rc_is 2 "a deploy.conf owned by another user is refused with 2"
unchanged "config owned by nobody"
chown "$(id -u)" "$CONF"

# ---- usage errors
for args in "frobnicate" "-Z deploy" "-k abc deploy" "-w soon deploy" \
    "deploy $B extra-word" "list extra-word"; do
	run_deploy $args
	rc_is 2 "usage error '$args': exit 2"
	unchanged "'$args'"
done
run_deploy -c "$T/no-such.conf" deploy
rc_is 2 "-c with a missing file: exit 2"
unchanged "-c missing file"

# ---- REFs that are options or shell syntax
for ref in "-x" "--upload-pack=touch $T/pwned" "--output=$T/pwned" \
    "-h"; do
	run_deploy -- deploy "$ref"
	rc_is 2 "REF '$ref' is refused with 2"
	unchanged "REF '$ref'"
	run_deploy deploy -- "$ref"
	rc_is 2 "REF '$ref' after -- is refused with 2"
	run_deploy -- prepare "$ref"
	rc_is 2 "prepare '$ref' is refused with 2"
	unchanged "prepare '$ref'"
done
for ref in "main;touch $T/pwned" "\$(touch $T/pwned)" "\`touch $T/pwned\`" \
    "main && touch $T/pwned" "main|touch $T/pwned"; do
	run_deploy deploy "$ref"
	rc_is 2 "REF '$ref' is not a ref: exit 2"
	unchanged "REF '$ref'"
done
ok "no REF reached a shell or an option of git" absent "$T/pwned"
write_conf "branch = --upload-pack=touch $T/pwned"
run_deploy deploy
rc_is 2 "a branch key starting with '-' is refused with 2"
unchanged "branch = --upload-pack=..."
ok "it did not reach git as an option" absent "$T/pwned"

# ---- -c FILE
write_conf
sed "s|$TESTRUNS|$T/other-runs|" "$CONF" >"$T/other.conf"
chmod 0644 "$T/other.conf"
run_deploy -c "$T/other.conf" deploy
rc_is 0 "-c FILE deploys with that file"
is "$(current_link)" "releases/$B" "current is the new head"
ok "the test command came from FILE" grep -q "^rev=$B " "$T/other-runs"
is "$(testruns_of "$B")" 0 "not from shared/deploy.conf"

# ---- a good config with comments, blank lines and odd spacing works
cat >"$CONF" <<EOF
# comment

   repo=$REMOTE
supervisorctl   =   supervisorctl -c '$SVCONF'
	program = app
test = python check_app.py "$TESTRUNS"
keep = 3
EOF
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "comments, blank lines, spacing and quotes are accepted"
is "$(current_link)" "releases/$C" "and the deploy happened"
is "$(testruns_of "$C")" 1 "with the quoted test command"

done_testing
