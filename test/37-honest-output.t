#!/bin/sh
# What deploy says must be true at the edges too (issue 18, items 10-19):
# init lists every key; Ctrl-C reads "interrupted"; a repeated block of
# output is collapsed; --json is strict UTF-8; notify fires only when
# something was attempted and names the release that failed.
. "$(dirname "$0")/lib.sh"

# ---- 12. init writes every key, migrate and notify included
make_app
mkdir -p "$T/r12"
run "$DEPLOY" -C "$T/r12" init "$REMOTE"
rc_is 0 "init on an empty folder"
miss=
for k in repo branch keep virtualenv requirements reuse_venv build test \
    program supervisorctl restart check check_timeout link envfile timeout \
    migrate notify; do
	grep -Eq "^(# )?$k = " "$T/r12/shared/deploy.conf" || miss="$miss $k"
done
is "$miss" "" "init's deploy.conf lists every key (commented like the others)"
run "$DEPLOY" -C "$T/r12" -n
rc_is 0 "and it still parses as written"

# ---- 10. Ctrl-C during the test step reads "interrupted", not FAILED
setup_root "test = python check_app.py $TESTRUNS 30"
bg_deploy ctrlc deploy
wait_for 60 test -s "$TESTRUNS.started"
kill -INT "$bgpid"
bg_wait
is "$bgrc" 130 "a deploy interrupted by SIGINT exits 130"
grep_ok "the test step reads interrupted" "$T/bg.err" \
    '^\[[0-9]+\] test interrupted [0-9.]+s: by SIGINT \(Ctrl-C\)$'
grep_nok "not FAILED" "$T/bg.err" 'FAILED'
grep_nok "not 'signal 2'" "$T/bg.err" 'stopped by signal'
write_conf
rm -f "$TESTRUNS.started"

# ---- 15. --json is strict UTF-8 (RFC 3629), controls as JSON escapes
# a commit whose subject holds a tab, an escape, an F5 lead, a surrogate
# (ED A0 80), overlong forms (E0 80 AF, F0 80 80 AF), F4 90 (past
# U+10FFFF) and one good e-acute, made byte for byte by hash-object
tree=$(git -C "$APP" rev-parse 'HEAD^{tree}')
parent=$(git -C "$APP" rev-parse HEAD)
W=$(printf 'tree %s\nparent %s\nauthor t <t@t> 1700000000 +0000\ncommitter t <t@t> 1700000000 +0000\n\nodd\tsubj\033[2J \365 \355\240\200 \340\200\257 \360\200\200\257 \364\220\200\200 caf\303\251\n' \
    "$tree" "$parent" | git -C "$APP" hash-object -t commit -w --stdin)
git -C "$APP" update-ref refs/heads/main "$W"
run_deploy deploy
rc_is 0 "deploy the commit with the odd subject"
# strict: decode with errors='strict', then json.loads
strict() {
	"$PY" -c '
import json, sys
d = json.loads(sys.stdin.buffer.read().decode("utf-8", errors="strict"))
print(json.dumps(d, ensure_ascii=True))' <"$T/json"
}
# has STRING: $T/out holds STRING, verbatim
has() { grep -qF -- "$1" "$T/out"; }
run_deploy list --json
rc_is 0 "list --json"
cp "$T/out" "$T/json"
run strict
rc_is 0 "its output decodes as strict UTF-8 and parses as JSON"
ok "the subject: tab and ESC as characters, each bad byte a U+FFFD, e-acute kept" \
    has '"subject": "odd\tsubj\u001b[2J \ufffd \ufffd\ufffd\ufffd \ufffd\ufffd\ufffd \ufffd\ufffd\ufffd\ufffd \ufffd\ufffd\ufffd\ufffd caf\u00e9"'
run_deploy list
ok "plain list still shows controls as \\xNN" has 'odd\x09subj\x1b[2J'

# root and problem: a root named with a tab and a surrogate, its current
# pointing at bytes no decoder takes
odd=$(printf '%s/odd\t\355\240\200root' "$T")
mkdir -p "$odd/releases"
ln -s "$(printf 'releases/\365\033x')" "$odd/current"
run "$DEPLOY" -C "$odd" status --json
rc_is 5 "status --json on a root whose current is broken exits 5"
cp "$T/out" "$T/json"
run strict
rc_is 0 "status --json decodes as strict UTF-8 and parses"
ok "root: tab escaped, surrogate replaced" has '/odd\t\ufffd\ufffd\ufffdroot", '
ok "problem: the same" has "releases/\\ufffd\\u001bx'"

done_testing
