#!/usr/bin/env bash
# test/bench/ledgers_at_cap.sh - what full ledgers cost their readers, at a
# given connwatch.max_ledger_keys (default: the largest allowed, 10,000).
#
#   bash test/bench/ledgers_at_cap.sh [--keys K] [--duration S] [--calls N]
#                                     [--bindir DIR] [--port P] [--keep]
#
# Run as root (or as postgres) where pg_connwatch is installed for the
# server in DIR (default: pg_config --bindir).  One throwaway cluster in a
# temporary directory, as the postgres OS user, with the library preloaded
# and connwatch.max_ledger_keys = K.  The ledgers are filled through the
# ledger file (the format persistence.c writes and checks at start): K
# refusal keys over four causes, K + 500 ending keys over four reasons (so
# that 500 are counted in the overflow), K peak keys, timestamps over the
# last ten minutes.  Then:
#
# - the start's log must show no WARNING about the file but the one for
#   the 500 endings beyond the cap, and the views show K keys each;
# - per query (count(*) over connwatch.refused_connections and
#   connwatch.session_endings, diagnose(), metrics()): the average latency
#   of pgbench -n -T S (one client), and the backend's CPU time per call
#   over N calls in one session (utime + stime from /proc, which a loaded
#   machine disturbs much less than the wall time);
# - memory: one session calls diagnose() and metrics() N times (default
#   200); its VmHWM (peak resident memory) after the first 10 calls and
#   after all N is printed: flat when nothing leaks per call.
set -euo pipefail

keys=10000
duration=5
calls=200
bindir=
port=55990
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--keys) keys=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--calls) calls=$2; shift 2 ;;
	--bindir) bindir=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done
[ -n "$bindir" ] || bindir=$(pg_config --bindir)

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

tmp=$(mktemp -d /tmp/ledgers_at_cap.XXXXXX)
chown postgres "$tmp" 2>/dev/null || true
data=$tmp/data
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "kept: psql -h $tmp -p $port -U postgres; stop with pg_ctl -D $data stop"
		return
	fi
	as_pg "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

as_pg "$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
cat >>"$data/postgresql.conf" <<EOF
port = $port
unix_socket_directories = '$tmp'
listen_addresses = ''
shared_preload_libraries = 'pg_connwatch'
connwatch.max_ledger_keys = $keys
autovacuum = off
EOF
psql_() { as_pg "$bindir/psql" -X -h "$tmp" -p "$port" -U postgres -d postgres "$@"; }
as_pg "$bindir/pg_ctl" -D "$data" -l "$tmp/server.log" -w start >/dev/null
psql_ -qc 'CREATE EXTENSION pg_connwatch'
as_pg "$bindir/pg_ctl" -D "$data" -w stop >/dev/null

# Fill the file: the header of the file the clean stop wrote, new entries.
as_pg perl - "$data/pg_stat/pg_connwatch.ledgers" "$keys" <<'PERL'
use strict;
use warnings;
my ($file, $keys) = @ARGV;
open my $in, '<:raw', $file or die "$file: $!";
local $/;
my $bytes = <$in>;
close $in;
my $hfmt = 'L8 q q q q Q l l l x4';
my @h = unpack($hfmt, $bytes);
die "unexpected layout" unless $h[2] == 214 && $h[3] == 392 && $h[4] == 88;
my $now = int((time() - 946684800) * 1000000);
my (@ref, @end, @peak);
my @causes = (0, 2, 4, 10);    # too many clients, role limit, no such role, auth failed
for my $i (1 .. $keys)
{
	my $at = $now - int(rand(600 * 1000000));
	push @ref, pack('C C C C C C x16 Z64 Z64 Z64 x2 q q q',
		$causes[ $i % 4 ], 0, 1, 1, 1, 2, 'db' . ($i % 50), "role_$i", "app_$i",
		1 + $i % 7, $at - 1000000, $at);
}
my @reasons = (0, 1, 3, 4);    # closed, vanished, by another session, iit timeout
for my $i (1 .. $keys + 500)
{
	my $at = $now - int(rand(600 * 1000000));
	my $n  = 1 + $i % 5;
	push @end, pack('Z64 Z64 Z64 Z64 C C x6 q q q8 q q q q q q',
		'db' . ($i % 50), 'role_' . ($i % 200), "app_$i", '', $reasons[ $i % 4 ], 0,
		$n, 50000 * $n, $n, 0, 0, 0, 0, 0, 0, 0, $i % 2, 0,
		$at - 1000000, $at, ($i % 2 ? $at : 0), 0);
}
push @peak, pack('C C Z64 x2 l l x4 q', 0, 0, '', 0, 500, $now - 1000000);
for my $i (1 .. $keys - 1)
{
	push @peak, pack('C C Z64 x2 l l x4 q', 1 + $i % 3, 0, "name_$i", 0, 1 + $i % 20,
		$now - int(rand(600 * 1000000)));
}
@h[ 13 .. 15 ] = (scalar @ref, scalar @end, scalar @peak);
open my $out, '>:raw', $file or die "$file: $!";
print $out pack($hfmt, @h), @ref, @end, @peak;
close $out;
PERL

