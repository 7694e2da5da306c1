#!/bin/sh
# verify = commit | tag: only commits (or tags) signed by a key in
# shared/'s allowed_signers (ssh) or gpg_keyring (OpenPGP) are built. git
# checks the signatures (verify-commit, verify-tag); a key that is only
# in the user's own keyring does not count. A refusal is one line, exit 1,
# nothing built or switched; a missing key file is exit 2; -n says the
# verdict; list, list --json and log show the signer.
. "$(dirname "$0")/lib.sh"

# no program: a restart would only cost time here
setup_root -program
# deploy's private key folders go here, so that the test can look
TMPDIR=$T/tmp
export TMPDIR
mkdir "$TMPDIR"
A=$(sha_of HEAD)

# ---- keys: ssh alice (allowed) and bob (not); OpenPGP carol (in the
# keyring file) and dave (only in the user's own keyring)
ssh-keygen -q -t ed25519 -N '' -C alice -f "$T/alice" || bail "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -C bob -f "$T/bob" || bail "ssh-keygen"
GNUPGHOME=$T/gnupg
export GNUPGHOME
mkdir -m 700 "$GNUPGHOME"
for who in Carol Dave; do
	gpg --batch --quiet --passphrase '' --quick-gen-key \
	    "$who <$who@example.invalid>" ed25519 sign never 2>/dev/null ||
		bail "gpg --quick-gen-key $who"
done
mkdir -m 755 "$ROOT/shared/keys"
gpg --batch --armor --export Carol@example.invalid >"$ROOT/shared/keys/carol.asc"
chmod 644 "$ROOT/shared/keys/carol.asc"

# signed_commit VERSION GIT-OPTION...: a commit signed as the options say
signed_commit() {
	_v=$1
	shift
	printf '%s\n' "$_v" >"$APP/VERSION"
	git -C "$APP" add -A &&
		git -C "$APP" "$@" commit -q -S -m "$_v" &&
		git -C "$APP" rev-parse HEAD
}
SSH_ALICE="-c gpg.format=ssh -c user.signingkey=$T/alice"
SSH_BOB="-c gpg.format=ssh -c user.signingkey=$T/bob"

# refused WHAT SHA: exit 1, one line on stderr, nothing built or switched
refused() {
	rc_is 1 "$1: exit 1"
	is "$(wc -l <"$T/err" | tr -d ' ')" 1 "$1: one line on stderr"
	is "$(releases)" "$before" "$1: nothing built"
	is "$(current_sha)" "$cur" "$1: current unchanged"
	grep_nok "$1: no build started" "$ROOT/.deploy/history" " build $2\$"
}

# ---- a missing key file is exit 2, never "allow everything"
write_conf -program "verify = commit" "allowed_signers = allowed_signers"
before=$(releases)
cur=$(current_sha)
run_deploy deploy
rc_is 2 "a missing allowed_signers file: exit 2"
grep_ok "the message names the file" "$T/err" "shared/allowed_signers"
is "$(releases)" "" "nothing built"
write_conf -program "verify = commit" "-allowed_signers"
run_deploy deploy
rc_is 2 "verify with neither key file set: exit 2"
grep_ok "the message names both keys" "$T/err" "allowed_signers or gpg_keyring"

printf 'alice@example.invalid %s\n' "$(cat "$T/alice.pub")" \
    >"$ROOT/shared/allowed_signers"
chmod 664 "$ROOT/shared/allowed_signers"
write_conf -program "verify = commit" "allowed_signers = allowed_signers"
run_deploy deploy
rc_is 2 "a group-writable allowed_signers: exit 2"
grep_ok "refused like a config would be" "$T/err" "writable by group or others"
chmod 644 "$ROOT/shared/allowed_signers"

# ---- unsigned: refused
run_deploy deploy
refused "an unsigned commit" "$A"
grep_ok "the line says it is unsigned and nothing changed" "$T/err" \
    "^deploy: refused ${A%????????????????????????????}: commit unsigned; nothing was built or switched\$"

# ---- signed by alice: deployed, the signer recorded
B=$(signed_commit v2 $SSH_ALICE) || bail "ssh signing failed"
run_deploy deploy
rc_is 0 "a commit signed by an allowed ssh key deploys"
is "$(current_sha)" "$B" "current is that commit"
grep_ok "the verify step names the signer" "$T/out" \
    '^\[[0-9]+\] verify ok [0-9.]+s \(alice@example.invalid \(ssh SHA256:'
like "$(list_line "$B")" "*  signed by alice@example.invalid (ssh SHA256:*" \
    "list shows the signer"
run_deploy list --json
ok "list --json has the signer" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = [x for x in d["releases"] if x["sha"] == sys.argv[2]][0]
assert r["signer"].startswith("alice@example.invalid (ssh SHA256:"), r
o = [x for x in d["releases"] if x["sha"] != sys.argv[2]]
assert all(x["signer"] is None for x in o), o' "$T/out" "$B"
run_deploy log "$B"
grep_ok "log shows the signer" "$T/out" "^== signed by alice@example.invalid"

