#!/usr/bin/env bash
# scripts/pgcluster.sh - start and stop a throwaway PostgreSQL 15 cluster.
#
# The server refuses to run as root, so when called as root the cluster is
# created and run as the "postgres" OS user.  Everything lives under DIR:
# data directory, Unix socket directory and server log.
#
#   pgcluster.sh start DIR PORT [postgresql.conf line ...]
#   pgcluster.sh stop DIR
#   pgcluster.sh env DIR PORT        # prints export lines for PGHOST/PGPORT
set -euo pipefail

PGBIN=${PGBIN:-$(pg_config --bindir)}
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
	RUN_AS=(runuser -u postgres --)
fi

cmd=${1:?usage: pgcluster.sh start|stop|env DIR [PORT] [conf...]}
dir=${2:?DIR missing}

case "$cmd" in
start)
	port=${3:?PORT missing}
	shift 3
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	"${RUN_AS[@]}" "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
		--no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
	{
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		echo "listen_addresses = '127.0.0.1'"
		echo "max_prepared_transactions = 10"
		echo "fsync = off"
		echo "logging_collector = off"
		echo "log_line_prefix = '%m [%p] %q%a '"
		for line in "$@"; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
	"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
		-w -t 60 start >/dev/null
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ||
			"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
	fi
	;;
env)
	port=${3:?PORT missing}
	echo "export PGHOST='$dir' PGPORT='$port' PGUSER=postgres"
	;;
*)
	echo "unknown command: $cmd" >&2
	exit 2
	;;
esac
