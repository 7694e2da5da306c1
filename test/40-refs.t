#!/bin/sh
# Hostile REF and REV arguments, as CI might pass them: words that git
# would take as options, shell syntax that runs a payload if any shell ever
# sees it, refs that do not exist, a sha not in the repo, an ambiguous
# 7-digit REV, REVs shorter than 7.  Each gets exit 2, one clear error line
# naming the argument, and changes nothing: not current, not releases/,
# not the history, not the running app.
. "$(dirname "$0")/lib.sh"
. "$TESTDIR/hostile.sh"

setup_root "keep = 10"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy (A)"
B=$(new_commit v2)	# what a deploy would take if a REF slipped through
snapshot

# bad DESC STATUS ARG CMD...: runs deploy CMD..., expects STATUS, one error
# line quoting ARG (as $SHOWN when set: control bytes are shown as \xNN),
# nothing changed, no payload run
bad() {
	_d=$1 _st=$2 _arg=${SHOWN:-$3}
	shift 3
	run_deploy "$@"
	refused "$_d" "$_st" "*'$(glob_quote "$_arg")'*"
	not_pwned "$_d: no payload ran"
}

# every command that takes a REF or REV; SHOWN=how the error quotes it
each_command() {
	_ecd=$1 _ecref=$2
	bad "deploy '$_ecd'" 2 "$_ecref" deploy "$_ecref"
	bad "prepare '$_ecd'" 2 "$_ecref" prepare "$_ecref"
	bad "activate '$_ecd'" 2 "$_ecref" activate "$_ecref"
	bad "rollback '$_ecd'" 2 "$_ecref" rollback "$_ecref"
}

# the same after "--", where a word starting with '-' is a REF or REV
each_command_dd() {
	_ecd=$1 _ecref=$2
	bad "deploy -- '$_ecd'" 2 "$_ecref" deploy -- "$_ecref"
	bad "prepare -- '$_ecd'" 2 "$_ecref" prepare -- "$_ecref"
	bad "activate -- '$_ecd'" 2 "$_ecref" activate -- "$_ecref"
	bad "rollback -- '$_ecd'" 2 "$_ecref" rollback -- "$_ecref"
}

# ---- words starting with '-': git would take them as options.  After
# the command they are deploy's options, and these are unknown ones (exit
# 2); after "--" they are REFs or REVs, and refused as such.
each_command "--upload-pack=PAYLOAD" "--upload-pack=$PAYLOAD"
each_command_dd "--upload-pack=PAYLOAD" "--upload-pack=$PAYLOAD"
each_command "--upload-pack=touch PWNED" "--upload-pack=touch $PWNED"
each_command_dd "--upload-pack=touch PWNED" "--upload-pack=touch $PWNED"
each_command_dd "-h" "-h"
each_command "--output=FILE" "--output=$T/output-file"
each_command_dd "--output=FILE" "--output=$T/output-file"
ok "--output did not write a file" absent "$T/output-file"
each_command "-" "-"
each_command "--end-of-options" "--end-of-options"
each_command_dd "--end-of-options" "--end-of-options"
# after deploy's own "--", the word is still a REF, not an option
bad "-- deploy --upload-pack=PAYLOAD" 2 "--upload-pack=$PAYLOAD" \
	-- deploy "--upload-pack=$PAYLOAD"
# a config 'branch' is a REF too
write_conf "branch = --upload-pack=$PAYLOAD"
line=$(grep -n '^branch' "$ROOT/shared/deploy.conf" | cut -d: -f1)
run_deploy deploy
refused "branch = --upload-pack=PAYLOAD" 2 "*deploy.conf:$line:*branch*"
not_pwned "branch = --upload-pack=PAYLOAD: no payload ran"
write_conf "keep = 10"

# ---- shell syntax: a shell that saw any of these would run PAYLOAD
each_command "main;PAYLOAD" "main;$PAYLOAD"
each_command "main; PAYLOAD" "main; $PAYLOAD"
each_command "\$(PAYLOAD)" "\$($PAYLOAD)"
each_command "\$(touch PWNED)" "\$(touch $PWNED)"
each_command "\`PAYLOAD\`" "\`$PAYLOAD\`"
each_command "main|PAYLOAD" "main|$PAYLOAD"
each_command "main&&PAYLOAD" "main&&$PAYLOAD"
each_command "main&PAYLOAD" "main&$PAYLOAD"
each_command "main>FILE" "main>$T/redirected"
ok "no shell redirected output to a file" absent "$T/redirected"
nl='
'
SHOWN="main\\x0a$PAYLOAD" each_command "main<newline>PAYLOAD" "main${nl}$PAYLOAD"
SHOWN="\\x0a$PAYLOAD" each_command "<newline>PAYLOAD" "${nl}$PAYLOAD"
SHOWN="main\\x09$PAYLOAD" each_command "main<tab>PAYLOAD" "main	$PAYLOAD"
SHOWN="main\\x0d$PAYLOAD" each_command "main<CR>PAYLOAD" \
    "main$(printf '\r')$PAYLOAD"
unset SHOWN
ok "no payload ran, for any REF" absent "$PWNED"

