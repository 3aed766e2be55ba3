#!/usr/bin/env bash
# scripts/pgroot.sh - minimal Debian root file systems for the PostgreSQL
# majors that Debian 12 does not ship, to build and test pg_connwatch on them.
#
#   pgroot.sh ensure MAJOR        # build or reuse the root; prints its path
#   pgroot.sh path MAJOR          # prints the path (builds nothing, exits 0)
#   pgroot.sh run MAJOR CMD...    # runs CMD inside the root (chroot)
#   pgroot.sh umount MAJOR        # unmounts everything under the root
#   pgroot.sh remove MAJOR        # unmounts, then deletes the root
#
# MAJOR is 13 (bullseye), 17 (trixie), 18 (sid) or 19 (sid, with Debian's
# experimental suite pinned for the PostgreSQL 19 packages only: no other
# package of the root comes from it); 15 is the host's own and is refused.  Run as root.  Only paths go to stdout; progress goes to stderr.
#
# A root is debootstrap's minbase plus, with --no-install-recommends:
# postgresql-MAJOR, postgresql-server-dev-MAJOR, postgresql-MAJOR-cron,
# build-essential, libipc-run-perl, libdbd-pg-perl, libkrb5-dev and
# libssl-dev (libpq-be.h includes gssapi.h and openssl/ssl.h), locales (with de_DE.UTF-8 generated, for the
# server's translated messages), python3-sqlalchemy and python3-psycopg2
# (the diagnose() scenarios), and sqlsmith where the suite has it.  No cluster is created and no service is started in it.  The
# archive comes from the host's own apt configuration (sources.list, *.list,
# deb822 *.sources): the URI that serves the host's release, plus the
# -updates and -security suites when the host uses them and the archive has
# them for the target suite (the security suite is dropped again when the
# archive lacks files it lists, as happens for bullseye-security).  sid's
# Release file may be past its Valid-Until: the root's sources file says
# Check-Valid-Until: no for sid only (signatures are still checked).
#
# Cache: PGROOT_CACHE (default /var/cache/pg_connwatch/roots)/SUITE-pgMAJOR/
# holds root/ (the file system), stamp (the recipe and the installed package
# versions), packages.txt (every installed package) and build.log.  A root is
# built in a temporary directory beside it (.build-SUITE-pgMAJOR.*) and
# renamed into place only when complete, so the stamp exists only for a
# finished root; a failed build is deleted and leaves SUITE-pgMAJOR.failed.log,
# and the leftovers of a killed one are cleared by the next "ensure".
# "ensure" reuses a root whose stamp matches this script's recipe and whose
# smoke check passes (pg_config and postgres run, gcc runs, the postgres user
# exists); tops up in place a root whose recipe lacks only packages the
# current one adds (apt-get install of those, then a new stamp); and
# rebuilds it otherwise.  One lock per root (flock on
# SUITE-pgMAJOR.lock), so different majors can be built at once and the same
# major is built once.
#
# "run" mounts proc on ROOT/proc and a tmpfs on ROOT/dev/shm (PostgreSQL
# needs POSIX shared memory) when they are not mounted yet, and leaves them
# mounted; "umount" takes them down.  The host's /dev is never mounted into a
# root: debootstrap makes the root's own device nodes.  CMD runs as root
# inside, in /, with a clean environment (PATH, HOME, LANG, TERM); pass more
# with env, e.g. "run 17 env PGPORT=5432 psql".  Its exit status is
# pgroot.sh's.  The server refuses to run as root: run it as the root's own
# postgres user ("run 17 runuser -u postgres -- initdb ...").  A cluster whose
# unix_socket_directories is /tmp/x inside is reachable from the host through
# ROOT/tmp/x.
#
# "remove" and every rebuild refuse while anything is still mounted under the
# root or a process still runs inside it.
#
# Environment:
#   PGROOT_CACHE            where the roots live (default above)
#   PGROOT_MIRROR           archive URI (default: from the host's apt sources)
#   PGROOT_SECURITY_MIRROR  security archive URI, or "none" (default: the host's)
set -euo pipefail

