#!/usr/bin/env bash
# Installs what mailmover's tests and demo use (run as root on Debian 12):
#   dovecot-imapd  real IMAP servers for the tests and the demo (started privately on loopback)
#   openssl        test certificates
#   clamav-daemon  a real clamd for the scanning tests and the scanning benchmark (started
#                  privately with its own EICAR signature database; freshclam is not needed)
#   postgresql-15  PostgreSQL 15 for the job-queue tests: initdb and postgres (and psql, from its
#                  dependency postgresql-client-15); the tests create throwaway clusters of their
#                  own on loopback, run as the `postgres` user this package creates
#   chromium       a real browser for the web console's tests (driven by playwright-core; headless)
#   python3        the fcntl lock on mbox files mailmover writes (held by a python3 child: Node has
#                  no fcntl call), and the independent reader (stdlib `mailbox`) in the archive tests
#   pst-utils      readpst, the independent reader the PST source's tests check mailmover against
#   Cyrus IMAP     for the interoperability tests: Debian packages unpacked into .cache/cyrus by
#                  scripts/fetch-cyrus.sh, not installed (they conflict with dovecot-imapd)
set -euo pipefail
PKGS="dovecot-imapd openssl clamav-daemon postgresql-15 chromium python3 pst-utils ${EXTRA_PACKAGES:-}"

install_packages() {
  local missing="" p i
  for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -z "$missing" ]; then echo "system packages present: $PKGS"; return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages:$missing — run as root: apt-get update && apt-get install -y$missing" >&2
    return 1
  fi
  apt-get update -qq
  for i in $(seq 1 30); do # the dpkg lock may be held by another apt run: wait and retry
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; then return 0; fi
    sleep 10
  done
  echo "apt-get install failed for:$missing" >&2
  return 1
}

install_packages
# After the packages above, so that only the libraries this machine still lacks are downloaded.
# Idempotent. As a normal user the Cyrus tests skip with a hint instead.
if [ "$(id -u)" = 0 ]; then bash "$(dirname "$0")/fetch-cyrus.sh"; fi
