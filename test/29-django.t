#!/bin/sh
# A real Django app (Debian's python3-django in a --system-site-packages
# virtualenv; startproject, a model and its migrations; SQLite in shared/):
# migrate runs after the tests pass and right before the switch, a commit
# whose tests fail never migrates, collectstatic runs in build, rollback
# leaves the schema alone, a failing migration keeps current and is run
# again by the next deploy, migrate REV runs it alone, -M skips it.
. "$(dirname "$0")/lib.sh"

SYSPY=/usr/bin/python3
"$SYSPY" -c 'import django' 2>/dev/null || bail "python3-django is not installed"
DB=$ROOT/shared/db.sqlite3

mkdir -p "$APP"
git init -q "$APP" && git -C "$APP" symbolic-ref HEAD refs/heads/main
(cd "$APP" && "$SYSPY" -m django startproject mysite . &&
    "$SYSPY" manage.py startapp polls) >/dev/null || bail "startproject failed"
cat >>"$APP/mysite/settings.py" <<'EOF2'

# deploy: the database lives in shared/, static files in the release
import os
INSTALLED_APPS.append("polls")
DATABASES["default"]["NAME"] = os.path.join(
    os.environ.get("DEPLOY_ROOT", str(BASE_DIR)), "shared", "db.sqlite3")
STATIC_ROOT = BASE_DIR / "static"
EOF2
cat >"$APP/polls/models.py" <<'EOF2'
from django.db import models


class Question(models.Model):
    text = models.CharField(max_length=200)
EOF2
cat >"$APP/polls/tests.py" <<'EOF2'
import os

from django.test import TestCase

from .models import Question


class QuestionTests(TestCase):
    def test_create(self):
        Question.objects.create(text="why?")
        self.assertEqual(Question.objects.count(), 1)

    def test_not_broken(self):
        self.assertFalse(os.path.exists("BROKEN"), "BROKEN is present")
EOF2
: >"$APP/requirements.txt"
(cd "$APP" && "$SYSPY" manage.py makemigrations polls -n first) >/dev/null 2>&1 ||
    bail "makemigrations failed"
new_commit v1 >/dev/null || bail "commit failed"
A=$(sha_of HEAD)

mkdir -p "$ROOT"
run_deploy init "$REMOTE"
[ "$rc" -eq 0 ] || bail "init failed"
write_conf "-program" "-supervisorctl" \
    "virtualenv = virtualenv --system-site-packages -p $SYSPY" \
    "test = python manage.py test polls" \
    "build = python manage.py collectstatic --noinput" \
    "migrate = python manage.py migrate --noinput"

# applied: the migrations the database has for polls, in order
applied() {
	"$SYSPY" -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(" ".join(r[0] for r in c.execute(
    "select name from django_migrations where app = ? order by id", ("polls",))))
' "$DB" 2>/dev/null
}
columns() {
	"$SYSPY" -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(" ".join(r[1] for r in c.execute("pragma table_info(polls_question)")))
' "$DB" 2>/dev/null
}

run_deploy deploy
rc_is 0 "the Django app deploys: exit 0"
is "$(current_link)" "releases/$A" "current is it"
is "$(applied)" "0001_first" "migrate ran: the database has the first migration"
is "$(columns)" "id text" "and its table"
like "$(out)" "*test ok*migrate ok*switch ok*" "migrate runs after the tests and before the switch"
ok "collectstatic ran in build: the admin's css is in the release" \
    test -f "$ROOT/releases/$A/static/admin/css/base.css"

# ---- a commit whose tests fail never migrates
cat >"$APP/polls/models.py" <<'EOF2'
from django.db import models


class Question(models.Model):
    text = models.CharField(max_length=200)
    votes = models.IntegerField(default=0)
EOF2
(cd "$APP" && "$SYSPY" manage.py makemigrations polls -n votes) >/dev/null 2>&1 ||
    bail "makemigrations failed"
touch "$APP/BROKEN"
B=$(new_commit v2-broken)
run_deploy deploy
rc_is 1 "tests fail: exit 1"
is "$(current_link)" "releases/$A" "current unchanged"
is "$(applied)" "0001_first" "the database has no trace of its migration"
is "$(columns)" "id text" "nor of its column"
grep_nok "migrate never ran" "$T/out" "migrate"

# ---- fixed: it migrates
rm "$APP/BROKEN"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "the fixed commit deploys: exit 0"
is "$(applied)" "0001_first 0002_votes" "its migration ran"
is "$(columns)" "id text votes" "and added the column"

# ---- rollback never migrates, and leaves the schema alone
run_deploy rollback
rc_is 0 "rollback: exit 0"
is "$(current_link)" "releases/$A" "current is the first release"
grep_nok "rollback runs no migrate" "$T/out" "migrate"
is "$(applied)" "0001_first 0002_votes" "the schema is left as it was"

# ---- -M activate skips it; migrate REV runs it alone, without a switch
run_deploy -M activate "$C"
rc_is 0 "-M activate: exit 0"
like "$(out)" "*migrate skipped (-M)*" "-M says migrate is skipped"
run_deploy rollback
run_deploy migrate "$(printf '%.10s' "$C")"
rc_is 0 "migrate REV: exit 0"
like "$(out)" "*migrate ok*" "it runs the migrate step"
is "$(current_link)" "releases/$A" "and switches nothing"

# ---- a failing migration: exit 1, current unchanged; a plain deploy
# skips it, deploy SHA runs it again
mkdir -p "$APP/polls/migrations"
cat >"$APP/polls/migrations/0003_fail.py" <<'EOF2'
import os

from django.db import migrations


def fail(apps, schema_editor):
    # the tests' in-memory database passes; the real one fails
    real = str(schema_editor.connection.settings_dict["NAME"])
    if real.endswith("db.sqlite3") and not os.path.exists(os.path.join(
            os.environ["DEPLOY_ROOT"], "shared", "let-it-pass")):
        raise RuntimeError("migration 0003 fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("polls", "0002_votes")]
    operations = [migrations.RunPython(fail, migrations.RunPython.noop)]
EOF2
D=$(new_commit v4-failing-migration)
run_deploy deploy
rc_is 1 "a failing migration: exit 1"
is "$(current_link)" "releases/$A" "current unchanged"
like "$(err)" "*migrate FAILED*" "the migrate step is named"
is "$(list_state "$D")" complete "the release stays built (complete, not migrated)"
touch "$ROOT/shared/let-it-pass"
run_deploy deploy
rc_is 0 "the next plain deploy skips the head whose migrate failed: exit 0"
is "$(current_link)" "releases/$A" "and switches nothing"
run_deploy deploy "$D"
rc_is 0 "deploy SHA runs migrate again, which passes: exit 0"
is "$(applied)" "0001_first 0002_votes 0003_fail" "the migration is recorded once it passed"
is "$(current_link)" "releases/$D" "and it switched"

done_testing
