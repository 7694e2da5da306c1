#!/bin/sh
# Hostile configuration: malformed lines, unknown and duplicate keys, bad
# numbers, unterminated quotes, paths out of shared/, a malformed envfile,
# an oversized file, NUL bytes, a config others could write or another
# user owns, a FIFO in its place.  Each is exit 2 with one error line
# naming the file and line, and nothing changed.  CRLF line ends are
# accepted, and a value with shell syntax reaches the app literally.
. "$(dirname "$0")/lib.sh"
. "$TESTDIR/hostile.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy (A)"
B=$(new_commit v2)	# what a deploy would take if the config let it
CONF=$ROOT/shared/deploy.conf
snapshot

# bad_conf DESC GLOB LINE...: a config holding the LINEs is refused with
# exit 2 and an error matching GLOB, where @N@ stands for the line number
# of the last LINE in the file
bad_conf() {
	_bd=$1 _bg=$2
	shift 2
	write_conf "$@"
	for _bl; do :; done
	_bn=$(grep -nF -- "$_bl" "$CONF" | tail -n 1 | cut -d: -f1)
	_bg=$(printf '%s' "$_bg" | sed "s/@N@/$_bn/g")
	run_deploy deploy
	refused "$_bd" 2 "$_bg"
	not_pwned "$_bd: no payload ran"
}

# bad_line DESC LINE: LINE is refused, the error names deploy.conf:LINE
bad_line() {
	bad_conf "$1" "*$CONF:@N@: *" "$2"
}

# ---- malformed lines and keys
bad_line "a line without '='" "this line is not a setting"
bad_line "a key alone" "keep"
bad_line "an unknown key" "colour = blue"
bad_line "a known key in another case" "Keep = 3"
bad_line "a key holding shell syntax" "\$($PAYLOAD) = 1"
bad_line "'=' with no key" "= 3"
bad_line "a key with no value" "test ="
bad_line "a line over 4 KiB" "test = echo $(printf 'x%.0s' $(seq 5000))"

# ---- duplicate keys: refused, naming both lines.  (write_conf replaces a
# default it is given, so the second setting is appended by hand.)
# dup DESC LINE: LINE appended to a config that already sets its key
dup() {
	write_conf "keep = 3"
	printf '%s\n' "$2" >>"$CONF"
	_first=$(grep -n "^${2%% *} " "$CONF" | head -n 1 | cut -d: -f1)
	_last=$(wc -l <"$CONF")
	run_deploy deploy
	refused "$1" 2 "*$CONF:$_last: *"
	like "$(err)" "*line $_first*" "$1: the error names the first line ($_first) too"
	not_pwned "$1: no payload ran"
}
dup "a duplicate key (keep twice)" "keep = 4"
dup "a duplicate repo" "repo = $T/elsewhere"
dup "a duplicate test, the second one a payload" "test = $PAYLOAD"

# ---- numbers: not numbers, negative, overflowing, out of range
bad_line "keep not a number" "keep = five"
bad_line "keep with a fraction" "keep = 3.5"
bad_line "keep in hex" "keep = 0x10"
bad_line "keep with two numbers" "keep = 3 4"
bad_line "timeout with a unit" "timeout = 10s"
bad_line "check_timeout in exponent form" "check_timeout = 1e3"
bad_line "keep negative" "keep = -3"
bad_line "timeout negative" "timeout = -1"
bad_line "check_timeout negative" "check_timeout = -1"
bad_line "keep overflowing a long" "keep = 99999999999999999999"
bad_line "timeout at LONG_MAX + 1" "timeout = 9223372036854775808"
bad_line "check_timeout at 2^64" "check_timeout = 18446744073709551616"
bad_line "timeout at LONG_MIN - 1" "timeout = -9223372036854775809"
bad_line "keep above its range" "keep = 10001"

# ---- keep below 2, in the file and on the command line
bad_line "keep = 1" "keep = 1"
bad_line "keep = 0" "keep = 0"
write_conf
for k in 1 0 -1 99999999999999999999 two; do
	run_deploy -k "$k" deploy
	refused "-k $k" 2 "*-k $(glob_quote "$k")*"
done

# ---- unterminated quotes and a trailing backslash
bad_line "an unterminated double quote" 'test = python "check_app.py'
bad_line "an unterminated single quote" "build = sh -c 'echo hi"
bad_line "an unterminated quote in supervisorctl" "supervisorctl = \"supervisorctl -c $SVCONF"
bad_line "a trailing backslash" 'restart = echo \'

# ---- paths that leave shared/ or the release
bad_line "link absolute" "link = /etc/passwd"
bad_line "link with .." "link = ../deploy.conf"
bad_line "link with .. inside" "link = config/../../../etc"
bad_line "link with an absolute second word" "link = config.ini /etc/shadow"
bad_line "link with an empty component" "link = config//x"
bad_line "link ." "link = ."
bad_line "envfile absolute" "envfile = /etc/environment"
bad_line "envfile with .." "envfile = ../../etc/environment"
bad_line "requirements with .." "requirements = ../../../etc/passwd"
bad_line "requirements absolute" "requirements = /etc/passwd"

# ---- a ref in the config that is an option
bad_line "branch starting with '-'" "branch = --upload-pack=$PAYLOAD"
# a branch holding shell syntax is a ref git does not know: exit 2 too
write_conf "branch = main;$PAYLOAD"
run_deploy deploy
refused "branch = main;PAYLOAD" 2 "*'main;$(glob_quote "$PAYLOAD")'*"
not_pwned "branch = main;PAYLOAD: no payload ran"

