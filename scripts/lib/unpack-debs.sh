# Sourced by scripts/fetch-*.sh (bash, after `set -euo pipefail`): fetches Debian packages and unpacks
# them with `dpkg -x` into a folder, without installing anything. Nothing is written outside that folder
# and apt's own cache/lists; no dpkg database entry, no service, no user is created.
#
#   unpack_debs TAG LABEL DIR MARKER
#
# TAG prefixes the error messages (e.g. fetch-cyrus), LABEL names the software in the other messages
# (e.g. "Cyrus IMAP"). The tree ends up in DIR/root. Idempotent: does nothing if DIR/root/MARKER
# exists. The tree is assembled in a temporary folder below DIR and renamed to DIR/root only when
# complete, so an interrupted run leaves no half tree. Needs root only when the apt package lists are
# missing or stale (it runs `apt-get update` then).
#
# What to fetch and check, set by the caller before the call:
#   PKGS      the packages themselves, always downloaded; the first one also tells whether apt has
#             package lists at all
#   LIB_PKGS  packages of the libraries they need that a dovecot-imapd machine lacks; each is downloaded
#             only if it is not installed here (a library that is installed anyway is not fetched again)
#   LIB_DIRS  (array) the folders, relative to the tree (globs allowed), that the helper puts on
#             LD_LIBRARY_PATH; the ldd check below uses them the same way
#   REQUIRED  (array) files the tests run, relative to the tree (globs allowed); one that is missing is
#             an error
#   IF_PRESENT (array) the same, but skipped when missing (e.g. plugins that may be installed
#             system-wide instead)
# Every file of REQUIRED and IF_PRESENT is checked with `ldd` before the tree is put in place, so a
# missing library fails here, not in a test. The function sets an EXIT trap (removing its temporary
# folder).

unpack_debs() {
  local tag=$1 label=$2 dir=$3 marker=$4
  local root=$dir/root
  if [ -x "$root/$marker" ]; then
    echo "$label already unpacked in $root"
    return 0
  fi

  local started arch p pkgs
  started=$(date +%s%N)
  arch=$(dpkg --print-architecture)
  pkgs=$PKGS
  for p in $LIB_PKGS; do
    dpkg-query -W -f='${db:Status-Abbrev}\n' "$p:$arch" 2>/dev/null | grep -q '^ii' || pkgs="$pkgs $p"
  done

  update_lists() {
    if [ "$(id -u)" != 0 ]; then
      echo "$tag: the apt package lists are missing or stale; run as root (it runs apt-get update)" >&2
      exit 1
    fi
    local i
    for i in $(seq 1 30); do # the lists lock may be held by another apt run: wait and retry
      if apt-get update -qq; then return 0; fi
      echo "$tag: apt-get update failed (attempt $i), retrying in 10 s" >&2
      sleep 10
    done
    echo "$tag: apt-get update kept failing" >&2
    exit 1
  }

  mkdir -p "$dir"
  # Global, not local: the EXIT trap runs after this function has returned.
  unpack_debs_tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
  trap 'rm -rf "$unpack_debs_tmp"' EXIT
  local tmp=$unpack_debs_tmp
  mkdir "$tmp/debs"
  # apt downloads as its unprivileged _apt user when that user can write the target folder; otherwise it
  # warns "Download is performed unsandboxed as root" (harmless). Give it the folder when we are root.
  if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chmod 755 "$tmp" && chown _apt "$tmp/debs"; fi

  download() { (cd "$tmp/debs" && apt-get download -qq $pkgs); }
  # No lists at all (fresh machine before any apt-get update): fetch them first.
  apt-cache show "${PKGS%% *}" >/dev/null 2>&1 || update_lists
  # Stale lists name versions the mirror no longer has (404): refresh once and retry.
  if ! download; then
    update_lists
    download
  fi

  local deb
  for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/root"; done
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done > "$tmp/root/PACKAGES"

  # Every shared library the tests need must resolve: from the unpacked tree first, then the system.
  local pat f nf libpath="" missing="" what=libraries
  for pat in "${LIB_DIRS[@]}"; do libpath=$libpath$(printf '%s:' "$tmp"/root/$pat); done
  check_libs() {
    nf=$(LD_LIBRARY_PATH=$libpath ldd "$1" 2>&1 | grep 'not found' || true)
    [ -z "$nf" ] || missing="$missing
${1#"$tmp"/root}:
$nf"
  }
  for pat in "${REQUIRED[@]}"; do
    for f in "$tmp"/root/$pat; do
      if [ -e "$f" ]; then check_libs "$f"; else missing="$missing
${f#"$tmp"/root}: not in the packages"; fi
    done
  done
  for pat in "${IF_PRESENT[@]}"; do
    for f in "$tmp"/root/$pat; do
      if [ -e "$f" ]; then check_libs "$f"; fi
    done
  done
  [ "${#REQUIRED[@]}" = 0 ] || what="files or libraries"
  if [ -n "$missing" ]; then
    echo "$tag: unresolved $what after unpacking (add their packages to LIB_PKGS):$missing" >&2
    exit 1
  fi

  rm -rf "$root"
  mv -T "$tmp/root" "$root"
  local ms=$(( ($(date +%s%N) - started) / 1000000 ))
  echo "$label unpacked in $root ($(wc -l < "$root/PACKAGES") packages: $(cut -d' ' -f1 "$root/PACKAGES" | paste -sd' '); ${ms} ms)"
}
