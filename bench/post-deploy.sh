#!/bin/bash
# The deploy script of origin-blog-post.txt ("Atomic Deployments with
# CircleCI"), the baseline of bench/run.  It is the post's text, step by
# step, fixed only enough to run:
#   - /var/www/example is $ROOT (default /var/www/example), and the clone
#     URL that the post's `git clone` lacks is $REPO;
#   - the three `if`s get their missing `fi`, the test one its `then`;
#   - `python $CURRENT/ test` names the app's test command, manage.py test;
#   - the supervisorctl lines (and the `sleep 5` between them) are left as
#     comments: restart is excluded from the benchmark on both sides.
# Kept as written: the clone per release, a virtualenv and a pip install
# per release, `rm current && ln -s`, the `ls -t` pruning, no `set -e`,
# unquoted paths.  usage: ROOT=/srv/app REPO=URL bash post-deploy.sh
ROOT=${ROOT:-/var/www/example}
REPO=${REPO:?set REPO to the git URL of the app}

# Get current the hash of the most recent commit, we'll
# use it as our version number when we make a new folder under releases
cd $ROOT/current && git remote update
HEAD=$(cd $ROOT/current && git rev-parse @{u})
if [ -d "$ROOT/releases/$HEAD" ]; then
  echo "Commit $HEAD is already deployed."
  exit 1
fi

# If the most recent commit isn't already deployed, pull it down
# and create a new virtualenv for it.
git clone $REPO $ROOT/releases/$HEAD
cd $ROOT/releases && virtualenv -p python3 $HEAD

# Install dependencies
CURRENT=$(echo $ROOT/releases/$HEAD)
cd $CURRENT && \
  source $CURRENT/bin/activate && \
  pip install -r $CURRENT/requirements.txt

# Before we update the current symlink, run tests just
# to make sure everything works on the production environment
source $CURRENT/bin/activate
python $CURRENT/manage.py test
if [ "$?" -eq "1" ]; then
  # Tests failed
  rm -rf $CURRENT
  echo "Fatal: Tests failed"
  exit 1
fi

# Tests worked, update the current symlink and restart supervisor
rm $ROOT/current && ln -s $CURRENT $ROOT/current
# supervisorctl reload
# echo "Restarting API"
# sleep 5
# supervisorctl stop example
# supervisorctl start example

# Only keep last 5 releases
NUM_RELEASES=$(cd $ROOT/releases && (ls -t)|wc -l)
if [ $NUM_RELEASES -gt 5 ]; then
  cd $ROOT/releases && (ls -t|head -n 5;ls)|sort|uniq -u|xargs rm -rf
fi