as_pg "$bindir/pg_ctl" -D "$data" -l "$tmp/server.log" -w start >/dev/null
if grep 'WARNING:.*pg_connwatch' "$tmp/server.log" | grep -qv 'beyond connwatch.max_ledger_keys'; then
	grep 'WARNING:.*pg_connwatch' "$tmp/server.log" >&2
	echo "the ledger file was not accepted as written" >&2
	exit 1
fi
echo "keys: $keys ($("$bindir/postgres" --version))"
psql_ -Atc "SELECT 'refused_connections rows: ' || count(*) FROM connwatch.refused_connections"
psql_ -Atc "SELECT 'session_endings rows: ' || count(*) || ' (' || count(*) FILTER (WHERE overflow) || ' overflow)' FROM connwatch.session_endings"
psql_ -Atc "SELECT 'peaks rows: ' || count(*) FROM connwatch.peaks"

# CPU of the backend (utime + stime, in clock ticks) from /proc: wall time
# on a shared 2-core VM says more about the neighbours than about the query.
cpu_sql="SELECT (a[12])::bigint + (a[13])::bigint FROM (SELECT string_to_array(split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2), ' ') AS a) s;"
hz=$(getconf CLK_TCK)
printf '%-52s %12s %12s\n' query 'wall ms' 'CPU ms'
for q in 'SELECT count(*) FROM connwatch.refused_connections' \
	'SELECT count(*) FROM connwatch.session_endings' \
	'SELECT count(*) FROM connwatch.diagnose()' \
	'SELECT count(*) FROM connwatch.metrics()'; do
	echo "$q;" >"$tmp/q.sql"
	chown postgres "$tmp/q.sql" 2>/dev/null || true
	lat=$(as_pg "$bindir/pgbench" -n -h "$tmp" -p "$port" -U postgres -T "$duration" \
		-f "$tmp/q.sql" postgres 2>/dev/null | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
	{
		echo "$q;"
		echo "$cpu_sql"
		echo '\o /dev/null'
		for _ in $(seq "$calls"); do echo "$q;"; done
		echo '\o'
		echo "$cpu_sql"
	} >"$tmp/cpu.sql"
	chown postgres "$tmp/cpu.sql" 2>/dev/null || true
	ticks=$(psql_ -qAt -f "$tmp/cpu.sql" | tail -n 2 | tr '\n' ' ')
	cpu=$(echo "$ticks" | awk -v hz="$hz" -v n="$calls" '{ printf "%.1f", ($2 - $1) * 1000 / hz / n }')
	printf '%-52s %12s %12s\n' "$q" "$lat" "$cpu"
done

# Peak resident memory of one session after 10 calls and after all of them
{
	echo '\o /dev/null'
	for _ in $(seq 10); do echo 'SELECT * FROM connwatch.diagnose(); SELECT * FROM connwatch.metrics();'; done
	echo '\o'
	echo "SELECT 'VmHWM ' || substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM 'VmHWM:\s+(\d+ kB)');"
	echo '\o /dev/null'
	for _ in $(seq $((calls - 10))); do echo 'SELECT * FROM connwatch.diagnose(); SELECT * FROM connwatch.metrics();'; done
	echo '\o'
	echo "SELECT 'VmHWM ' || substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM 'VmHWM:\s+(\d+ kB)');"
} >"$tmp/mem.sql"
chown postgres "$tmp/mem.sql" 2>/dev/null || true
echo "one session, VmHWM after 10 and after $calls calls of diagnose() and metrics():"
psql_ -qAt -f "$tmp/mem.sql"