CACHE=${PGROOT_CACHE:-/var/cache/pg_connwatch/roots}
# Bump when the recipe changes in a way the package list does not show.
RECIPE_VERSION=1
INSIDE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'pgroot: [%3ss] %s\n' "$SECONDS" "$*" >&2; }
die() {
	printf 'pgroot: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	echo 'usage:' >&2
	sed -n '5,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

suite_of() {
	case "$1" in
	13) echo bullseye ;;
	17) echo trixie ;;
	18 | 19) echo sid ;;
	15) die "PostgreSQL 15 is the host's own (/usr/lib/postgresql/15): no root for it" ;;
	*) die "no root for PostgreSQL '$1': known majors are 13, 17, 18 and 19" ;;
	esac
}

# --- mounts and processes under a directory --------------------------------

# Mount points at or below DIR, deepest first.
mounts_under() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r
}

# Processes whose root directory is DIR or below it ("PID COMMAND" lines).
procs_in() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		if [ "$r" = "$1" ] || [ "${r#"$1"/}" != "$r" ]; then
			printf '%s %s\n' "${p#/proc/}" "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-100)"
		fi
	done
}

# Unmount everything under DIR; fail, naming what holds it, if anything stays.
umount_all() {
	local dir=$1 m
	for m in $(mounts_under "$dir"); do
		umount "$m" 2>/dev/null || true
	done
	if [ -n "$(mounts_under "$dir")" ]; then
		log "still mounted under $dir:"
		mounts_under "$dir" | sed 's/^/    /' >&2
		local procs
		procs=$(procs_in "$dir")
		if [ -n "$procs" ]; then
			log "processes running inside it (stop them first):"
			printf '%s\n' "$procs" | sed 's/^/    /' >&2
		fi
		return 1
	fi
}

# Delete DIR (a root's cache directory, or a build directory) - only when
# nothing is mounted under it and nothing runs inside it.  --one-file-system
# is a second guard: rm never descends into a mount point.
safe_remove() {
	local dir=$1 procs
	[ -e "$dir" ] || return 0
	case "$dir" in "$CACHE"/?*) ;; *) die "refusing to remove $dir: not under $CACHE" ;; esac
	if [ -n "$(mounts_under "$dir")" ]; then
		log "refusing to remove $dir: still mounted under it:"
		mounts_under "$dir" | sed 's/^/    /' >&2
		return 1
	fi
	procs=$(procs_in "$dir")
	if [ -n "$procs" ]; then
		log "refusing to remove $dir: processes still run inside it:"
		printf '%s\n' "$procs" | sed 's/^/    /' >&2
		return 1
	fi
	rm -rf --one-file-system -- "$dir"
}

# Mount proc and a tmpfs on dev/shm inside ROOT unless they are there.
# A mount target that is a symbolic link could point out of the root (into
# the host's /dev, say): such a target is replaced by a plain directory, and
# a target that still resolves outside the root is refused.
mount_inside() {
	local root=$1 sub
	[ ! -L "$root/dev" ] || die "$root/dev is a symbolic link; not mounting anything there"
	for sub in proc dev/shm; do
		if [ -L "$root/$sub" ]; then
			rm -f -- "$root/$sub"
		fi
		mkdir -p -- "$root/$sub"
		case "$(realpath -e -- "$root/$sub")" in
		"$root/$sub") ;;
		*) die "$root/$sub does not resolve to itself; not mounting there" ;;
		esac
	done
	mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
	mountpoint -q "$root/dev/shm" ||
		mount -t tmpfs -o mode=1777,nosuid,nodev,size=1g pgroot-shm "$root/dev/shm"
}

# Run a command inside ROOT with a clean environment.
in_root() {
	local root=$1
	shift
	chroot "$root" /usr/bin/env -i PATH="$INSIDE_PATH" HOME=/root LANG=C.UTF-8 \
		TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive "$@"
}

