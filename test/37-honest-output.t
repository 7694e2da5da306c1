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

done_testing
