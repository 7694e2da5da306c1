#!/bin/sh
# notify = /var/www/example/shared/notify-slack.sh
#
# Posts one line to a Slack incoming webhook after every deploy, activate
# and rollback. Put the webhook's URL in the envfile (shared/production.env):
#     SLACK_WEBHOOK_URL=https://hooks.slack.com/services/...
# deploy(1) gives this script DEPLOY_EVENT, DEPLOY_STATUS, DEPLOY_REVISION,
# DEPLOY_PREVIOUS, DEPLOY_LOG and DEPLOY_ACTOR (who asked, as the audit
# trail records it). Its failure never changes deploy's exit
# status; curl gives up after 10 seconds.
set -eu
: "${SLACK_WEBHOOK_URL:?set SLACK_WEBHOOK_URL in the envfile}"

case $DEPLOY_STATUS in
0) what=done ;;
1) what="failed before the switch; current unchanged" ;;
4) what="failed after the switch; switched back" ;;
5) what="FAILED and could not switch back: look now" ;;
*) what="ended with status $DEPLOY_STATUS" ;;
esac
rev=$(printf '%.12s' "${DEPLOY_REVISION:-?}")
prev=$(printf '%.12s' "${DEPLOY_PREVIOUS:-none}")
host=$(hostname)
text="$DEPLOY_EVENT of $rev on $host (was $prev) by ${DEPLOY_ACTOR:-?}: $what"
# JSON-escape the text: backslashes and quotes
json=$(printf '%s' "$text" | sed 's/\\/\\\\/g; s/"/\\"/g')
# The webhook's URL is a secret: never on curl's command line, which every
# local user can read (ps, /proc/PID/cmdline). URL and body go to curl on
# stdin, as a config file (curl -K -), quoted as curl's config wants.
q() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
printf 'url = "%s"\ndata-binary = "%s"\n' "$(q "$SLACK_WEBHOOK_URL")" \
    "$(q "{\"text\": \"$json\"}")" |
	curl -fsS --max-time 10 -H 'Content-Type: application/json' -K -
