#!/bin/sh
# init's deploy.conf names every key of the config table in
# docs/configuration.md (read from the table, so a key added there is
# looked for here too), and with a BRANCH writes `branch = BRANCH` without a
# commented-out `# branch =` beside it (issue 31). No supervisord needed.
. "$(dirname "$0")/lib.sh"

make_app
TABLE=$TOP/docs/configuration.md
keys_of_table() {
	sed -n 's/^| `\([a-z_]*\)` |.*/\1/p' "$TABLE" | sort -u
}
keys_of_conf() {
	sed -n 's/^#* *\([a-z_][a-z_]*\) =.*/\1/p' "$1" | sort -u
}

run "$DEPLOY" -C "$T/r1" init "$REMOTE"
rc_is 0 "init URL"
C=$T/r1/shared/deploy.conf
ok "the table lists keys" [ "$(keys_of_table | wc -l)" -ge 20 ]
missing=$(keys_of_table | while read -r k; do
	grep -q "^#* *$k =" "$C" || printf '%s ' "$k"
done)
is "$missing" "" "every key of the table is in init's deploy.conf"
extra=$(keys_of_conf "$C" | while read -r k; do
	grep -q "^| \`$k\` |" "$TABLE" || printf '%s ' "$k"
done)
is "$extra" "" "deploy.conf names no key the table lacks"
is "$(grep -c '^# branch = ' "$C")" 1 "without BRANCH: branch commented out"

run "$DEPLOY" -C "$T/r2" init "$REMOTE" main
rc_is 0 "init URL main"
C=$T/r2/shared/deploy.conf
is "$(grep -c '^branch = main$' "$C")" 1 "with BRANCH: branch = main"
is "$(grep -c '^# *branch =' "$C")" 0 "and no commented-out branch line beside it"
run "$DEPLOY" -C "$T/r2" -n prepare
unlike "$(err)" "*deploy.conf*" "the written deploy.conf parses"

done_testing