# ---- refs that do not exist
for ref in no-such-branch refs/heads/nope v9.9.9 "main~999" "main^{tree}" \
    ../../etc/passwd "$(printf 'x%.0s' $(seq 300))"; do
	short=$(printf %.40s "$ref")
	bad "deploy of the missing ref '$short'" 2 "$ref" deploy "$ref"
	bad "prepare of the missing ref '$short'" 2 "$ref" prepare "$ref"
done

# ---- a sha that is not in the repo
SHA64=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
SHA40=$(printf %.40s "$SHA64")
each_command "a random 64-hex sha" "$SHA64"
each_command "a random 40-hex sha" "$SHA40"
# B is a commit, but no release was built from it
bad "activate B, a commit with no release" 2 "$B" activate "$B"
bad "rollback B, a commit with no release" 2 "$B" rollback "$B"

# ---- an ambiguous 7-digit prefix: two releases sharing 7 hex digits
"$PY" "$TESTDIR/collide.py" "$APP" >"$T/collide" || bail "collide.py failed"
CA=$(sed -n 1p "$T/collide")
CB=$(sed -n 2p "$T/collide")
P7=$(printf %.7s "$CA")
is "$(printf %.7s "$CB")" "$P7" "collide.py made two commits sharing 7 digits"
run_deploy deploy collide-a
rc_is 0 "deploy the first of them"
run_deploy deploy collide-b
rc_is 0 "deploy the second of them"
is "$(list_state "$CA") $(list_state "$CB")" "complete complete" \
	"both are complete releases"
snapshot
bad "activate of the ambiguous prefix $P7" 2 "$P7" activate "$P7"
like "$(err)" "*ambiguous*" "the error says it is ambiguous"
bad "rollback to the ambiguous prefix $P7" 2 "$P7" rollback "$P7"
like "$(err)" "*ambiguous*" "the error says it is ambiguous"
bad "deploy of the ambiguous prefix $P7" 2 "$P7" deploy "$P7"
# the longest common prefix of the two, when it is longer than 7
n=7
while [ "$(printf %.$((n + 1))s "$CA")" = "$(printf %.$((n + 1))s "$CB")" ]; do
	n=$((n + 1))
done
PL=$(printf %.${n}s "$CA")
bad "activate of their longest common prefix $PL" 2 "$PL" activate "$PL"

# ---- prefixes shorter than 7
for len in 6 4 1; do
	p=$(printf %.${len}s "$A")
	bad "activate of A's $len-digit prefix" 2 "$p" activate "$p"
	like "$(err)" "*7*" "the error says a REV needs 7 digits"
	bad "rollback to A's $len-digit prefix" 2 "$p" rollback "$p"
done
bad "activate of an empty REV" 2 "" activate ""
bad "deploy of an empty REF" 2 "" deploy ""
# not a sha at all: a REV is not a REF
bad "activate main (a branch, not a REV)" 2 main activate main
bad "activate A's prefix followed by junk" 2 "$(printf %.7s "$A")x" \
	activate "$(printf %.7s "$A")x"
bad "activate a REV longer than 64" 2 "${SHA64}a" activate "${SHA64}a"

# ---- the same releases are reachable by unique prefixes: the refusals
# above were about the input, not a REV matcher that never matches
run_deploy activate "$(printf %.7s "$A")"
rc_is 0 "activate A by a unique 7-digit prefix works"
is "$(current_link)" "releases/$A" "and switches to A"
U=$(printf %.$((n + 1))s "$CA")
run_deploy activate "$U"
rc_is 0 "activate the first collided release by its unique $((n + 1))-digit prefix"
is "$(current_link)" "releases/$CA" "and switches to it"

# ---- a REF that is one of deploy's own options: options may follow the
# command, so `deploy deploy -n` is a dry run; CI passing a REF must use
# `deploy deploy -- "$REF"`, and that form refuses such a word as a REF
# (it must not become a dry run, another root or another config that all
# "succeed" without deploying the REF).
mkdir -p "$T/elsewhere"
cp "$ROOT/shared/deploy.conf" "$T/evil.conf"
sed -i "s|^test = .*|test = $PAYLOAD|" "$T/evil.conf"
i=0
for ref in -n -q -v -h -k2 -w0 "-C$T/elsewhere" "-c$T/evil.conf"; do
	i=$((i + 1))
	new_commit "option-$i" >/dev/null	# something a deploy would take
	snapshot
	bad "deploy -- '$ref'" 2 "$ref" deploy -- "$ref"
	snapshot
	bad "prepare -- '$ref'" 2 "$ref" prepare -- "$ref"
	snapshot
	bad "activate -- '$ref'" 2 "$ref" activate -- "$ref"
	snapshot
	bad "rollback -- '$ref'" 2 "$ref" rollback -- "$ref"
done
snapshot
run_deploy deploy -n
rc_is 0 "'deploy deploy -n': -n after the command is the dry-run option"
unchanged "deploy deploy -n"
not_pwned "deploy deploy -n: no payload ran"
ok "no payload ran in the whole test" absent "$PWNED"

done_testing
