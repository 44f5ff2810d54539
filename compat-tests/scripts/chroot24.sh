#!/bin/bash
# Build (when missing) the Debian 13 (trixie) chroot with Dovecot 2.4.1 that the
# dovecot24 compat tests run their private Dovecot instances in.
#
#   compat-tests/scripts/chroot24.sh            build if missing, then print what is there
#   compat-tests/scripts/chroot24.sh --check    only check; exit 1 if it is missing or unusable
#   compat-tests/scripts/chroot24.sh --purge    delete the chroot (refuses if anything is mounted in it)
#
# Environment:
#   DIRECTOR_CHROOT24          the chroot        (default /var/cache/director-compat/trixie)
#   DIRECTOR_CHROOT24_MIRROR   Debian mirror     (default: the first .../debian URI in this
#                                                 machine's apt sources)
#   DIRECTOR_CHROOT24_TIMEOUT  seconds debootstrap may take (default 900)
#
# Idempotent: a finished chroot has the marker file .director-compat-ok and is left alone.
# The build happens in a sibling directory that is renamed into place only when complete,
# so an interrupted run never leaves a half-built chroot at the stable path. Concurrent
# runs serialise on a lock file. Runs as root on Debian 12 (whose debootstrap knows trixie
# and whose debian-archive-keyring has the trixie keys). Nothing is mounted in the chroot
# and no service is started in it (see shared/spec/dovecot-2.4.md §8).
set -euo pipefail

ROOT="${DIRECTOR_CHROOT24:-/var/cache/director-compat/trixie}"
ROOT="${ROOT%/}"
TIMEOUT="${DIRECTOR_CHROOT24_TIMEOUT:-900}"
MARKER=".director-compat-ok"
MAIL_USER=dcompatmail
PACKAGES=dovecot-core,dovecot-imapd,dovecot-pop3d,dovecot-lmtpd,dovecot-submissiond
# one program of each package: a chroot lacking one gets the package added
PROGRAMS="usr/sbin/dovecot usr/lib/dovecot/imap-login usr/lib/dovecot/pop3-login usr/lib/dovecot/lmtp usr/lib/dovecot/submission-login"
WANT_VERSION=2.4.1

say() { echo "chroot24: $*"; }
die() { echo "chroot24: $*" >&2; exit 1; }

built() { # debootstrap finished and the Dovecot is the right one
  [ -e "$ROOT/$MARKER" ] && [ -x "$ROOT/usr/sbin/dovecot" ] || return 1
  case "$(chroot "$ROOT" /usr/sbin/dovecot --version 2>/dev/null)" in
    "$WANT_VERSION"*) return 0 ;;
    *) return 1 ;;
  esac
}

complete() { # every wanted package is there
  local p
  for p in $PROGRAMS; do [ -x "$ROOT/$p" ] || return 1; done
}

usable() { built && complete; }

# A chroot made by an older version of this script: add the packages it lacks with the
# chroot's own apt (sources.list points at the mirror debootstrap used). No service may
# start inside, so a policy-rc.d refuses every start for the duration.
add_missing_packages() {
  say "adding missing packages to $ROOT: $(echo "$PACKAGES" | tr , ' ')"
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
  local ok=1
  if ! timeout "$TIMEOUT" chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $(echo "$PACKAGES" | tr , ' ')" \
        >"$ROOT.apt.log" 2>&1; then
    ok=0
  fi
  rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT"/var/cache/apt/archives/*.deb
  [ "$ok" = 1 ] || { tail -20 "$ROOT.apt.log" >&2; die "apt-get in the chroot failed; log $ROOT.apt.log"; }
  chroot "$ROOT" dpkg-query -W $(echo "$PACKAGES" | tr , ' ') | sed 's/^/added: /' >>"$ROOT/$MARKER"
}

report() {
  say "ready: $ROOT"
  sed 's/^/chroot24:   /' "$ROOT/$MARKER"
}

mode="${1:-build}"
case "$mode" in
  build|--check|--purge) ;;
  *) die "usage: $0 [--check|--purge]" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot need it)"

if [ "$mode" = --check ]; then
  if usable; then report; exit 0; fi
  say "no usable chroot at $ROOT"; exit 1
fi