# --- the archive, from the host's apt configuration -------------------------

# "URI SUITE" for every enabled deb entry of the host's apt sources.
host_sources() {
	local f
	shopt -s nullglob
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
			awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; enabled = "yes"; key = ""
			for (i = 1; i <= NF; i++) {
				line = $i
				if (line ~ /^#/) continue
				if (line ~ /^[ \t]/) val = line
				else {
					p = index(line, ":"); if (!p) continue
					key = tolower(substr(line, 1, p - 1)); val = substr(line, p + 1)
				}
				if (key == "types") types = types " " val
				else if (key == "uris") uris = uris " " val
				else if (key == "suites") suites = suites " " val
				else if (key == "enabled") enabled = val
			}
			gsub(/[ \t]/, "", enabled)
			if (tolower(enabled) == "no") next
			n = split(types, t, /[ \t]+/); deb = 0
			for (j = 1; j <= n; j++) if (t[j] == "deb") deb = 1
			if (!deb) next
			nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
			for (a = 1; a <= nu; a++) if (u[a] != "")
				for (b = 1; b <= ns; b++) if (s[b] != "") print u[a], s[b]
		}' "$f"
	done
	shopt -u nullglob
}

# The first URI the host uses for SUITE, without a trailing slash.
host_uri_for() {
	host_sources | awk -v s="$1" '$2 == s { sub(/\/+$/, "", $1); print $1; exit }'
}

# Does the archive at URI have SUITE?  (Fetches its InRelease with apt.)
suite_exists() {
	local tmpf rc=0
	tmpf=$(mktemp)
	/usr/lib/apt/apt-helper download-file "$1/dists/$2/InRelease" "$tmpf" >/dev/null 2>&1 || rc=1
	rm -f "$tmpf"
	return $rc
}

HOST_RELEASE=

# Sets MIRROR: the archive that serves the host's own release.
find_mirror() {
	# shellcheck disable=SC1091
	HOST_RELEASE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$HOST_RELEASE" ] || die "cannot tell the host's release from /etc/os-release"
	MIRROR=${PGROOT_MIRROR:-$(host_uri_for "$HOST_RELEASE")}
	[ -n "$MIRROR" ] || die "no deb entry for '$HOST_RELEASE' in the host's apt sources; set PGROOT_MIRROR"
	MIRROR=${MIRROR%/}
}

# Sets SOURCES (deb822 text for SUITE from MIRROR, checked with KEYRING),
# SECURITY (the security archive's URI, empty when not used) and
# SECURITY_SOURCES (its deb822 paragraph, to append to SOURCES).
plan_sources() {
	local suite=$1 keyring=$2 host=$HOST_RELEASE vu="" suites=$1
	SECURITY=
	SECURITY_SOURCES=
	[ "$suite" = sid ] && vu=$'\nCheck-Valid-Until: no'
	if [ "$suite" != sid ] && [ -n "$(host_uri_for "$host-updates")" ]; then
		if suite_exists "$MIRROR" "$suite-updates"; then
			suites+=" $suite-updates"
		else
			log "the archive has no $suite-updates; leaving it out"
		fi
	fi
	SOURCES="Types: deb
URIs: $MIRROR/
Suites: $suites
Components: main
Signed-By: $keyring$vu
"
	# PostgreSQL 19 is in experimental only; pin_experimental() lets apt
	# take nothing else from it
	[ "$MAJOR" = 19 ] && SOURCES+="
Types: deb
URIs: $MIRROR/
Suites: experimental
Components: main
Signed-By: $keyring$vu
"
	[ "$suite" = sid ] && return 0
	local security=${PGROOT_SECURITY_MIRROR:-$(host_uri_for "$host-security")}
	[ -n "$security" ] || security=$(host_uri_for "$host/updates")
	[ -n "$security" ] && [ "$security" != none ] || return 0
	security=${security%/}
	if suite_exists "$security" "$suite-security"; then
		SECURITY=$security
		SECURITY_SOURCES="
Types: deb
URIs: $security/
Suites: $suite-security
Components: main
Signed-By: $keyring
"
	else
		log "the security archive has no $suite-security; leaving it out"
	fi
}

