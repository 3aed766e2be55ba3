# test/bench/lib.sh - setup shared by test/bench/run.sh and act_run.sh.
# Sourced, not run: it defines functions only.  The caller sets HERE, ROOT,
# PG_CONFIG, MAJOR, INSTALL and KEEP before using them.

# The script's header comment, as its --help.
usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

die() {
	echo "${0##*/}: ERROR: $*" >&2
	exit 1
}

# One command-line option both scripts take, from "$@": sets CONNECTIONS,
# DURATION, ROUNDS, PORT, MAJOR, INSTALL or KEEP, prints --help and exits,
# and sets SHIFT to the number of words used (0 when $1 is not one of them).
bench_common_arg() {
	SHIFT=1
	case "$1" in
	--major) MAJOR=${2:?}; SHIFT=2 ;;
	--major=*) MAJOR=${1#*=} ;;
	--connections) CONNECTIONS=${2:?}; SHIFT=2 ;;
	--connections=*) CONNECTIONS=${1#*=} ;;
	--duration) DURATION=${2:?}; SHIFT=2 ;;
	--duration=*) DURATION=${1#*=} ;;
	--rounds) ROUNDS=${2:?}; SHIFT=2 ;;
	--rounds=*) ROUNDS=${1#*=} ;;
	--port) PORT=${2:?}; SHIFT=2 ;;
	--port=*) PORT=${1#*=} ;;
	--install) INSTALL=yes ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) SHIFT=0 ;;
	esac
}

# --major MAJOR: 15 is the host's PostgreSQL (nothing to do); 13, 17 or 18
# run the calling script, with the same arguments less --major, inside that
# major's Debian root file system (scripts/pgroot.sh, built or reused), on a
# copy of the tree in the root's /tmp, with PG_CONFIG set to the major's and
# --install (the copy is what is measured, whatever an earlier run installed
# in the root).  Exits with the inner run's status.  Arguments: "$@" of the
# script.
bench_major() {
	local script root copy a skip=0 status=0
	local args=()
	case "$MAJOR" in
	15) return 0 ;;
	13 | 17 | 18) ;;
	*) die "--major must be 13, 15 (the host's), 17 or 18 (got '$MAJOR')" ;;
	esac
	[ "$(id -u)" = 0 ] || die "--major $MAJOR needs root (chroot)"
	for a in "$@"; do
		if [ "$skip" = 1 ]; then
			skip=0
			continue
		fi
		case "$a" in
		--major) skip=1 ;;
		--major=*) ;;
		*) args+=("$a") ;;
		esac
	done
	script=${HERE#"$ROOT"/}/${0##*/}
	root=$(bash "$ROOT/scripts/pgroot.sh" ensure "$MAJOR") ||
		die "no root for PostgreSQL $MAJOR (scripts/pgroot.sh ensure $MAJOR)"
	copy=$(mktemp -d "$root/tmp/pg_connwatch_bench.XXXXXX")
	chmod 755 "$copy"
	# The host's build products stay out: the root builds its own.
	tar -C "$ROOT" --exclude=./.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=./tmp_check --exclude=./results \
		--exclude=./test/bench/hold_sessions --exclude=./test/bench/term_timer \
		--exclude=./test/bench/login_storm \
		-cf - . | tar -C "$copy" -xf -
	echo "== PostgreSQL $MAJOR: running $script inside $root (tree copied to ${copy#"$root"})"
	bash "$ROOT/scripts/pgroot.sh" run "$MAJOR" env \
		PG_CONFIG="/usr/lib/postgresql/$MAJOR/bin/pg_config" \
		${BENCH_PORT:+BENCH_PORT=$BENCH_PORT} \
		bash "${copy#"$root"}/$script" "${args[@]}" --install || status=$?
	rm -rf --one-file-system -- "$copy"
	# Leave the mounts to another run still using the root (pgroot.sh
	# would unmount proc under it).
	if [ -z "$(bench_procs_in "$root")" ]; then
		bash "$ROOT/scripts/pgroot.sh" umount "$MAJOR" || true
	else
		echo "(processes of another run still inside $root: not unmounting it)" >&2
	fi
	exit "$status"
}

# The pids of the processes whose root directory is $1 or below it.
bench_procs_in() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		if [ "$r" = "$1" ] || [ "${r#"$1"/}" != "$r" ]; then
			echo "${p#/proc/}"
		fi
	done
}

