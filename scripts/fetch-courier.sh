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
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$repo/.cache/courier}
ROOT=$DIR/root
if [ -x "$ROOT/usr/bin/imapd" ]; then
  echo "Courier IMAP already unpacked in $ROOT"
  exit 0
fi

# Courier itself: imapd and imaplogin (courier-imap), couriertcpd (courier-base), authdaemond and
# makedatprog (courier-authlib), the userdb module and userdbpw (courier-authlib-userdb), and gam_server
# (gamin): without it libgamin spends 1.2 s trying to start it at every login and every APPEND.
COURIER_PKGS="courier-imap courier-base courier-authlib courier-authlib-userdb gamin"
# Libraries a dovecot-imapd machine lacks (see the header).
LIB_PKGS="libcourier-unicode4 libgamin0 libidn12 libltdl7 libgdbm6 libglib2.0-0"

started=$(date +%s%N)
arch=$(dpkg --print-architecture)
is_installed() { dpkg-query -W -f='${db:Status-Abbrev}\n' "$1:$arch" 2>/dev/null | grep -q '^ii'; }

pkgs=$COURIER_PKGS
for p in $LIB_PKGS; do is_installed "$p" || pkgs="$pkgs $p"; done

update_lists() {
  if [ "$(id -u)" != 0 ]; then
    echo "fetch-courier: the apt package lists are missing or stale; run as root (it runs apt-get update)" >&2
    exit 1
  fi
  for i in $(seq 1 30); do # the lists lock may be held by another apt run: wait and retry
    if apt-get update -qq; then return 0; fi
    echo "fetch-courier: apt-get update failed (attempt $i), retrying in 10 s" >&2
    sleep 10
  done
  echo "fetch-courier: apt-get update kept failing" >&2
  exit 1
}

mkdir -p "$DIR"
tmp=$(mktemp -d "$DIR/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/debs"
# apt downloads as its unprivileged _apt user when that user can write the target folder; otherwise it
# warns "Download is performed unsandboxed as root" (harmless). Give it the folder when we are root.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chmod 755 "$tmp" && chown _apt "$tmp/debs"; fi

download() { (cd "$tmp/debs" && apt-get download -qq $pkgs); }
# No lists at all (fresh machine before any apt-get update): fetch them first.
apt-cache show courier-imap >/dev/null 2>&1 || update_lists
# Stale lists name versions the mirror no longer has (404): refresh once and retry.
if ! download; then
  update_lists
  download
fi

for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/root"; done
for deb in "$tmp"/debs/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done > "$tmp/root/PACKAGES"

# Every shared library the tests need must resolve: from the unpacked tree first, then the system.
# (The same folders test/helpers/courier.ts puts on LD_LIBRARY_PATH.)
libpath=$(printf '%s:' "$tmp"/root/usr/lib "$tmp"/root/usr/lib/courier-authlib "$tmp"/root/usr/lib/*-linux-gnu "$tmp"/root/lib/*-linux-gnu)
missing=""
needed=0
for f in "$tmp"/root/usr/sbin/couriertcpd "$tmp"/root/usr/lib/courier/courier/imaplogin "$tmp"/root/usr/bin/imapd \
  "$tmp"/root/usr/lib/courier/courier-authlib/{authdaemond,makedatprog} "$tmp"/root/usr/lib/courier-authlib/libauthuserdb.so.0 \
  "$tmp"/root/usr/sbin/userdbpw "$tmp"/root/usr/libexec/gam_server; do
  if [ ! -e "$f" ]; then
    missing="$missing
${f#"$tmp"/root}: not in the packages"
    continue
  fi
  needed=$((needed + 1))
  nf=$(LD_LIBRARY_PATH=$libpath ldd "$f" 2>&1 | grep 'not found' || true)
  [ -z "$nf" ] || missing="$missing
${f#"$tmp"/root}:
$nf"
done
if [ -n "$missing" ]; then
  echo "fetch-courier: unresolved files or libraries after unpacking (add their packages to LIB_PKGS):$missing" >&2
  exit 1
fi

rm -rf "$ROOT"
mv -T "$tmp/root" "$ROOT"
ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "Courier IMAP unpacked in $ROOT ($(wc -l < "$ROOT/PACKAGES") packages: $(cut -d' ' -f1 "$ROOT/PACKAGES" | paste -sd' '); ${ms} ms)"