# The sources on one line: "URI suite...; URI suite...".
sources_summary() {
	printf '%s' "$1" | awk '/^URIs:/ { u = $2 } /^Suites:/ { $1 = ""; printf "%s%s%s", sep, u, $0; sep = "; " }'
}

# --- one root -----------------------------------------------------------------

MAJOR=
SUITE=
KEY=
DIR=  # the cache directory of the root: DIR/root, DIR/stamp, ...
ROOT=

select_root() {
	MAJOR=$1
	SUITE=$(suite_of "$MAJOR")
	KEY=$SUITE-pg$MAJOR
	DIR=$CACHE/$KEY
	ROOT=$DIR/root
}

packages() {
	if [ "$MAJOR" = 19 ]; then
		# no postgresql-19-cron in Debian yet: the pg_cron tests skip
		echo "postgresql-$MAJOR postgresql-server-dev-$MAJOR"
	else
		echo "postgresql-$MAJOR postgresql-server-dev-$MAJOR postgresql-$MAJOR-cron"
	fi
	echo "build-essential libipc-run-perl libdbd-pg-perl libkrb5-dev libssl-dev locales"
	echo "python3-sqlalchemy python3-psycopg2"
}

recipe() {
	echo "v$RECIPE_VERSION $SUITE $(packages | tr '\n' ' ')sqlsmith?"
}

lock_root() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/$KEY.lock"
	if ! flock -n 9; then
		log "waiting for another pgroot.sh working on $KEY"
		flock 9
	fi
}

# Why the root at R (a cache directory) is not usable; nothing when it is.
# FULL=1 adds the smoke check (runs programs inside it).
root_problem() {
	local d=$1 full=${2:-0} r=$1/root out
	[ -d "$r" ] || { echo "missing"; return; }
	[ -f "$d/stamp" ] || { echo "no stamp (an unfinished or broken build)"; return; }
	grep -qxF "recipe=$(recipe)" "$d/stamp" || { echo "built from another recipe"; return; }
	[ -x "$r/usr/lib/postgresql/$MAJOR/bin/pg_config" ] || { echo "pg_config missing"; return; }
	[ "$full" = 1 ] || return 0
	out=$(in_root "$r" "/usr/lib/postgresql/$MAJOR/bin/pg_config" --version 2>&1) || out="failed: $out"
	# "PostgreSQL 18.6", or a pre-release: "PostgreSQL 19rc1", "19beta2"
	case "$out" in "PostgreSQL $MAJOR."* | "PostgreSQL ${MAJOR}rc"* | "PostgreSQL ${MAJOR}beta"*) ;;
	*) echo "pg_config --version: $out"; return ;; esac
	out=$(in_root "$r" "/usr/lib/postgresql/$MAJOR/bin/postgres" --version 2>&1) || { echo "postgres --version: $out"; return; }
	in_root "$r" gcc --version >/dev/null 2>&1 || { echo "gcc does not run"; return; }
	in_root "$r" make --version >/dev/null 2>&1 || { echo "make does not run"; return; }
	in_root "$r" id -u postgres >/dev/null 2>&1 || { echo "no postgres user"; return; }
	return 0
}

# For PostgreSQL 19: experimental's packages of that major (and the libpq
# they need) win over sid's; apt takes nothing else from experimental
# (its default priority, 1, stays for every other package).
pin_experimental() {
	local r=$1
	[ "$MAJOR" = 19 ] || return 0
	mkdir -p "$r/etc/apt/preferences.d"
	cat >"$r/etc/apt/preferences.d/pg_connwatch-postgresql-19" <<'PIN'
Package: postgresql-19 postgresql-client-19 postgresql-server-dev-19 postgresql-19-* libpq5 libpq-dev
Pin: release a=experimental
Pin-Priority: 990
PIN
}

