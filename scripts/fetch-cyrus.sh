#!/usr/bin/env bash
# Fetches Cyrus IMAP 3.6 (Debian 12 packages) for the interoperability tests, without installing it.
#
#   bash scripts/fetch-cyrus.sh [DIR]        DIR defaults to .cache/cyrus in the repository
#
# Why not `apt-get install cyrus-imapd`: it conflicts with dovecot-imapd (both provide imap-server),
# which the other tests need. Cyrus runs fine from files unpacked with `dpkg -x`, next to Dovecot, with
# LD_LIBRARY_PATH pointing into the unpacked tree (test/helpers/cyrus.ts does that). Nothing is written
# outside DIR and apt's own cache/lists; no dpkg database entry, no service, no user is created.
#
# Downloads the three Cyrus packages plus those of the libraries they need that are not installed here.
# The library list is what `ldd` on the binaries the tests run (master, imapd, ctl_cyrusdb, saslpasswd2
# and the SASL plugins) reported missing on a fresh Debian 12 that has only dovecot-imapd and openssl
# (which already bring libicu72, libwrap0, libssl3, libkrb5-3, libcom-err2, libdb5.3). A library that
# is installed anyway (e.g. libpq5 on a machine with PostgreSQL) is not downloaded again. The result is
# checked with `ldd` before it is put in place, so a missing library fails here, not in a test.
#
# Idempotent: does nothing if DIR/root/usr/lib/cyrus/bin/master exists. The tree is assembled in a
# temporary folder and renamed to DIR/root only when complete, so an interrupted run leaves no half tree.
# Needs root only when the apt package lists are missing or stale (it runs `apt-get update` then).
# The fetching, unpacking and checking is scripts/lib/unpack-debs.sh, shared with fetch-courier.sh.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/lib/unpack-debs.sh"

# Cyrus itself: master + imapd (cyrus-imapd), the shared tools and libraries (cyrus-common), saslpasswd2.
PKGS="cyrus-imapd cyrus-common sasl2-bin"
# Libraries a dovecot-imapd machine lacks (see the header). libpcre3 also carries libpcreposix.so.3;
# libsasl2-modules-db is the sasldb auxprop plugin (user database), libsasl2-modules the PLAIN/LOGIN
# mechanisms (without them Cyrus offers no AUTHENTICATE, only the LOGIN command).
LIB_PKGS="libpcre3 libsasl2-2 libsasl2-modules-db libsasl2-modules libjansson4 libxapian30 libxml2 libical3 libsqlite3-0 libpq5 libldap-2.5-0"
LIB_DIRS=('usr/lib/*-linux-gnu' 'lib/*-linux-gnu')
REQUIRED=()
# Checked with ldd where present, none required (cyrusAvailable() in test/helpers/cyrus.ts looks for the
# binaries). The SASL plugins are in the tree only when their packages had to be fetched (see LIB_PKGS).
IF_PRESENT=(usr/lib/cyrus/bin/{master,imapd,ctl_cyrusdb} usr/sbin/saslpasswd2 'usr/lib/*-linux-gnu/sasl2/*.so')

unpack_debs fetch-cyrus "Cyrus IMAP" "${1:-$repo/.cache/cyrus}" usr/lib/cyrus/bin/master
