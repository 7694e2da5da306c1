#!/bin/sh
# The audit trail ROOT/.deploy/audit: one JSON line per command that
# changed something or was refused, with who (observed: uid, name, tty;
# claimed: SUDO_USER, SSH_CONNECTION, CI variables, DEPLOY_ACTOR) kept
# apart; each line carries the SHA-256 of the one before, so that
# `deploy audit --verify` finds an edited line, an edited field and a
# removed line. notify gets DEPLOY_ACTOR. Prune leaves the trail alone.
. "$(dirname "$0")/lib.sh"

cat >"$T/notify.sh" <<EOF
#!/bin/sh
printf '%s %s\n' "\$DEPLOY_EVENT" "\$DEPLOY_ACTOR" >>"$T/notified"
EOF
chmod 755 "$T/notify.sh"
# no program: a restart would only cost time here
setup_root -program "notify = $T/notify.sh"
AUDIT=$ROOT/.deploy/audit
A=$(sha_of HEAD)
unset SSH_CONNECTION SUDO_USER GITHUB_ACTOR GITHUB_RUN_ID GITHUB_REPOSITORY \
    CIRCLE_USERNAME CIRCLE_BUILD_URL GITLAB_USER_LOGIN CI_JOB_URL DEPLOY_ACTOR

lines() { wc -l <"$AUDIT" | tr -d ' '; }

# env_deploy VAR=VALUE... "$DEPLOY" ARGS: run_deploy with those set
env_deploy() {
	run timeout -k 5 "$DEPLOY_TEST_LIMIT" env DEPLOY_TEST_MARK="$MARK" "$@"
}

# ---- a deploy over ssh, by sudo, from cron
env_deploy SSH_CONNECTION="192.0.2.7 50022 192.0.2.1 22" SUDO_USER=alice \
    DEPLOY_ACTOR=cron "$DEPLOY" -C "$ROOT" deploy
rc_is 0 "a deploy with SSH_CONNECTION, SUDO_USER and DEPLOY_ACTOR"
is "$(lines)" 1 "one audit line"
is "$(stat -c %a "$AUDIT")" 600 "the trail is mode 0600"
is "$(cat "$T/notified")" "deploy cron" "notify got DEPLOY_ACTOR as recorded"

# ---- from GitHub Actions
B=$(new_commit v2)
env_deploy GITHUB_ACTOR=octocat GITHUB_RUN_ID=4242 \
    GITHUB_REPOSITORY=example/app "$DEPLOY" -C "$ROOT" deploy
rc_is 0 "a deploy with GITHUB_ACTOR"
is "$(lines)" 2 "two audit lines"
is "$(tail -n 1 "$T/notified")" "deploy octocat" "notify got the GitHub actor"

# nothing to do: nothing recorded
run_deploy deploy
is "$(lines)" 2 "a deploy of what is current adds no line"
run_deploy -n rollback
is "$(lines)" 2 "-n adds no line"

# ---- a failed deploy, a rollback with an odd actor, a prune
touch "$APP/FAIL_TESTS"
C=$(new_commit v3-broken)
env_deploy DEPLOY_ACTOR='chat "bot"
with a newline' "$DEPLOY" -C "$ROOT" deploy
rc_is 1 "a failing deploy"
env_deploy DEPLOY_ACTOR='chat "bot"
with a newline' "$DEPLOY" -C "$ROOT" rollback
rc_is 0 "a rollback"
run_deploy prune
rc_is 0 "prune"
is "$(lines)" 5 "the failed deploy, the rollback and prune add a line each"

# ---- a refused signature
ssh-keygen -q -t ed25519 -N '' -C k -f "$T/key" || bail "ssh-keygen"
printf 'k@example.invalid %s\n' "$(cat "$T/key.pub")" >"$ROOT/shared/allowed"
chmod 644 "$ROOT/shared/allowed"
write_conf -program "notify = $T/notify.sh" "verify = commit" \
    "allowed_signers = allowed"
rm "$APP/FAIL_TESTS"
D=$(new_commit v4-unsigned)
run_deploy deploy
rc_is 1 "an unsigned commit is refused"
is "$(lines)" 6 "the refusal adds a line"

# ---- strict JSON, the fields, the chain
cat >"$T/check.py" <<'EOF'
import hashlib, json, os, pwd, re, sys