# Write SOURCES into ROOT and run apt-get update there (output to LOG).
apt_update() {
	local r=$1 blog=$2
	printf '%s' "$SOURCES" >"$r/etc/apt/sources.list.d/debian.sources"
	log "apt-get update ($(sources_summary "$SOURCES"))"
	in_root "$r" apt-get update >>"$blog" 2>&1 || {
		tail -n 30 "$blog" >&2
		die "apt-get update failed inside the $SUITE root (log: $CACHE/$KEY.failed.log)"
	}
}

# apt-get install ARGS... inside ROOT, output to LOG.  unsafe-io: no fsync
# per file (a build cut short is thrown away anyway).
apt_install() {
	local r=$1 blog=$2
	shift 2
	in_root "$r" apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		-o Dpkg::Options::=--force-unsafe-io "$@" >>"$blog" 2>&1
}

build_root() {
	local build start rc=0
	start=$SECONDS
	build=$(mktemp -d "$CACHE/.build-$KEY.XXXXXX")
	chmod 755 "$build" # mktemp's 0700 would hide the sockets from other users
	# On any way out before the rename: unmount and delete the half root.
	# The log of a failed build is kept as SUITE-pgMAJOR.failed.log.
	# shellcheck disable=SC2064
	trap "cp -f '$build/build.log' '$CACHE/$KEY.failed.log' 2>/dev/null || true
		umount_all '$build' || true; safe_remove '$build' || log 'left $build behind'" EXIT
	trap 'exit 130' INT TERM HUP
	local blog=$build/build.log r=$build/root

	log "building $KEY in $build"
	find_mirror
	log "debootstrap --variant=minbase $SUITE from $MIRROR"
	if ! debootstrap --variant=minbase "$SUITE" "$r" "$MIRROR/" >>"$blog" 2>&1; then
		tail -n 30 "$blog" >&2
		die "debootstrap of $SUITE failed (log: $CACHE/$KEY.failed.log)"
	fi
	umount_all "$r" # debootstrap unmounts its own on success; make sure

	# apt sources: the keyring shipped inside the root, deb822 format.
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -f "$r/usr/share/keyrings/debian-archive-keyring.pgp" ] &&
		keyring=/usr/share/keyrings/debian-archive-keyring.pgp
	[ -f "$r$keyring" ] || die "no archive keyring in the new root"
	plan_sources "$SUITE" "$keyring"
	SOURCES+=$SECURITY_SOURCES
	rm -f "$r/etc/apt/sources.list"

	# No services start inside; no cluster is created by the packages.
	pin_experimental "$r"
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	mkdir -p "$r/etc/postgresql-common"
	printf 'create_main_cluster = false\n' >"$r/etc/postgresql-common/createcluster.conf"
	cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
	[ -s "$r/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >"$r/etc/hosts"

	mount_inside "$r"
	local pkgs
	pkgs=$(packages | tr '\n' ' ')
	apt_update "$r" "$blog"
	if in_root "$r" apt-cache show --no-all-versions sqlsmith >/dev/null 2>&1; then
		pkgs+=" sqlsmith"
	else
		log "$SUITE has no sqlsmith; going without"
	fi
	log "apt-get install $pkgs"
	# Download everything first: a failed download installs nothing.  An
	# archive mirror may list security updates whose files it lacks (seen for
	# bullseye-security); then the root goes without the security suite.
	# shellcheck disable=SC2086
	if ! apt_install "$r" "$blog" --download-only $pkgs; then
		if [ -n "$SECURITY" ] && grep -qF "E: Failed to fetch $SECURITY/" "$blog"; then
			grep -F "E: Failed to fetch $SECURITY/" "$blog" | sed 's/^/    /' >&2
			log "the security archive lacks files it lists; going without $SUITE-security"
			SOURCES=${SOURCES%"$SECURITY_SOURCES"}
			SECURITY=
			apt_update "$r" "$blog"
			# shellcheck disable=SC2086
			apt_install "$r" "$blog" --download-only $pkgs || {
				tail -n 30 "$blog" >&2
				die "apt-get install failed inside the $SUITE root (log: $CACHE/$KEY.failed.log)"
			}
		else
			tail -n 30 "$blog" >&2
			die "apt-get install failed inside the $SUITE root (log: $CACHE/$KEY.failed.log)"
		fi
	fi
	# shellcheck disable=SC2086
	apt_install "$r" "$blog" $pkgs || {
		tail -n 30 "$blog" >&2
		die "apt-get install failed inside the $SUITE root (log: $CACHE/$KEY.failed.log)"
	}
	in_root "$r" apt-get clean >>"$blog" 2>&1
	# a non-English locale for the server's messages (test/t/301)
	in_root "$r" localedef -i de_DE -f UTF-8 de_DE.UTF-8 >>"$blog" 2>&1 ||
		die "localedef de_DE.UTF-8 failed inside the $SUITE root"

	# Should a cluster exist all the same, drop it.
	local ver name
	while read -r ver name _; do
		[ -n "$name" ] || continue
		log "dropping the packaged cluster $ver/$name"
		in_root "$r" pg_dropcluster --stop "$ver" "$name" >>"$blog" 2>&1 || rc=1
	done < <(in_root "$r" pg_lsclusters -h 2>/dev/null || true)
	[ "$rc" = 0 ] || die "could not drop the packaged cluster(s)"
	umount_all "$r" || die "could not unmount the new root"

	local problem
	problem=$(root_problem_unstamped "$build")
	[ -z "$problem" ] || die "the new $KEY root fails its smoke check: $problem"

	# shellcheck disable=SC2016
	in_root "$r" dpkg-query -W -f='${Package} ${Version}\n' >"$build/packages.txt"
	{
		echo "# pgroot.sh stamp: written once the root below was complete"
		echo "recipe=$(recipe)"
		echo "suite=$SUITE"
		echo "major=$MAJOR"
		echo "mirror=$MIRROR"
		echo "sources=$(sources_summary "$SOURCES")"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "build_seconds=$((SECONDS - start))"
		# shellcheck disable=SC2086,SC2016
		in_root "$r" dpkg-query -W -f='package ${Package} ${Version}\n' \
			$pkgs postgresql-common postgresql-client-"$MAJOR" libpq-dev libpq5 gcc make perl
	} >"$build/stamp.new"
	mv "$build/stamp.new" "$build/stamp"

	mv -T -- "$build" "$DIR" || die "could not move $build to $DIR"
	trap - EXIT INT TERM HUP
	rm -f "$CACHE/$KEY.failed.log"
	log "built $KEY in $((SECONDS - start)) s ($(du -sh --one-file-system "$DIR" | cut -f1))"
}

