# 001_connection_counts.pl - connection_summary, connection_limits and
# connection_headroom under a few hundred real connections.
#
# One Perl process holds every client connection (DBD::Pg, asynchronous
# queries for the sessions that must stay active), so the workload costs no
# psql process per session.  The workload is a mix of idle, idle in
# transaction, aborted, lock-waiting and sleeping sessions over two roles,
# two databases, several application_names, Unix socket and TCP.
#
# Every count of the views is checked twice:
#   - against the same aggregation written over pg_stat_activity, pg_database,
#     pg_roles and the settings, in the same statement;
#   - against what this script knows it opened.
# The workload is settled (polled) first, and autovacuum is off, so that the
# two readings of backend state in one statement see the same backends.

use strict;
use warnings;

use DBI;
use DBD::Pg qw(:async);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $MAX_CONNECTIONS = 400;
my $RESERVED        = 3;
my $WARNING_PCT     = 80;    # connwatch.warning_pct default
my $CRITICAL_PCT    = 95;    # connwatch.critical_pct default
my $INSUFFICIENT    = '<insufficient privilege>';

my $node = PostgreSQL::Test::Cluster->new('counts');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
max_connections = $MAX_CONNECTIONS
superuser_reserved_connections = $RESERVED
listen_addresses = '127.0.0.1'
# autovacuum workers count against database limits and come and go at any
# moment: keep them out so that two readings in one statement agree.
autovacuum = off
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_app_a LOGIN;
CREATE ROLE regress_app_b LOGIN;
CREATE ROLE regress_observer LOGIN;
CREATE ROLE regress_limited_idle LOGIN CONNECTION LIMIT 5;
CREATE ROLE regress_super SUPERUSER LOGIN CONNECTION LIMIT 1;
CREATE ROLE regress_nologin NOLOGIN CONNECTION LIMIT 3;
CREATE DATABASE regress_db1;
CREATE DATABASE regress_db2;
CREATE EXTENSION pg_connwatch;
-- the views are pg_monitor's; the observer is granted them without being
-- a member, so that it sees other roles' sessions only as counts
GRANT SELECT ON ALL TABLES IN SCHEMA connwatch TO regress_observer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA connwatch TO regress_observer;
});
$node->safe_psql(
	'regress_db1', q{
CREATE TABLE regress_locked (i int);
GRANT SELECT ON regress_locked TO regress_app_a, regress_app_b;
GRANT UPDATE ON regress_locked TO regress_app_a;
});

#
# Connections
#
my $socket_dir = $node->host;
my $port       = $node->port;

sub try_connect
{
	my ($role, $db, $app, $via) = @_;
	my $host = $via eq 'tcp' ? '127.0.0.1' : $socket_dir;
	return DBI->connect(
		"dbi:Pg:dbname=$db;host=$host;port=$port;application_name=$app",
		$role, '',
		{ AutoCommit => 1, RaiseError => 0, PrintError => 0, pg_server_prepare => 0 });
}

# Every session this script holds: role, db, app, via, kind, dbh.
my @sessions;

