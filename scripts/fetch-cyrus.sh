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
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$repo/.cache/cyrus}
ROOT=$DIR/root
if [ -x "$ROOT/usr/lib/cyrus/bin/master" ]; then
  echo "Cyrus IMAP already unpacked in $ROOT"
  exit 0
fi

# Cyrus itself: master + imapd (cyrus-imapd), the shared tools and libraries (cyrus-common), saslpasswd2.
CYRUS_PKGS="cyrus-imapd cyrus-common sasl2-bin"
# Libraries a dovecot-imapd machine lacks (see the header). libpcre3 also carries libpcreposix.so.3;
# libsasl2-modules-db is the sasldb auxprop plugin (user database), libsasl2-modules the PLAIN/LOGIN
# mechanisms (without them Cyrus offers no AUTHENTICATE, only the LOGIN command).
LIB_PKGS="libpcre3 libsasl2-2 libsasl2-modules-db libsasl2-modules libjansson4 libxapian30 libxml2 libical3 libsqlite3-0 libpq5 libldap-2.5-0"

started=$(date +%s%N)
arch=$(dpkg --print-architecture)
is_installed() { dpkg-query -W -f='${db:Status-Abbrev}\n' "$1:$arch" 2>/dev/null | grep -q '^ii'; }

pkgs=$CYRUS_PKGS
for p in $LIB_PKGS; do is_installed "$p" || pkgs="$pkgs $p"; done

update_lists() {
  if [ "$(id -u)" != 0 ]; then
    echo "fetch-cyrus: the apt package lists are missing or stale; run as root (it runs apt-get update)" >&2
    exit 1
  fi
  for i in $(seq 1 30); do # the lists lock may be held by another apt run: wait and retry
    if apt-get update -qq; then return 0; fi
    echo "fetch-cyrus: apt-get update failed (attempt $i), retrying in 10 s" >&2
    sleep 10
  done
  echo "fetch-cyrus: apt-get update kept failing" >&2
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
apt-cache show cyrus-imapd >/dev/null 2>&1 || update_lists
# Stale lists name versions the mirror no longer has (404): refresh once and retry.
if ! download; then
  update_lists
  download
fi

for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/root"; done
for deb in "$tmp"/debs/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done > "$tmp/root/PACKAGES"

# Every shared library the tests need must resolve: from the unpacked tree first, then the system.
libpath=$(printf '%s:' "$tmp"/root/usr/lib/*-linux-gnu "$tmp"/root/lib/*-linux-gnu)
missing=""
for f in "$tmp"/root/usr/lib/cyrus/bin/{master,imapd,ctl_cyrusdb} "$tmp"/root/usr/sbin/saslpasswd2 \
  "$tmp"/root/usr/lib/*-linux-gnu/sasl2/*.so; do
  [ -e "$f" ] || continue
  nf=$(LD_LIBRARY_PATH=$libpath ldd "$f" 2>&1 | grep 'not found' || true)
  [ -z "$nf" ] || missing="$missing
${f#"$tmp"/root}:
$nf"
done
if [ -n "$missing" ]; then
  echo "fetch-cyrus: unresolved libraries after unpacking (add their packages to LIB_PKGS):$missing" >&2
  exit 1
fi

rm -rf "$ROOT"
mv -T "$tmp/root" "$ROOT"
ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "Cyrus IMAP unpacked in $ROOT ($(wc -l < "$ROOT/PACKAGES") packages: $(cut -d' ' -f1 "$ROOT/PACKAGES" | paste -sd' '); ${ms} ms)"
