#!/usr/bin/env bash
# Fetches Courier IMAP 5.0 (Debian 12 packages) for the optional interoperability tests, without installing it.
#
#   bash scripts/fetch-courier.sh [DIR]      DIR defaults to .cache/courier in the repository
#
# Why not `apt-get install courier-imap`: it conflicts with dovecot-imapd (both provide imap-server),
# which the other tests need. Courier runs from files unpacked with `dpkg -x`, next to Dovecot, with
# LD_LIBRARY_PATH pointing into the unpacked tree (test/helpers/courier.ts does that). Nothing is written
# outside DIR and apt's own cache/lists; no dpkg database entry, no service, no user is created.
#
# This script does NOT create the five symlinks in system paths that Courier needs at run time
# (/etc/courier, /run/courier, /usr/lib/courier-authlib, /usr/lib/courier, /usr/libexec/gam_server:
# paths compiled into courier-authlib and libgamin). test/helpers/courier.ts creates them when a test
# starts Courier and removes them when it stops; that is why the Courier tests run only with
# MAILMOVER_TEST_COURIER=1 (README, Development).
#
# Downloads the Courier packages plus those of the libraries they need that are not installed here.
# The library list is what `ldd` on the binaries the tests run (couriertcpd, imaplogin, imapd,
# authdaemond and its userdb module, makedatprog, userdbpw, gam_server) reports missing on a Debian 12
# that has only dovecot-imapd and openssl: the Courier-specific libcourier-unicode4 and libgamin0, plus
# libidn12, libltdl7, libgdbm6 (comes with perl, which such a machine lacks) and libglib2.0-0 (for
# gam_server). A library that is installed anyway is not downloaded again. The result is checked with
# `ldd` before it is put in place, so a missing library fails here, not in a test.
#
# Idempotent: does nothing if DIR/root/usr/bin/imapd exists. The tree is assembled in a temporary folder
# and renamed to DIR/root only when complete, so an interrupted run leaves no half tree.
# Needs root only when the apt package lists are missing or stale (it runs `apt-get update` then).
# The fetching, unpacking and checking is scripts/lib/unpack-debs.sh, shared with fetch-cyrus.sh.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/lib/unpack-debs.sh"

# Courier itself: imapd and imaplogin (courier-imap), couriertcpd (courier-base), authdaemond and
# makedatprog (courier-authlib), the userdb module and userdbpw (courier-authlib-userdb), and gam_server
# (gamin): without it libgamin spends 1.2 s trying to start it at every login and every APPEND.
PKGS="courier-imap courier-base courier-authlib courier-authlib-userdb gamin"
# Libraries a dovecot-imapd machine lacks (see the header).
LIB_PKGS="libcourier-unicode4 libgamin0 libidn12 libltdl7 libgdbm6 libglib2.0-0"
# The same folders test/helpers/courier.ts puts on LD_LIBRARY_PATH.
LIB_DIRS=(usr/lib usr/lib/courier-authlib 'usr/lib/*-linux-gnu' 'lib/*-linux-gnu')
REQUIRED=(usr/sbin/couriertcpd usr/lib/courier/courier/imaplogin usr/bin/imapd
  usr/lib/courier/courier-authlib/{authdaemond,makedatprog} usr/lib/courier-authlib/libauthuserdb.so.0
  usr/sbin/userdbpw usr/libexec/gam_server)
IF_PRESENT=()

unpack_debs fetch-courier "Courier IMAP" "${1:-$repo/.cache/courier}" usr/bin/imapd