sub open_session
{
	my ($role, $db, $app, $via, $kind) = @_;
	my $dbh = try_connect($role, $db, $app, $via)
	  or BAIL_OUT("connection $role/$db/$app/$via failed: $DBI::errstr");
	$dbh->{RaiseError} = 1;
	if ($kind eq 'idle_in_transaction')
	{
		$dbh->begin_work;
		$dbh->do('SELECT 1');
	}
	elsif ($kind eq 'aborted')
	{
		$dbh->begin_work;
		$dbh->{RaiseError} = 0;
		$dbh->do('SELECT 1/0');
		$dbh->{RaiseError} = 1;
	}
	elsif ($kind eq 'lock_holder')
	{
		$dbh->begin_work;
		$dbh->do('LOCK TABLE regress_locked IN ACCESS EXCLUSIVE MODE');
		$dbh->do('SELECT pg_advisory_xact_lock(42)');
	}
	elsif ($kind eq 'wait_table')
	{
		$dbh->do('SELECT count(*) FROM regress_locked', { pg_async => PG_ASYNC });
	}
	elsif ($kind eq 'wait_advisory')
	{
		$dbh->do('SELECT pg_advisory_xact_lock(42)', { pg_async => PG_ASYNC });
	}
	elsif ($kind eq 'sleep')
	{
		$dbh->do('SELECT pg_sleep(900)', { pg_async => PG_ASYNC });
	}
	elsif ($kind ne 'idle' && $kind ne 'checker')
	{
		die "unknown kind $kind";
	}
	push @sessions,
	  {
		role => $role,
		db   => $db,
		app  => $app,
		via  => $via,
		kind => $kind,
		dbh  => $dbh
	  };
	return $sessions[-1];
}

sub close_session
{
	my ($s) = @_;
	my $dbh = $s->{dbh};
	$dbh->pg_cancel if $dbh->{pg_async_status} == 1;
	$dbh->{RaiseError} = 0;
	$dbh->rollback unless $dbh->{AutoCommit};
	$dbh->disconnect;
	@sessions = grep { $_ != $s } @sessions;
}

# The checking session: superuser, one connection for every check, so that no
# short-lived psql backend comes or goes while the views are compared.
my $checker = open_session('postgres', 'postgres', 'regress_checker', 'socket', 'checker');
my $cdbh    = $checker->{dbh};

# The workload: role, database, application, transport, kind, how many.
my @workload = (
	[ 'regress_app_a', 'regress_db1', 'regress_web',    'socket', 'idle', 60 ],
	[ 'regress_app_a', 'regress_db1', 'regress_web',    'tcp',    'idle', 40 ],
	[ 'regress_app_b', 'regress_db2', 'regress_batch',  'socket', 'idle', 30 ],
	[ 'regress_app_b', 'regress_db1', 'regress_report', 'tcp',    'idle', 20 ],
	[ 'regress_app_a', 'regress_db1', 'regress_leaky', 'tcp', 'idle_in_transaction', 50 ],
	[ 'regress_app_b', 'regress_db2', 'regress_leaky', 'socket', 'idle_in_transaction', 30 ],
	[ 'regress_app_a', 'regress_db2', 'regress_worker', 'socket', 'idle_in_transaction', 20 ],
	[ 'regress_app_a', 'regress_db1', 'regress_leaky', 'tcp',    'aborted', 12 ],
	[ 'regress_app_b', 'regress_db2', 'regress_batch', 'socket', 'aborted', 8 ],
	[ 'regress_app_a', 'regress_db1', 'regress_locker', 'socket', 'lock_holder', 1 ],
	[ 'regress_app_b', 'regress_db1', 'regress_report', 'tcp', 'wait_table', 12 ],
	[ 'regress_app_a', 'regress_db1', 'regress_web', 'socket', 'wait_advisory', 8 ],
	[ 'regress_app_a', 'regress_db2', 'regress_batch', 'tcp',    'sleep', 10 ],
	[ 'regress_app_b', 'regress_db1', 'regress_web',   'socket', 'sleep', 10 ],);

foreach my $w (@workload)
{
	my ($role, $db, $app, $via, $kind, $n) = @$w;
	open_session($role, $db, $app, $via, $kind) for 1 .. $n;
}
note scalar(@sessions) . " connections open";

#
# What this script expects, from @sessions
#

# State and lock wait of each kind of session.  A "checker" session is active
# while it runs the checking query, idle otherwise.
my %kind_state = (
	idle                => [ 'idle',                          0 ],
	idle_in_transaction => [ 'idle in transaction',           0 ],
	lock_holder         => [ 'idle in transaction',           0 ],
	aborted             => [ 'idle in transaction (aborted)', 0 ],
	wait_table          => [ 'active',                        1 ],
	wait_advisory       => [ 'active',                        1 ],
	sleep               => [ 'active',                        0 ],
	checker             => [ 'idle',                          0 ],);