# ---- signed by bob, whose key is not in allowed_signers: refused
before=$(releases)
cur=$(current_sha)
C=$(signed_commit v3 $SSH_BOB)
run_deploy deploy
refused "a commit signed by a key not allowed" "$C"
grep_ok "the line says so and names the key" "$T/err" \
    "refused ${C%????????????????????????????}: commit signed by a key not allowed: ssh key SHA256:"
run_deploy -n deploy
rc_is 1 "-n on it: exit 1"
grep_ok "-n says it would refuse it" "$T/err" "would refuse ${C%????????????????????????????}: commit signed by a key not allowed"

# no private folder for the keys: a configuration error, never "allow"
TMPDIR=$T/nosuch
run_deploy deploy
TMPDIR=$T/tmp
rc_is 2 "no place for the private key folder (TMPDIR unusable): exit 2"
grep_ok "the message says where" "$T/err" "^deploy: verify: $T/nosuch/"
is "$(releases)" "$before" "and nothing is built"

# ---- OpenPGP: dave is in the user's keyring, not in gpg_keyring
write_conf -program "verify = commit" "allowed_signers = allowed_signers" \
    "gpg_keyring = keys"
D=$(signed_commit v4 -c user.signingkey=Dave@example.invalid) ||
	bail "gpg signing failed"
ok "the user's own git accepts dave's signature" \
    sh -c 'git -C "$1" verify-commit "$2" 2>/dev/null' sh "$APP" "$D"
run_deploy deploy
refused "a commit signed by a key only in the user's keyring" "$D"
grep_ok "the line names the key not allowed" "$T/err" \
    "commit signed by a key not allowed: [Dd]ave@example.invalid \(openpgp "

E=$(signed_commit v5 -c user.signingkey=Carol@example.invalid)
run_deploy -n deploy
rc_is 0 "-n on a commit signed by carol: exit 0"
grep_ok "-n says whose signature" "$T/out" \
    "signature: (good, by Carol <Carol@example.invalid> \(openpgp|not checked)"
run_deploy deploy
rc_is 0 "a commit signed by a key in gpg_keyring (a folder) deploys"
is "$(current_sha)" "$E" "current is that commit"
like "$(list_line "$E")" "*  signed by Carol <Carol@example.invalid> (openpgp *" \
    "list shows the OpenPGP signer"

# the keyring as one file; a missing one is exit 2
write_conf -program "verify = commit" "gpg_keyring = keys/nosuch.asc"
run_deploy deploy
rc_is 2 "a missing gpg_keyring: exit 2"
grep_ok "the message names it" "$T/err" "shared/keys/nosuch.asc"
write_conf -program "verify = commit" "gpg_keyring = keys/carol.asc"
before=$(releases)
cur=$(current_sha)
F=$(signed_commit v6 $SSH_ALICE)
run_deploy deploy
refused "an ssh signature with no allowed_signers set" "$F"

# ---- verify = tag: a signed annotated tag's commit is built
write_conf -program "verify = tag" "allowed_signers = allowed_signers"
G=$(new_commit v7)
git -C "$APP" tag v7-light "$G"
git -C "$APP" tag -a -m "unsigned v7" v7-plain "$G"
git -C "$APP" $SSH_ALICE tag -s -m "release v7" v7 "$G" || bail "tag -s"
before=$(releases)
cur=$(current_sha)
run_deploy deploy v7-light
refused "verify = tag and a lightweight tag" "$G"
grep_ok "the line says it is not an annotated tag" "$T/err" \
    "'v7-light' is not an annotated tag"
run_deploy deploy v7-plain
refused "verify = tag and an unsigned annotated tag" "$G"
grep_ok "the line says the tag is unsigned" "$T/err" ": tag unsigned;"
run_deploy deploy main
refused "verify = tag and a branch" "$G"
run_deploy deploy v7
rc_is 0 "verify = tag and a signed tag: deployed"
is "$(current_sha)" "$G" "the tag's commit is current"
like "$(list_line "$G")" "*  signed by alice@example.invalid (ssh *" "list shows the tag's signer"

# ---- an allowed key past its valid-before date
printf 'alice@example.invalid valid-before="20200101" %s\n' \
    "$(cat "$T/alice.pub")" >"$ROOT/shared/expired_signers"
chmod 644 "$ROOT/shared/expired_signers"
write_conf -program "verify = commit" "allowed_signers = expired_signers"
before=$(releases)
cur=$(current_sha)
H=$(signed_commit v8 $SSH_ALICE)
run_deploy deploy
refused "a commit signed by an expired ssh key" "$H"
grep_ok "the line says the key expired" "$T/err" \
    "commit signed by an expired key: ssh key SHA256:"
write_conf -program "verify = tag" "allowed_signers = allowed_signers"

# ---- rollback: verified afresh, under today's keys (issue 29)
run_deploy rollback
rc_is 1 "rollback under verify = tag to a release no signed tag names: exit 1"
is "$(current_sha)" "$G" "current is unchanged"
write_conf -program "verify = commit" "gpg_keyring = keys"
run_deploy rollback
rc_is 0 "rollback to a commit carol signed, her key allowed: exit 0"
is "$(current_sha)" "$E" "current is carol's commit again"

is "$(ls -A "$TMPDIR")" "" "the private key folders are gone"
is "$(pgrep -f "$TMPDIR/" | tr '\n' ' ')" "" "no gpg-agent or other process of theirs is left"
done_testing