# A root built from an earlier recipe that only lacks packages the current
# one adds (and the locale it generates) is topped up in place instead of
# rebuilt: apt-get install of the missing packages from the root's own
# sources, then a new stamp.  Returns non-zero when that does not apply or
# fails; the caller then rebuilds.
top_up_root() {
	local old new missing="" tok blog=$DIR/build.log
	old=$(sed -n 's/^recipe=//p' "$DIR/stamp")
	new=$(recipe)
	[ -n "$old" ] || return 1
	# every word of the old recipe must still be in the new one
	for tok in $old; do
		case " $new " in *" $tok "*) ;; *) return 1 ;; esac
	done
	for tok in $(packages); do
		case " $old " in *" $tok "*) ;; *) missing+=" $tok" ;; esac
	done
	log "$KEY: topping up the cached root with$missing"
	mount_inside "$ROOT"
	# shellcheck disable=SC2086
	if ! in_root "$ROOT" apt-get update >>"$blog" 2>&1 ||
		! apt_install "$ROOT" "$blog" $missing ||
		! in_root "$ROOT" localedef -i de_DE -f UTF-8 de_DE.UTF-8 >>"$blog" 2>&1; then
		log "$KEY: top-up failed (log: $blog)"
		return 1
	fi
	in_root "$ROOT" apt-get clean >>"$blog" 2>&1 || true
	{
		sed "s|^recipe=.*|recipe=$new|" "$DIR/stamp"
		echo "topped_up=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		# shellcheck disable=SC2086,SC2016
		in_root "$ROOT" dpkg-query -W -f='package ${Package} ${Version}\n' $missing
	} >"$DIR/stamp.new" && mv "$DIR/stamp.new" "$DIR/stamp"
}