def strict(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "duplicate key: %r" % keys
    return dict(pairs)

def no_const(c):
    raise ValueError("not JSON: %s" % c)

path, A, B, C, D = sys.argv[1:]
raw = open(path, "rb").read()
assert raw.endswith(b"\n")
lines = raw.split(b"\n")[:-1]
recs = []
prev = "0" * 64
for l in lines:
    r = json.loads(l.decode("utf-8"), object_pairs_hook=strict,
                   parse_constant=no_const)
    assert r["prev"] == prev, (r["prev"], prev)
    prev = hashlib.sha256(l).hexdigest()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["time"]), r
    assert isinstance(r["status"], int), r
    assert isinstance(r["duration"], float) and r["duration"] >= 0, r
    o = r["observed"]
    assert o["uid"] == os.getuid(), o
    assert o["user"] == pwd.getpwuid(os.getuid()).pw_name, o
    assert o["tty"] is None, o          # the tests run with stdin /dev/null
    recs.append(r)
ev = [(r["event"], r["status"], r["revision"], r["previous"]) for r in recs]
assert ev == [("deploy", 0, A, None), ("deploy", 0, B, A), ("deploy", 1, C, B),
              ("rollback", 0, A, B), ("prune", 0, None, None),
              ("deploy", 1, D, A)], ev
c = recs[0]["claimed"]
assert c == {"actor": "cron", "ssh_client": "192.0.2.7", "ssh_port": "50022",
             "sudo_user": "alice", "deploy_actor": "cron"}, c
c = recs[1]["claimed"]
assert c == {"actor": "octocat", "github_actor": "octocat",
             "github_run_id": "4242", "github_repository": "example/app"}, c
assert recs[3]["claimed"]["deploy_actor"] == 'chat "bot"\nwith a newline'
assert all(r["refused"] is None for r in recs[:5])
assert recs[5]["refused"] == "commit unsigned", recs[5]
assert all(r["signer"] is None for r in recs)
EOF
ok "every line is strict JSON with the fields, and chains to the one before" \
    "$PY" "$T/check.py" "$AUDIT" "$A" "$B" "$C" "$D"

run_deploy audit
rc_is 0 "audit exits 0"
is "$(wc -l <"$T/out" | tr -d ' ')" 6 "audit: one text line per event"
grep_ok "the text shows the ssh client, sudo and the actor" "$T/out" \
    "^[0-9-]+T[0-9:]+Z  deploy +0  ${A%????????????????????????????}  .*\(.*[0-9]+\)  by cron  sudo from alice  ssh 192\.0\.2\.7:50022\$"
grep_ok "the text shows a refusal" "$T/out" "  deploy +1  ${D%????????????????????????????}  .*REFUSED: commit unsigned\$"
grep_ok "the text shows the GitHub run" "$T/out" "by octocat  github run 4242"
run_deploy audit --json -n 2
rc_is 0 "audit --json -n 2 exits 0"
is "$(out)" "$(tail -n 2 "$AUDIT")" "audit --json -n 2: the last two lines as stored"
run_deploy audit -n 0
rc_is 2 "audit -n 0 is a usage error"
run_deploy list --verify
rc_is 2 "--verify is for audit only"

run_deploy audit --verify
rc_is 0 "audit --verify on the trail as written: exit 0"
grep_ok "and says how many lines" "$T/out" "audit: 6 lines"

# ---- tampering: each is found, and the line named
cp "$AUDIT" "$T/audit.orig"
sed -i '2s/"status": 0/"status": 9/' "$AUDIT"
run_deploy audit --verify
rc_is 1 "an edited field: audit --verify exits 1"
grep_ok "it names line 3, which no longer follows line 2" "$T/err" \
    "audit line 3: does not follow line 2"
cp "$T/audit.orig" "$AUDIT"
sed -i '4s/.*/{"prev": "0000000000000000000000000000000000000000000000000000000000000000", "event": "forged"}/' "$AUDIT"
run_deploy audit --verify
rc_is 1 "a replaced line: exit 1"
grep_ok "it names that line" "$T/err" "audit line 4: does not follow line 3"
cp "$T/audit.orig" "$AUDIT"
sed -i '3d' "$AUDIT"
run_deploy audit --verify
rc_is 1 "a removed line: exit 1"
grep_ok "the line after it is named" "$T/err" "audit line 3: does not follow line 2"
cp "$T/audit.orig" "$AUDIT"
sed -i '6s/"status": 1/"status": 0/' "$AUDIT"
run_deploy audit --verify
rc_is 1 "an edited last line: exit 1"
grep_ok "it is named" "$T/err" "audit line 6 \(the last\): does not match audit-head"
cp "$T/audit.orig" "$AUDIT"
sed -i '1d' "$AUDIT"
run_deploy audit --verify
rc_is 1 "the first line removed: exit 1"
grep_ok "the new first line is named" "$T/err" "audit line 1: does not start the trail"
cp "$T/audit.orig" "$AUDIT"
run_deploy audit --verify
rc_is 0 "restored: exit 0"

