#!/bin/sh
# make install / make uninstall with PREFIX and DESTDIR: the binary under
# test and deploy.1 land where they should with modes 0755 and 0644 even
# under umask 077, and uninstall removes them and nothing else.
. "$(dirname "$0")/lib.sh"

D=$T/dest
mkdir -p "$D/usr/bin"
echo keep >"$D/usr/bin/other"		# not ours: uninstall leaves it

mode() { stat -c %a "$1" 2>/dev/null; }

umask 077
run make -s -C "$TOP" install DESTDIR="$D" PREFIX=/usr INSTALLBIN="$DEPLOY"
umask 022
rc_is 0 "make install DESTDIR=... PREFIX=/usr exits 0"
ok "the binary is DESTDIR/usr/bin/deploy" cmp -s "$DEPLOY" "$D/usr/bin/deploy"
ok "the manual is DESTDIR/usr/share/man/man1/deploy.1" \
    cmp -s "$TOP/deploy.1" "$D/usr/share/man/man1/deploy.1"
is "$(mode "$D/usr/bin/deploy")" 755 "the binary is 0755 under umask 077"
is "$(mode "$D/usr/share/man/man1/deploy.1")" 644 \
    "the manual is 0644 under umask 077"
run "$D/usr/bin/deploy" -C "$T/nothing" list
like "$(err)" "deploy: *" "the installed binary runs and speaks as deploy"
ok "nothing outside DESTDIR: no /usr/bin/deploy written by this test" \
    test ! "$D/usr/bin/deploy" -ef /usr/bin/deploy

run make -s -C "$TOP" uninstall DESTDIR="$D" PREFIX=/usr
rc_is 0 "make uninstall exits 0"
ok "the binary is gone" test ! -e "$D/usr/bin/deploy"
ok "the manual is gone" test ! -e "$D/usr/share/man/man1/deploy.1"
is "$(cat "$D/usr/bin/other")" keep "a file that is not ours stays"

# MANDIR follows PREFIX
run make -s -C "$TOP" install DESTDIR="$D" PREFIX=/opt/dp INSTALLBIN="$DEPLOY"
ok "PREFIX=/opt/dp: the binary in /opt/dp/bin" test -x "$D/opt/dp/bin/deploy"
ok "PREFIX=/opt/dp: the manual in /opt/dp/share/man/man1" \
    test -f "$D/opt/dp/share/man/man1/deploy.1"
run make -s -C "$TOP" uninstall DESTDIR="$D" PREFIX=/opt/dp
is "$(find "$D/opt" -type f | wc -l)" 0 "uninstall leaves no file under PREFIX"

done_testing