# libpq-dev and a C compiler (installed when missing, as root), pgbench and
# psql (sets PGBIN, PGBENCH, PSQL), and the extension: built and installed
# with --install, or when it is not installed (INSTALL=auto).
bench_prerequisites() {
	if ! [ -f "$("$PG_CONFIG" --includedir 2>/dev/null)/libpq-fe.h" ] ||
		! command -v cc >/dev/null; then
		[ "$(id -u)" = 0 ] || die "libpq-dev and a C compiler are needed (apt-get install libpq-dev gcc)"
		echo "== installing libpq-dev and gcc"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpq-dev gcc >/dev/null
	fi
	PGBIN=$("$PG_CONFIG" --bindir)
	[ -x "$PGBIN/pgbench" ] || die "pgbench not found in $PGBIN"
	PGBENCH=$PGBIN/pgbench
	PSQL=$PGBIN/psql

	if [ "$INSTALL" = auto ]; then
		if [ -f "$("$PG_CONFIG" --sharedir)/extension/pg_connwatch.control" ] &&
			[ -f "$("$PG_CONFIG" --pkglibdir)/pg_connwatch.so" ]; then
			INSTALL=no
		else
			INSTALL=yes
		fi
	fi
	if [ "$INSTALL" = yes ]; then
		echo "== building and installing pg_connwatch (make && make install in $ROOT)"
		make -s -C "$ROOT" PG_CONFIG="$PG_CONFIG" >/dev/null
		make -s -C "$ROOT" PG_CONFIG="$PG_CONFIG" install >/dev/null
	fi
	INSTALL_DIGEST=$(bench_install_digest)
}

# One digest of the installed extension: its library, control files and
# SQL scripts.
bench_install_digest() {
	cat "$("$PG_CONFIG" --pkglibdir)/pg_connwatch.so" \
		"$("$PG_CONFIG" --sharedir)"/extension/pg_connwatch[.-]* | md5sum | cut -d' ' -f1
}

# Die when the installed extension is no longer the one bench_prerequisites
# saw: another build was installed over it during the run (a test suite in
# the same PostgreSQL installation, e.g. the same pgroot.sh root), and every
# backend started since then measured that build instead.
bench_check_install() {
	[ "$(bench_install_digest)" = "$INSTALL_DIGEST" ] ||
		die "the installed pg_connwatch changed during the run ($*): another build was installed over it (a test run in the same installation?); the timings are not of one build"
}

# Build the named C programs of test/bench when missing or out of date.
bench_build() {
	local prog
	for prog in "$@"; do
		if ! [ -x "$HERE/$prog" ] || [ "$HERE/$prog.c" -nt "$HERE/$prog" ]; then
			echo "== building $HERE/$prog"
			cc -O2 -Wall -Wextra -I"$("$PG_CONFIG" --includedir)" -o "$HERE/$prog" \
				"$HERE/$prog.c" -L"$("$PG_CONFIG" --libdir)" -lpq
		fi
	done
}

# Raise the open-file limit to at least $1 (the holders keep one socket per
# session open).
bench_raise_nofile() {
	local need=$1
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
		if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need" ]; then
			ulimit -Hn "$need" 2>/dev/null ||
				die "open-file limit $(ulimit -Hn) < $need; raise it (ulimit -n) or run as root"
		fi
		ulimit -n "$need"
	fi
}

# Start the throwaway cluster in $DIR on $PORT with max_connections = $1 and
# autovacuum off, and point libpq at it (PGHOST, PGPORT, PGUSER, PGDATABASE).
bench_start_cluster() {
	echo "== starting a cluster in $DIR (port $PORT, max_connections = $1)"
	PGBIN=$PGBIN bash "$ROOT/scripts/pgcluster.sh" start "$DIR" "$PORT" \
		"max_connections = $1" \
		"autovacuum = off" ||
		{ tail -20 "$DIR/server.log" >&2; die "could not start the cluster"; }
	eval "$(bash "$ROOT/scripts/pgcluster.sh" env "$DIR" "$PORT")"
	export PGDATABASE=postgres
	echo "   server: $(psql_q -c 'SELECT version()')"
}

# Stop the cluster; remove $DIR unless --keep was given or the run failed
# (exit status $1).
bench_stop_cluster() {
	PGBIN=$PGBIN bash "$ROOT/scripts/pgcluster.sh" stop "$DIR" || true
	if [ "$KEEP" = 1 ] || [ "$1" != 0 ]; then
		echo "(files kept in $DIR)" >&2
	else
		rm -rf "$DIR"
	fi
}

psql_q() {
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -At "$@"
}