# ---- the envfile: malformed lines
ENVF=$ROOT/shared/app.env
# bad_env DESC LINE: an envfile holding LINE (after a good line) is refused,
# the error names shared/app.env:2
bad_env() {
	printf 'GOOD=1\n%s\nLATER=2\n' "$2" >"$ENVF"
	write_conf "envfile = app.env"
	run_deploy deploy
	refused "envfile: $1" 2 "*$ENVF:2: *"
	not_pwned "envfile: $1: no payload ran"
}
bad_env "a line without '='" "NOEQUALS"
bad_env "'=' with no key" "=value"
bad_env "a key starting with a digit" "1KEY=x"
bad_env "an indented key starting with a digit" "  1KEY=x"
bad_env "a key with a dash" "BAD-KEY=x"
bad_env "a key with a space" "KEY WITH SPACE=x"
bad_env "sh's export syntax" "export KEY=x"
bad_env "a key that is shell syntax" "\$($PAYLOAD)=x"
printf 'GOOD=1\nNUL=a\0b\n' >"$ENVF"
run_deploy deploy
refused "envfile with a NUL byte" 2 "*$ENVF*"
X50=$(printf 'x%.0s' $(seq 50))	# made once: a fork a line cost seconds
{ echo "GOOD=1"; i=0; while [ $i -lt 1100 ]; do
	echo "# padding line $i: $X50"; i=$((i + 1)); done; } >"$ENVF"
run_deploy deploy
refused "envfile over 64 KiB ($(wc -c <"$ENVF") bytes)" 2 "*$ENVF*"
rm -f "$ENVF"
run_deploy deploy
refused "envfile missing" 2 "*$ENVF*"

# ---- size and NUL bytes
write_conf
{ cat "$CONF"; i=0; while [ $i -lt 1400 ]; do
	echo "# padding line $i: $X50"; i=$((i + 1)); done; } >"$T/big"
head -c 65537 "$T/big" >"$CONF"
echo >>"$CONF"
chmod 0644 "$CONF"
run_deploy deploy
refused "a config over 64 KiB ($(wc -c <"$CONF") bytes)" 2 "*$CONF*"
head -c 65535 "$T/big" | sed '$d' >"$CONF"
n=$(wc -c <"$CONF")
head -c $((65536 - n - 1)) /dev/zero | tr '\0' '#' >>"$CONF"
echo >>"$CONF"
run_deploy -n prune
rc_is 0 "a config of exactly 64 KiB ($(wc -c <"$CONF") bytes) is accepted"
unchanged "-n prune"

write_conf
printf 'keep = 3\0\n' >>"$CONF"
run_deploy deploy
refused "a NUL byte in a value" 2 "*$CONF*"
write_conf
printf '# a comment \0 with a NUL\n' >>"$CONF"
run_deploy deploy
refused "a NUL byte in a comment" 2 "*$CONF*"

# ---- a config others could change, or another user owns
for m in 0664 0646 0666 0620 0602 0777; do
	write_conf
	chmod $m "$CONF"
	run_deploy deploy
	refused "deploy.conf mode $m" 2 "*$CONF*"
done
write_conf
if [ "$(id -u)" -eq 0 ]; then
	chown nobody "$CONF"
	run_deploy deploy
	refused "deploy.conf owned by nobody" 2 "*$CONF*"
	cp -p "$CONF" "$T/other.conf"
	chown nobody "$T/other.conf"
	run_deploy -c "$T/other.conf" deploy
	refused "-c FILE owned by nobody" 2 "*$T/other.conf*"
	chown 0 "$CONF"
else
	for i in 1 2 3 4 5 6; do
		echo "ok $((_n + 1)) # SKIP chown to nobody needs root"
		_n=$((_n + 1))
	done
fi

# ---- no regular file where the config should be
mv "$CONF" "$T/saved.conf"
mkdir "$CONF"
run_deploy deploy
refused "deploy.conf is a directory" 2 "*$CONF*"
rmdir "$CONF"
mkfifo "$CONF"
chmod 0644 "$CONF"
run timeout -k 2 10 env DEPLOY_TEST_MARK="$MARK" "$DEPLOY" -C "$ROOT" deploy
refused "deploy.conf is a FIFO (nobody writes it)" 2 "*$CONF*"
rm -f "$CONF"
mv "$T/saved.conf" "$CONF"
ok "no payload ran for any config" absent "$PWNED"

# ---- CRLF line ends are accepted: a full deploy with a CRLF config
cat >"$CONF" <<EOF
# deploy.conf with CRLF line ends
repo = $REMOTE
supervisorctl = supervisorctl -c '$SVCONF'
program = app
test = python check_app.py $TESTRUNS
timeout = 120
keep = 3
EOF
sed -i 's/$/\r/' "$CONF"
ok "the config has CRLF line ends" grep -q "$(printf '\r')\$" "$CONF"
run_deploy deploy
rc_is 0 "a CRLF config deploys"
is "$(current_link)" "releases/$B" "current is B"
ok "the app runs from B" app_runs_from "$B"
is "$(testruns_of "$B")" 1 "the test command ran, its last word without the CR"
ok "no file named with a trailing CR" absent "$TESTRUNS$(printf '\r')"

# ---- an envfile with CRLF and shell syntax in values: passed literally
printf 'GREETING=$(%s)`%s`;%s\r\n# comment\r\n\r\n' \
	"$PAYLOAD" "$PAYLOAD" "$PAYLOAD" >"$ENVF"
write_conf "envfile = app.env"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "a deploy with a CRLF envfile holding shell syntax works"
is "$(current_link)" "releases/$C" "current is C"
grep_ok "the test saw GREETING verbatim, without the CR" "$TESTRUNS" \
	"^rev=$C .* greeting=\\\$\\($PAYLOAD\\)\`$PAYLOAD\`;$PAYLOAD\$"
ok "no payload ran" absent "$PWNED"

done_testing