# The connection_summary rows this script expects, as
#   group key => '{total,active,idle,idle_in_transaction,aborted,other,
#                  insufficient_privilege,waiting}'
# as seen by a superuser or, with viewer => role, by that unprivileged role,
# while the session querier (default: the checker) runs the query.
sub expected_summary
{
	my (%opt) = @_;
	my $viewer = $opt{viewer};    # undef: sees everything
	my %groups;
	foreach my $s (@sessions)
	{
		my $hidden = defined $viewer && $s->{role} ne $viewer;
		my $addr = ($s->{via} eq 'tcp' && !$hidden) ? '127.0.0.1' : '';
		my $key = join('|', $s->{db}, $s->{role}, $s->{app}, $addr);
		my $g = $groups{$key} ||= [ (0) x 8 ];
		my ($state, $waiting) = @{ $kind_state{ $s->{kind} } };
		$state = ($s == ($opt{querier} // $sessions[0])) ? 'active' : 'idle'
		  if $s->{kind} eq 'checker';
		$g->[0]++;
		if ($hidden)
		{
			$g->[6]++;
			next;
		}
		$g->[1]++ if $state eq 'active';
		$g->[2]++ if $state eq 'idle';
		$g->[3]++ if $state eq 'idle in transaction';
		$g->[4]++ if $state eq 'idle in transaction (aborted)';
		$g->[7]++ if $waiting;
	}
	return { map { $_ => '{' . join(',', @{ $groups{$_} }) . '}' } keys %groups };
}

sub count_sessions
{
	my ($pred) = @_;
	return scalar grep { $pred->($_) } @sessions;
}

#
# SQL
#

# Client backends as pg_stat_activity shows them to the caller.  A session
# the caller may not see has a NULL backend_type: count those that belong to
# a database (client backends; the only background process connected to a
# database here would be a parallel worker, and there is none).
my $client_filter = q{(a.backend_type = 'client backend'
      OR (a.backend_type IS NULL AND a.datid IS NOT NULL))};

# connection_summary next to the same aggregation over pg_stat_activity, in
# one statement.  $1 = clock_timestamp() read before the statement: every age
# the view reports must lie between (t0 - start) and (t after - start).
my $summary_sql = qq{
WITH cw AS (
    SELECT concat_ws('|', s.datname, s.usename, s.application_name,
                     coalesce(pg_catalog.host(s.client_addr), '')) AS key,
           ARRAY[s.total, s.active, s.idle, s.idle_in_transaction,
                 s.idle_in_transaction_aborted, s.other,
                 s.insufficient_privilege, s.waiting]::text AS counts,
           s.oldest_xact_age, s.longest_idle_in_transaction,
           row_number() OVER () AS pos
    FROM connwatch.connection_summary AS s),
ref AS (
    SELECT concat_ws('|', a.datname, a.usename, a.application_name,
                     coalesce(pg_catalog.host(a.client_addr), '')) AS key,
           ARRAY[count(*),
                 count(*) FILTER (WHERE a.state = 'active'),
                 count(*) FILTER (WHERE a.state = 'idle'),
                 count(*) FILTER (WHERE a.state = 'idle in transaction'),
                 count(*) FILTER (WHERE a.state = 'idle in transaction (aborted)'),
                 count(*) FILTER (WHERE a.query IS DISTINCT FROM '$INSUFFICIENT'
                     AND a.state IS DISTINCT FROM 'active'
                     AND a.state IS DISTINCT FROM 'idle'
                     AND a.state IS DISTINCT FROM 'idle in transaction'
                     AND a.state IS DISTINCT FROM 'idle in transaction (aborted)'),
                 count(*) FILTER (WHERE a.query = '$INSUFFICIENT'),
                 count(*) FILTER (WHERE a.wait_event_type = 'Lock')]::text AS counts,
           min(a.xact_start) AS oldest_xact_start,
           min(a.state_change) FILTER (WHERE a.state IN ('idle in transaction',
                                                        'idle in transaction (aborted)'))
               AS oldest_iit_change
    FROM pg_catalog.pg_stat_activity AS a
    WHERE $client_filter
    GROUP BY 1)
SELECT coalesce(cw.key, ref.key) AS key, cw.counts AS cw_counts, ref.counts AS ref_counts,
       -- an age is NULL exactly when the reference has no timestamp, and lies
       -- between the clock readings taken before and after the call
       CASE WHEN ref.oldest_xact_start IS NULL THEN cw.oldest_xact_age IS NULL
            ELSE cw.oldest_xact_age BETWEEN \$1::timestamptz - ref.oldest_xact_start
                                        AND clock_timestamp() - ref.oldest_xact_start
       END AS xact_age_ok,
       CASE WHEN ref.oldest_iit_change IS NULL THEN cw.longest_idle_in_transaction IS NULL
            ELSE cw.longest_idle_in_transaction BETWEEN \$1::timestamptz - ref.oldest_iit_change
                                                    AND clock_timestamp() - ref.oldest_iit_change
       END AS iit_age_ok,
       concat_ws(' ', 'oldest_xact_age', cw.oldest_xact_age, 'xact_start', ref.oldest_xact_start,
                 'longest_idle_in_transaction', cw.longest_idle_in_transaction,
                 'state_change', ref.oldest_iit_change) AS age_detail,
       cw.pos
FROM cw FULL JOIN ref ON cw.key = ref.key
ORDER BY cw.pos, 1
};

# connection_limits next to the rows computed from the catalogs and
# pg_stat_activity, in one statement.
my $limits_sql = qq{
WITH cw AS (
    SELECT l.scope || '|' || coalesce(l.name, '') AS key,
           concat_ws(' ', l.used, coalesce(l.max::text, 'NULL'),
                     coalesce(l.headroom::text, 'NULL'),
                     coalesce(l.pct_used::text, 'NULL'), l.status) AS val
    FROM connwatch.connection_limits AS l),
act AS MATERIALIZED (
    SELECT a.datid, a.usesysid, a.backend_type FROM pg_catalog.pg_stat_activity AS a),
settings AS (
    SELECT current_setting('max_connections')::int AS max_connections,
           current_setting('superuser_reserved_connections')::int AS reserved,
           (SELECT count(*) FROM act WHERE backend_type = 'client backend')::int AS clients),
lim AS (
    SELECT 'server' AS scope, NULL::name AS name, s.clients AS used,
           s.max_connections - s.reserved AS max
    FROM settings AS s
    UNION ALL
    SELECT 'reserved', NULL,
           greatest(0, s.clients - (s.max_connections - s.reserved)), s.reserved
    FROM settings AS s
    UNION ALL
    -- what CountDBConnections() counts: every process connected to the
    -- database but background workers
    SELECT 'database', d.datname,
           (SELECT count(*) FROM act
             WHERE act.datid = d.oid
               AND act.backend_type IN ('client backend', 'autovacuum worker', 'walsender'))::int,
           nullif(d.datconnlimit, -1)
    FROM pg_catalog.pg_database AS d
    WHERE d.datallowconn
    UNION ALL
    -- what CountUserBackends() counts; a superuser is never refused
    SELECT 'role', r.rolname, r.used,
           CASE WHEN r.rolsuper THEN NULL ELSE nullif(r.rolconnlimit, -1) END
    FROM (SELECT r.*,
                 (SELECT count(*) FROM act
                   WHERE act.usesysid = r.oid
                     AND act.backend_type IN ('client backend', 'walsender'))::int AS used
          FROM pg_catalog.pg_roles AS r WHERE r.rolcanlogin) AS r
    WHERE r.rolconnlimit <> -1 OR r.used > 0),
ref AS (
    SELECT scope || '|' || coalesce(name, '') AS key,
           concat_ws(' ', used, coalesce(max::text, 'NULL'),
                     CASE WHEN max IS NULL THEN 'NULL'
                          ELSE greatest(max - used, 0)::text END,
                     coalesce(pct::text, 'NULL'),
                     CASE WHEN pct >= $CRITICAL_PCT THEN 'critical'
                          WHEN pct >= $WARNING_PCT THEN 'warning'
                          ELSE 'ok' END) AS val
    FROM (SELECT lim.*,
                 CASE WHEN max IS NULL THEN NULL
                      WHEN max = 0 THEN 100.0
                      ELSE round(100.0 * used / max, 1) END AS pct
          FROM lim) AS l)
SELECT coalesce(cw.key, ref.key), cw.val, ref.val
FROM cw FULL JOIN ref ON cw.key = ref.key
ORDER BY 1
};

# connection_headroom next to the rows computed from the catalogs.
my $headroom_sql = q{
WITH cw AS (
    SELECT h.rolname::text AS key,
           concat_ws(' ', h.superuser, h.can_use_reserved,
                     coalesce(h.role_limit::text, 'NULL'), h.used, h.headroom,
                     h.binding_limit) AS val
    FROM connwatch.connection_headroom AS h),
act AS MATERIALIZED (
    SELECT a.usesysid, a.backend_type FROM pg_catalog.pg_stat_activity AS a),
settings AS (
    SELECT current_setting('max_connections')::int AS max_connections,
           current_setting('superuser_reserved_connections')::int AS reserved,
           (SELECT count(*) FROM act WHERE backend_type = 'client backend')::int AS clients),
roles AS (
    SELECT r.rolname, r.rolsuper,
           CASE WHEN r.rolsuper OR r.rolconnlimit = -1 THEN NULL
                ELSE r.rolconnlimit END AS role_limit,
           (SELECT count(*) FROM act
             WHERE act.usesysid = r.oid
               AND act.backend_type IN ('client backend', 'walsender'))::int AS used,
           r.rolconnlimit
    FROM pg_catalog.pg_roles AS r
    WHERE r.rolcanlogin),
ref AS (
    SELECT r.rolname::text AS key,
           concat_ws(' ', r.rolsuper, r.rolsuper, coalesce(r.role_limit::text, 'NULL'), r.used,
                     CASE WHEN r.rolsuper
                          THEN greatest(s.max_connections - s.clients, 0)
                          WHEN r.role_limit IS NULL
                          THEN greatest(s.max_connections - s.reserved - s.clients, 0)
                          ELSE least(greatest(s.max_connections - s.reserved - s.clients, 0),
                                     greatest(r.role_limit - r.used, 0)) END,
                     CASE WHEN r.rolsuper
                          THEN CASE WHEN s.clients >= s.max_connections - s.reserved
                                    THEN 'reserved' ELSE 'server' END
                          WHEN r.role_limit IS NOT NULL
                               AND greatest(r.role_limit - r.used, 0)
                                   <= greatest(s.max_connections - s.reserved - s.clients, 0)
                          THEN 'role'
                          ELSE 'server' END) AS val
    FROM roles AS r, settings AS s
    WHERE r.used > 0 OR r.rolconnlimit <> -1)
SELECT coalesce(cw.key, ref.key), cw.val, ref.val
FROM cw FULL JOIN ref ON cw.key = ref.key
ORDER BY 1
};

#
# Helpers
#

# Wait until pg_stat_activity shows exactly the expected groups, so that the
# workload has settled before the views are compared.
sub settle
{
	my ($dbh, %opt) = @_;
	my $expected = expected_summary(%opt);
	my $want = join("\n", map { "$_ $expected->{$_}" } sort keys %$expected);
	my $sql = qq{
SELECT coalesce(string_agg(key || ' ' || counts, E'\\n' ORDER BY key COLLATE "C"), '')
FROM (SELECT concat_ws('|', a.datname, a.usename, a.application_name,
                       coalesce(pg_catalog.host(a.client_addr), '')) AS key,
             ARRAY[count(*),
                   count(*) FILTER (WHERE a.state = 'active'),
                   count(*) FILTER (WHERE a.state = 'idle'),
                   count(*) FILTER (WHERE a.state = 'idle in transaction'),
                   count(*) FILTER (WHERE a.state = 'idle in transaction (aborted)'),
                   0,
                   count(*) FILTER (WHERE a.query = '$INSUFFICIENT'),
                   count(*) FILTER (WHERE a.wait_event_type = 'Lock')]::text AS counts
      FROM pg_catalog.pg_stat_activity AS a
      WHERE $client_filter
      GROUP BY 1) AS g};
	my $got   = '';
	my $until = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $until)
	{
		$got = $dbh->selectrow_array($sql);
		return 1 if $got eq $want;
		usleep(100_000);
	}
	# perl's sort and COLLATE "C" agree on these ASCII keys
	is($got, $want, "workload settled ($opt{label})");
	BAIL_OUT("workload did not settle ($opt{label})");
}

# Compare connection_summary with pg_stat_activity and with the workload.
sub check_summary
{
	my ($dbh, $label, %opt) = @_;
	my $t0 = $dbh->selectrow_array('SELECT clock_timestamp()');
	my $rows = $dbh->selectall_arrayref($summary_sql, undef, $t0);
	my $expected = expected_summary(%opt);

	my %cw = map { $_->[0] => $_->[1] } grep { defined $_->[1] } @$rows;
	is_deeply(
		[ sort keys %cw ],
		[ sort keys %$expected ],
		"$label: connection_summary has one row per group");
	foreach my $r (@$rows)
	{
		my ($key, $cw_counts, $ref_counts, $xact_ok, $iit_ok, $detail) = @$r;
		is($cw_counts, $ref_counts,
			"$label: summary $key matches pg_stat_activity");
		is($cw_counts, $expected->{$key},
			"$label: summary $key matches the workload");
		ok($xact_ok && $iit_ok, "$label: summary $key ages")
		  or diag $detail;
	}

	# Order: idle_in_transaction + aborted descending, then total descending.
	my @order = map { [ (split /[{},]/, $_->[1])[ 1, 4, 5 ] ] }
	  grep { defined $_->[1] } @$rows;
	my $sorted = 1;
	for my $i (1 .. $#order)
	{
		my ($t0, $i0, $a0) = @{ $order[ $i - 1 ] };
		my ($t1, $i1, $a1) = @{ $order[$i] };
		$sorted = 0
		  if ($i0 + $a0 < $i1 + $a1)
		  || ($i0 + $a0 == $i1 + $a1 && $t0 < $t1);
	}
	ok($sorted, "$label: connection_summary ordered by idle in transaction, then total");
}

sub check_rows
{
	my ($dbh, $sql, $what, $label) = @_;
	my $rows = $dbh->selectall_arrayref($sql);
	foreach my $r (@$rows)
	{
		my ($key, $cw, $ref) = @$r;
		is($cw, $ref, "$label: $what $key");
	}
	return { map { $_->[0] => $_->[1] } @$rows };
}

sub check_limits
{
	my ($dbh, $label) = @_;
	return check_rows($dbh, $limits_sql, 'connection_limits', $label);
}

sub check_headroom
{
	my ($dbh, $label) = @_;
	return check_rows($dbh, $headroom_sql, 'connection_headroom', $label);
}

#
# 1. The workload as it is
#
settle($cdbh, label => 'workload');
check_summary($cdbh, 'workload');
my $limits = check_limits($cdbh, 'workload');
is( $limits->{'server|'},
	sprintf('%d %d %d %s ok',
		scalar(@sessions), $MAX_CONNECTIONS - $RESERVED,
		$MAX_CONNECTIONS - $RESERVED - @sessions,
		sprintf('%.1f', 100 * @sessions / ($MAX_CONNECTIONS - $RESERVED))),
	'server row counts the client backends this test opened');
is($limits->{'reserved|'}, "0 $RESERVED $RESERVED 0.0 ok", 'reserved row is unused');
is($limits->{'role|regress_limited_idle'}, '0 5 5 0.0 ok',
	'role with a CONNECTION LIMIT and no session');
ok(!exists $limits->{'role|regress_nologin'}, 'NOLOGIN role has no row');
ok(!exists $limits->{'database|template0'}, 'template0 (no connections allowed) has no row');
check_headroom($cdbh, 'workload');

#
# 2. Role and database limits reached
#
my $n_b   = count_sessions(sub { $_[0]{role} eq 'regress_app_b' });
my $n_db1 = count_sessions(sub { $_[0]{db} eq 'regress_db1' });
my $n_db2 = count_sessions(sub { $_[0]{db} eq 'regress_db2' });
# db1 at about 85%: warning, not critical
my $db1_limit = int($n_db1 * 100 / 85);
$cdbh->do("ALTER ROLE regress_app_b CONNECTION LIMIT $n_b");
$cdbh->do("ALTER DATABASE regress_db2 CONNECTION LIMIT $n_db2");
$cdbh->do("ALTER DATABASE regress_db1 CONNECTION LIMIT $db1_limit");

$limits = check_limits($cdbh, 'limits reached');
is($limits->{'role|regress_app_b'}, "$n_b $n_b 0 100.0 critical",
	'role at its CONNECTION LIMIT: headroom 0, critical');
is($limits->{'database|regress_db2'}, "$n_db2 $n_db2 0 100.0 critical",
	'database at its CONNECTION LIMIT: headroom 0, critical');
is( $limits->{'database|regress_db1'},
	sprintf('%d %d %d %.1f warning',
		$n_db1, $db1_limit, $db1_limit - $n_db1, 100 * $n_db1 / $db1_limit),
	'database at 85% of its CONNECTION LIMIT: warning');

my $refused = try_connect('regress_app_b', 'regress_db1', 'regress_refused', 'socket');
ok(!defined $refused, 'next connection of a role at its limit is refused');
like($DBI::errstr // '', qr/too many connections for role "regress_app_b"/,
	'refused for the role limit');
$refused = try_connect('regress_app_a', 'regress_db2', 'regress_refused', 'tcp');
ok(!defined $refused, 'next connection to a database at its limit is refused');
like($DBI::errstr // '', qr/too many connections for database "regress_db2"/,
	'refused for the database limit');

# Superusers are never refused by these limits; the rows go over 100%.
open_session('postgres',      'regress_db2', 'regress_admin', 'socket', 'idle');
open_session('regress_super', 'regress_db1', 'regress_admin', 'tcp',    'idle');
open_session('regress_super', 'regress_db1', 'regress_admin', 'tcp',    'idle');
settle($cdbh, label => 'superusers over the limits');
check_summary($cdbh, 'superusers over the limits');
$limits = check_limits($cdbh, 'superusers over the limits');
is( $limits->{'database|regress_db2'},
	sprintf('%d %d 0 %.1f critical', $n_db2 + 1, $n_db2, 100 * ($n_db2 + 1) / $n_db2),
	'database over its limit through a superuser: headroom stays 0');
is($limits->{'role|regress_super'}, '2 NULL NULL NULL ok',
	'superuser role: CONNECTION LIMIT not enforced, max NULL');
check_headroom($cdbh, 'superusers over the limits');

#
# 3. A caller without privileges sees other roles' sessions only as counts
#
my $observer = open_session('regress_observer', 'postgres', 'regress_observer', 'socket', 'checker');
settle($cdbh, label => 'observer connected');
check_summary(
	$observer->{dbh}, 'observer',
	viewer  => 'regress_observer',
	querier => $observer);
my $leaks = $observer->{dbh}->selectrow_array(q{
SELECT count(*) FROM connwatch.connection_summary
WHERE usename <> 'regress_observer'
  AND (total <> insufficient_privilege OR active + idle + idle_in_transaction
       + idle_in_transaction_aborted + other + waiting <> 0
       OR client_addr IS NOT NULL OR oldest_xact_age IS NOT NULL
       OR longest_idle_in_transaction IS NOT NULL)});
is($leaks, 0, 'observer: no state, address or age of other roles\' sessions');
my $hidden = $observer->{dbh}->selectrow_array(q{
SELECT sum(insufficient_privilege) FROM connwatch.connection_summary});
is($hidden, scalar(@sessions) - 1, 'observer: every other session is counted as hidden');
close_session($observer);
settle($cdbh, label => 'observer gone');
my $superuser_hidden = $cdbh->selectrow_array(q{
SELECT sum(insufficient_privilege) FROM connwatch.connection_summary});
is($superuser_hidden, 0, 'superuser: nothing hidden');

#
# 4. The general pool full: only superusers get in, into the reserved slots
#
my $general = $MAX_CONNECTIONS - $RESERVED;
my $fill = $general - @sessions;
open_session('postgres', 'postgres', 'regress_filler', 'socket', 'idle') for 1 .. $fill;
settle($cdbh, label => 'general pool full');
$refused = try_connect('regress_app_a', 'postgres', 'regress_refused', 'socket');
ok(!defined $refused, 'non-superuser refused when the general pool is full');
like($DBI::errstr // '', qr/remaining connection slots are reserved/,
	'refused for the reserved slots');
settle($cdbh, label => 'general pool full, refused backend gone');
check_summary($cdbh, 'general pool full');
$limits = check_limits($cdbh, 'general pool full');
is($limits->{'server|'}, "$general $general 0 100.0 critical", 'server row full');
is($limits->{'reserved|'}, "0 $RESERVED $RESERVED 0.0 ok", 'reserved row still unused');
my $headroom = check_headroom($cdbh, 'general pool full');
my $n_a = count_sessions(sub { $_[0]{role} eq 'regress_app_a' });
is($headroom->{'regress_app_a'}, "f f NULL $n_a 0 server",
	'non-superuser: no headroom, bound by the server');

open_session('postgres', 'postgres', 'regress_filler', 'tcp', 'idle');
settle($cdbh, label => 'one reserved slot taken');
check_summary($cdbh, 'one reserved slot taken');
$limits = check_limits($cdbh, 'one reserved slot taken');
is( $limits->{'server|'},
	sprintf('%d %d 0 %.1f critical', $general + 1, $general, 100 * ($general + 1) / $general),
	'server row over its max: headroom 0');
is( $limits->{'reserved|'},
	sprintf('1 %d %d %.1f ok', $RESERVED, $RESERVED - 1, 100 / $RESERVED),
	'reserved row counts the superuser in a reserved slot');
$headroom = check_headroom($cdbh, 'one reserved slot taken');
like($headroom->{'postgres'}, qr/^t t NULL \d+ @{[$RESERVED - 1]} reserved$/,
	'superuser: the reserved slots left, bound by the reserved pool');
like($headroom->{'regress_app_b'}, qr/^f f $n_b $n_b 0 role$/,
	'role at its limit and server full: tie goes to role');

#
# Clean up: every session closed, the server stopped cleanly
#
my @to_close = reverse @sessions;
close_session($_) for @to_close;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'client backend'})
  or diag 'sessions did not go away';
$node->stop;
unlike(
	slurp_file($node->logfile),
	qr/terminated by signal|server process .* exited with exit code [^0]|PANIC:/,
	'no backend crashed');

done_testing();
