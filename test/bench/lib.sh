# test/bench/lib.sh - setup shared by test/bench/run.sh and act_run.sh.
# Sourced, not run: it defines functions only.  The caller sets HERE, ROOT,
# PG_CONFIG, INSTALL and KEEP before using them.

# The script's header comment, as its --help.
usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

die() {
	echo "${0##*/}: ERROR: $*" >&2
	exit 1
}

# One command-line option both scripts take, from "$@": sets CONNECTIONS,
# DURATION, ROUNDS, PORT, INSTALL or KEEP, prints --help and exits, and sets
# SHIFT to the number of words used (0 when $1 is not one of them).
bench_common_arg() {
	SHIFT=1
	case "$1" in
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
	bash "$ROOT/scripts/pgcluster.sh" start "$DIR" "$PORT" \
		"max_connections = $1" \
		"autovacuum = off" ||
		{ tail -20 "$DIR/server.log" >&2; die "could not start the cluster"; }
	eval "$(bash "$ROOT/scripts/pgcluster.sh" env "$DIR" "$PORT")"
	export PGDATABASE=postgres
}

# Stop the cluster; remove $DIR unless --keep was given or the run failed
# (exit status $1).
bench_stop_cluster() {
	bash "$ROOT/scripts/pgcluster.sh" stop "$DIR" || true
	if [ "$KEEP" = 1 ] || [ "$1" != 0 ]; then
		echo "(files kept in $DIR)" >&2
	else
		rm -rf "$DIR"
	fi
}

psql_q() {
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -At "$@"
}