# a new line chains to the restored trail
run_deploy prune
run_deploy audit --verify
rc_is 0 "appending after a check keeps the chain"
grep_ok "seven lines now" "$T/out" "audit: 7 lines"

# ---- a line appended by hand, its prev copied from audit-head (no hashing)
cp "$AUDIT" "$T/audit.orig"
printf '{"prev": "%s", "time": "2026-01-01T00:00:00Z", "event": "deploy", "status": 0}\n' \
    "$(head -c 64 "$ROOT/.deploy/audit-head")" >>"$AUDIT"
run_deploy audit --verify
rc_is 1 "a line appended by hand with audit-head as its prev: exit 1"
grep_ok "the forged line is named" "$T/err" \
    "audit line 8 \(the last\): does not match audit-head: it was changed or appended by hand"

# ---- a crash between the two writes: audit-head written for a line that
# never made it to the trail (the head is written first)
cp "$T/audit.orig" "$AUDIT"
cat >"$T/ahead.py" <<'EOF'
import hashlib, sys
trail, head = sys.argv[1:]
last = open(trail, "rb").read().split(b"\n")[-2]
p = hashlib.sha256(last).hexdigest()
line = b'{"prev": "%s", "event": "prune", "status": 0}' % p.encode()
open(head, "w").write("%s\n%s\n" % (hashlib.sha256(line).hexdigest(), p))
EOF
"$PY" "$T/ahead.py" "$AUDIT" "$ROOT/.deploy/audit-head" || bail "ahead.py"
run_deploy audit --verify
rc_is 1 "a head one line ahead (a crash between the writes): exit 1"
grep_ok "it says the last append did not finish" "$T/err" \
    "audit-head is one line ahead of the trail: the last append did not finish"
run_deploy prune
run_deploy audit --verify
rc_is 0 "the next line written puts head and trail together again"
grep_ok "eight lines" "$T/out" "audit: 8 lines"
is "$(sed -n 2p "$ROOT/.deploy/audit-head")" \
    "$(sed -n 7p "$AUDIT" | tr -d '\n' | sha256sum | cut -c1-64)" \
    "audit-head's second line: the hash the last line chains off"

# ---- a trail whose head an older deploy wrote (one hash, after the line)
tail -n 1 "$AUDIT" | tr -d '\n' | sha256sum | cut -c1-64 >"$ROOT/.deploy/audit-head"
run_deploy audit --verify
rc_is 0 "a head of the older form (one hash) that matches: exit 0"
sed -n 7p "$AUDIT" | tr -d '\n' | sha256sum | cut -c1-64 >"$ROOT/.deploy/audit-head"
run_deploy audit --verify
rc_is 1 "an older head naming the line before the last is no longer enough"
grep_ok "and it says why" "$T/err" "as an older deploy wrote it, stands for the line before"
# ---- each line goes to syslog too (LOG_AUTHPRIV, LOG_NOTICE: <85>): in a
# mount namespace of its own, /dev/log is a socket this test reads
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
	mkdir -p "$T/dev"
	cat >"$T/listen.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".ready", "w").close()
s.settimeout(30)
with open(sys.argv[2], "ab") as f:
    d = s.recv(65536)
    f.write(d)
EOF
	cat >"$T/ns.sh" <<EOF
set -e
for n in null zero urandom random; do
	touch "$T/dev/\$n"
	mount --bind "/dev/\$n" "$T/dev/\$n"
done
ln -s /proc/self/fd "$T/dev/fd"
mount --bind "$T/dev" /dev
"$PY" "$T/listen.py" /dev/log "$T/syslog" &
while [ ! -e "$T/syslog.ready" ]; do sleep 0.05; done
"$DEPLOY" -C "$ROOT" prune
wait
EOF
	run timeout -k 5 60 unshare -m --propagation private sh "$T/ns.sh"
	rc_is 0 "prune with a /dev/log to hear it"
	is "$(sed 's/^\(<[0-9]*>\).*deploy\[[0-9]*\]: audit: .*/\1/' "$T/syslog")" "<85>" \
	    "syslog got a line from deploy, facility authpriv, level notice"
	is "$(sed 's/^.*deploy\[[0-9]*\]: audit: //' "$T/syslog")" "$(tail -n 1 "$AUDIT")" \
	    "the line syslog got is the line appended to the trail"
else
	for _i in 1 2 3; do pass "# SKIP needs root and unshare for a /dev/log of its own"; done
fi

done_testing