# The smoke check of a build directory before its stamp exists.
root_problem_unstamped() {
	local d=$1
	printf 'recipe=%s\n' "$(recipe)" >"$d/stamp"
	root_problem "$d" 1
	rm -f "$d/stamp"
}

# --- commands -------------------------------------------------------------------

[ $# -ge 2 ] || usage
cmd=$1
select_root "$2"
shift 2

[ "$(id -u)" = 0 ] || [ "$cmd" = path ] || die "run as root (chroot and mount need it)"
case "$CACHE" in /?*) ;; *) die "PGROOT_CACHE must be an absolute path" ;; esac
case "$CACHE" in *[[:space:]]*) die "PGROOT_CACHE must not contain white space" ;; esac
if [ "$cmd" != path ]; then
	mkdir -p "$CACHE"
	CACHE=$(realpath "$CACHE")
	[ "$CACHE" != / ] || die "PGROOT_CACHE must not be /"
	select_root "$MAJOR"
fi

case "$cmd" in
ensure)
	[ $# = 0 ] || usage
	lock_root
	# Leftovers of builds that were killed before they could clean up.
	for old in "$CACHE"/.build-"$KEY".*; do
		[ -e "$old" ] || continue
		log "removing the leftover build $old"
		if ! umount_all "$old" || ! safe_remove "$old"; then
			die "cannot clear $old"
		fi
	done
	problem=$(root_problem "$DIR" 1)
	if [ "$problem" = "built from another recipe" ] && top_up_root; then
		problem=$(root_problem "$DIR" 1)
	fi
	if [ -n "$problem" ]; then
		command -v debootstrap >/dev/null ||
			die "$KEY: $problem, and debootstrap is missing (apt-get install debootstrap)"
		if [ -e "$DIR" ]; then
			log "$KEY: $problem; rebuilding"
			umount_all "$DIR" || die "cannot rebuild $KEY while it is in use"
			safe_remove "$DIR" || die "cannot rebuild $KEY"
		fi
		build_root
	else
		log "$KEY: cached root is fine"
	fi
	echo "$ROOT"
	;;
path)
	[ $# = 0 ] || usage
	[ -f "$DIR/stamp" ] || log "$KEY is not built (pgroot.sh ensure $MAJOR)"
	echo "$ROOT"
	;;
run)
	[ $# -ge 1 ] || usage
	lock_root
	problem=$(root_problem "$DIR")
	[ -z "$problem" ] || die "$KEY is not usable ($problem): run pgroot.sh ensure $MAJOR first"
	mount_inside "$ROOT"
	exec 9>&- # the command must not hold the lock (a server it starts would keep it)
	# exec: signals reach the command, and its exit status is ours.
	exec chroot "$ROOT" /usr/bin/env -i PATH="$INSIDE_PATH" HOME=/root LANG=C.UTF-8 \
		TERM="${TERM:-dumb}" "$@"
	;;
umount)
	[ $# = 0 ] || usage
	lock_root
	umount_all "$DIR" || die "could not unmount everything under $DIR"
	;;
remove)
	[ $# = 0 ] || usage
	lock_root
	if [ ! -e "$DIR" ]; then
		log "$KEY is not there; nothing to remove"
		exit 0
	fi
	umount_all "$DIR" || die "not removing $DIR: something is still mounted under it"
	safe_remove "$DIR" || die "not removing $DIR"
	log "removed $DIR"
	;;
*)
	usage
	;;
esac
