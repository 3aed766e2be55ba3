#!/usr/bin/env bash
# scripts/stock_installcheck.sh - "make installcheck" as a user runs it:
# against a stock cluster, made by initdb and started with nothing but a
# port and a socket directory (default postgresql.conf and pg_hba.conf: no
# shared_preload_libraries, max_prepared_transactions = 0, listen_addresses
# = 'localhost').
#
#   PG_CONFIG=... stock_installcheck.sh SRC DIR FIRST_PORT
#
# SRC is a tree whose extension is built and installed for PG_CONFIG's
# major (make && make install).  DIR must not exist: it gets the cluster
# (DIR/data, its socket directory DIR, DIR/server.log) and a copy of SRC
# (DIR/src), so that SRC's own results stay.  The port is the first free one
# from FIRST_PORT on.  Run as root (initdb, the server and make run as the
# postgres OS user) or as the cluster's owner.  The cluster is stopped on
# every way out.  Prints make installcheck's output, then the files that took
# their "skipped:" way; the exit status is make's.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/lib.sh"

src=${1:?usage: stock_installcheck.sh SRC DIR FIRST_PORT}
dir=${2:?DIR missing}
first_port=${3:?FIRST_PORT missing}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgbin=$("$PG_CONFIG" --bindir) || exit 2

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

[ ! -e "$dir" ] || { echo "!!! $dir exists already" >&2; exit 2; }
mkdir -p "$dir/src" && chmod 755 "$dir" || exit 2
tar -C "$src" --exclude=./.git --exclude=./results --exclude=./output_iso \
	--exclude=./tmp_check --exclude=./regression.diffs --exclude=./regression.out \
	-cf - . | tar -C "$dir/src" -xf - || exit 2
[ "$(id -u)" = 0 ] && chown -R postgres: "$dir"

if ! as_pg "$pgbin/initdb" -D "$dir/data" >"$dir/initdb.log" 2>&1; then
	cat "$dir/initdb.log"
	echo "!!! initdb failed"
	exit 2
fi
stop() { as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop EXIT
# Another run may take the port between the probe and the start: retry.
started=
next=$first_port
for _ in 1 2 3; do
	port=$(free_port "$next") || break
	next=$((port + 1))
	if as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
		-o "-p $port -k $dir" -w -t 60 start >/dev/null; then
		started=1
		break
	fi
done
if [ -z "$started" ]; then
	show_tail "server log" "$dir/server.log"
	echo "!!! could not start the stock cluster"
	exit 2
fi
echo "stock cluster on port $port ($dir), $("$pgbin/postgres" --version)"

as_pg env PGHOST="$dir" PGPORT="$port" \
	make -C "$dir/src" --no-print-directory PG_CONFIG="$PG_CONFIG" installcheck
status=$?
skipped=$(grep -l '^skipped:' "$dir"/src/results/*.out 2>/dev/null | xargs -r -n1 basename | sed 's/\.out$//' | tr '\n' ' ')
echo "skipped on the stock cluster: ${skipped:-none}"
exit $status