if [ "$mode" = --purge ]; then
  [ -d "$ROOT" ] || { say "nothing at $ROOT"; exit 0; }
  if grep -q " $ROOT/" /proc/mounts; then die "something is mounted under $ROOT; not deleting it"; fi
  say "removing $ROOT"; rm -rf --one-file-system "$ROOT"; exit 0
fi

# A quick answer when it is already there (no lock needed to read).
if usable; then report; exit 0; fi

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
if ! flock -w "$TIMEOUT" 9; then die "another build holds $ROOT.lock for more than $TIMEOUT s"; fi
# Someone else may have finished it while we waited.
if usable; then report; exit 0; fi
if built; then add_missing_packages; complete || die "$ROOT still lacks one of: $PROGRAMS"; report; exit 0; fi
if [ -e "$ROOT" ]; then
  die "$ROOT exists but is not a complete Dovecot $WANT_VERSION chroot (no $MARKER or wrong version); remove it with: $0 --purge"
fi

mirror() {
  if [ -n "${DIRECTOR_CHROOT24_MIRROR:-}" ]; then echo "$DIRECTOR_CHROOT24_MIRROR"; return; fi
  local u=""
  # deb822 sources first (Debian 12's default), then one-line sources
  u="$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{for (i = 2; i <= NF; i++) print $i}' | grep -E '/debian/?$' | head -1 || true)"
  if [ -z "$u" ]; then
    u="$(grep -h -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) print $i}' \
          | grep -E '/debian/?$' | head -1 || true)"
  fi
  echo "$u"
}

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq || die "apt-get update failed"
  timeout 300 apt-get install -y -qq debootstrap >/dev/null || die "apt-get install debootstrap failed"
fi
[ -e /usr/share/debootstrap/scripts/trixie ] || die "this debootstrap does not know trixie (Debian 12's 1.0.128+nmu2+deb12u2 does)"

MIRROR="$(mirror)"
[ -n "$MIRROR" ] || die "no Debian mirror (a URI ending in /debian) in /etc/apt/sources*; set DIRECTOR_CHROOT24_MIRROR"

# Leftovers of interrupted builds (we hold the lock, so none is in progress).
for old in "$ROOT".build.*; do
  [ -e "$old" ] || continue
  if grep -q " $old/" /proc/mounts; then die "something is mounted under $old; remove it by hand"; fi
  say "removing the leftover of an interrupted build: $old"
  rm -rf --one-file-system "$old"
done

BUILD="$ROOT.build.$$"
LOG="$ROOT.debootstrap.log"
say "creating the trixie chroot from $MIRROR with $PACKAGES"
say "  in $BUILD (renamed to $ROOT when done); one to three minutes; log $LOG; limit $TIMEOUT s"
t0=$(date +%s)
if ! timeout "$TIMEOUT" debootstrap --variant=minbase --include="$PACKAGES" \
      trixie "$BUILD" "$MIRROR" >"$LOG" 2>&1; then
  tail -20 "$LOG" >&2
  rm -rf --one-file-system "$BUILD"
  die "debootstrap failed or took longer than $TIMEOUT s; full log $LOG"
fi
t1=$(date +%s)

version="$(chroot "$BUILD" /usr/sbin/dovecot --version 2>/dev/null || true)"
case "$version" in
  "$WANT_VERSION"*) ;;
  *) rm -rf --one-file-system "$BUILD"; die "the chroot's dovecot --version is '$version', not $WANT_VERSION" ;;
esac

# The backends' mail user (the harness reads its uid from etc/passwd).
chroot "$BUILD" useradd --system --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin "$MAIL_USER"
# The downloaded .debs are not needed any more (about 55 MB).
rm -f "$BUILD"/var/cache/apt/archives/*.deb

{
  echo "built $(date -u +%FT%TZ) from $MIRROR in $((t1 - t0)) s"
  echo "size $(du -sh "$BUILD" | cut -f1)"
  echo "dovecot --version: $version"
  chroot "$BUILD" dpkg-query -W $(echo "$PACKAGES" | tr , ' ')
  echo "mail user: $MAIL_USER"
} >"$BUILD/$MARKER.tmp"
mv "$BUILD/$MARKER.tmp" "$BUILD/$MARKER"
mv "$BUILD" "$ROOT"
report
