# 302_remember_endings.pl - with pg_connwatch preloaded, sessions end in
# every way this server can end them, for real, and
# connwatch.session_endings counts each once under its database, role,
# application name and reason; connwatch.peaks follows a burst of sessions
# exactly, and goes back down as they end.
#
# Reasons that exist only on newer majors are provoked where the server
# has them: a vanished client is told from a closing one from 14 on (13
# counts both as "client closed"), idle_session_timeout and
# client_connection_check_interval exist from 14, transaction_timeout from
# 17.  A fast shutdown is in 303_remember_restart.pl.

use strict;
use warnings;

use DBI;
use FindBin;
use lib "$FindBin::Bin/lib";
use ConnwatchTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('endings');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
max_connections = 40
autovacuum = off
});
$node->start;

my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);
note "PostgreSQL $major";

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_burst LOGIN;
CREATE ROLE regress_iit LOGIN;
ALTER ROLE regress_iit SET idle_in_transaction_session_timeout = '100ms';
});
$node->safe_psql('postgres', q{
CREATE ROLE regress_idle LOGIN;
ALTER ROLE regress_idle SET idle_session_timeout = '100ms';
CREATE ROLE regress_check LOGIN;
ALTER ROLE regress_check SET client_connection_check_interval = '100ms';
}) if $major >= 14;
$node->safe_psql('postgres', q{
CREATE ROLE regress_xact LOGIN;
ALTER ROLE regress_xact SET transaction_timeout = '200ms';
}) if $major >= 17;

my $socket = $node->host;
my $port   = $node->port;

sub connect_as
{
	my ($user, $app, %attr) = @_;
	my $dbh = DBI->connect(
		"dbi:Pg:dbname=postgres;host=$socket;port=$port;application_name=$app",
		$user, undef,
		{ RaiseError => 0, PrintError => 0, AutoCommit => 1, %attr })
	  or die "could not connect as $user: $DBI::errstr";
	return $dbh;
}

sub sessions_of
{
	my ($app) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = '$app'");
}

# A child process holds a connection (and, with $sql, runs it); returns its
# pid once the session is there.
sub client_process
{
	my ($user, $app, $sql) = @_;
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $dbh = connect_as($user, $app);
		$dbh->do($sql) if defined $sql;
		sleep 600;
		exit 0;
	}
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$app'"
		  . (defined $sql ? " AND state = 'active'" : ''))
	  or die "the session of $app did not appear";
	return $pid;
}

my @expect;

# client closed: a clean disconnect (Terminate message)
connect_as('regress_app', 'end_closed')->disconnect;
wait_app_gone($node, 'end_closed');
push @expect, 'end_closed|regress_app|client closed|-|1';

# client vanished: the client process is killed
my $child = client_process('regress_app', 'end_vanished');
kill 'KILL', $child;
waitpid $child, 0;
wait_app_gone($node, 'end_vanished');
push @expect, 'end_vanished|regress_app|'
  . ($major >= 14 ? 'client vanished' : 'client closed') . '|-|1';

# idle_in_transaction_session_timeout
my $iit = connect_as('regress_iit', 'end_iit', AutoCommit => 0);
$iit->do('SELECT 1');
wait_app_gone($node, 'end_iit');
push @expect, 'end_iit|regress_iit|idle-in-transaction timeout|-|1';

if ($major >= 14)
{
	my $idle = connect_as('regress_idle', 'end_idle');
	wait_app_gone($node, 'end_idle');
	push @expect, 'end_idle|regress_idle|idle-session timeout|-|1';

	# the server notices the vanished client while it runs a statement
	$child = client_process('regress_check', 'end_check', 'SELECT pg_sleep(60)');
	kill 'KILL', $child;
	waitpid $child, 0;
	wait_app_gone($node, 'end_check');
	push @expect, 'end_check|regress_check|connection check failed|-|1';
}

if ($major >= 17)
{
	my $xact = connect_as('regress_xact', 'end_xact', AutoCommit => 0);
	$xact->do('SELECT 1');
	wait_app_gone($node, 'end_xact');
	push @expect, 'end_xact|regress_xact|transaction timeout|-|1';
}

# pg_terminate_backend()
my $victim = connect_as('regress_app', 'end_terminated');
$node->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'end_terminated'});
wait_app_gone($node, 'end_terminated');
push @expect, 'end_terminated|regress_app|terminated by another session|-|1';

# connwatch.terminate_backend(): pg_connwatch's, no policy
my $direct = connect_as('regress_app', 'end_cw_direct');
is( $node->safe_psql('postgres',
		q{SELECT connwatch.terminate_backend(pid, backend_start, 'regress')
		  FROM pg_stat_activity WHERE application_name = 'end_cw_direct'}),
	't', 'connwatch.terminate_backend() signalled');
wait_app_gone($node, 'end_cw_direct');
push @expect, 'end_cw_direct|regress_app|terminated by connwatch|-|1';

# enforce(): pg_connwatch's, with the policy
my $by_policy = connect_as('regress_app', 'end_cw_policy');
$node->safe_psql('postgres', q{
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('regress_end_policy', 'idle', '0', 'end_cw_policy')});
is( $node->safe_psql('postgres',
		q{SELECT action FROM connwatch.enforce() WHERE application_name = 'end_cw_policy'}),
	'terminated', 'enforce() terminated the session');
wait_app_gone($node, 'end_cw_policy');
push @expect, 'end_cw_policy|regress_app|terminated by connwatch|regress_end_policy|1';

# A session_preload_libraries that cannot be loaded: from 15 on the server
# loads it inside the login transaction, so the login fails and it is a
# refusal ("other"); 13 loads it once the session is established, so the
# session ends by a "fatal error".
$node->safe_psql('postgres', q{
CREATE ROLE regress_broken LOGIN;
ALTER ROLE regress_broken SET session_preload_libraries = 'regress_no_such_library';
});
ok(!DBI->connect("dbi:Pg:dbname=postgres;host=$socket;port=$port;application_name=end_fatal",
		'regress_broken', undef, { RaiseError => 0, PrintError => 0 }),
	'a login that cannot load its session_preload_libraries fails');
wait_app_gone($node, 'end_fatal');
is( $node->safe_psql('postgres', q{
SELECT string_agg(cause || '|' || count, ',') FROM connwatch.refused_connections
WHERE usename = 'regress_broken'}),
	$major >= 15 ? 'other|1' : '',
	$major >= 15 ? '... and is counted as a refusal, cause "other"' : '... not as a refusal');
push @expect, 'end_fatal|regress_broken|fatal error|-|1' if $major < 15;

# protocol violation: a message type the server does not know, after login
{
	my $reply = protocol_violation($node, 'postgres', 'end_protocol');
	is($reply, 'E', 'the server answers an unknown message type with an error');
	wait_app_gone($node, 'end_protocol');
	push @expect, 'end_protocol|postgres|protocol violation|-|1';
}

is( $node->safe_psql(
		'postgres', q{
SELECT r FROM (
    SELECT application_name || '|' || usename || '|' || reason || '|'
           || coalesce(policy, '-') || '|' || count AS r
    FROM connwatch.session_endings
    WHERE application_name LIKE 'end\_%') AS rows
ORDER BY r COLLATE "C"}),
	join("\n", sort @expect),
	'every session ended under its application, role and reason, once');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE (SELECT sum(b) FROM unnest(lifetime_buckets) AS b) <> count
                           OR total_lifetime <= '0' OR datname <> 'postgres'
                           OR first_at IS NULL OR last_at < first_at OR overflow)
FROM connwatch.session_endings}),
	'0',
	'lifetimes: the histogram adds up to the count, the total is positive');

#
# Peaks: a burst of sessions, between any two looks, is counted exactly.
#
my $BURST = 12;
my $burst_peaks = q{
SELECT string_agg(scope || '|' || current || '|' || peak, ',' ORDER BY scope)
FROM connwatch.peaks
WHERE (scope, name) IN (('role', 'regress_burst'), ('application', 'peak_burst'))};
my @burst = map { connect_as('regress_burst', 'peak_burst') } 1 .. $BURST;
is( $node->safe_psql('postgres', $burst_peaks),
	"application|$BURST|$BURST,role|$BURST|$BURST",
	"a burst of $BURST sessions: current and peak are exactly $BURST");
is( $node->safe_psql(
		'postgres', q{
SELECT current = (SELECT count(*) FROM pg_stat_activity
                  WHERE backend_type = 'client backend') AND peak >= current
FROM connwatch.peaks WHERE scope = 'server'}),
	't', 'server: current is every client backend, peak at least that');

$_->disconnect for @burst;
wait_app_gone($node, 'peak_burst');
is( $node->safe_psql('postgres', $burst_peaks),
	"application|0|$BURST,role|0|$BURST",
	'after they end: current 0, the peak stays');

$node->safe_psql('postgres', 'SELECT connwatch.reset_peaks()');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM connwatch.peaks
WHERE (scope, name) IN (('role', 'regress_burst'), ('application', 'peak_burst'))}),
	'0', 'reset_peaks() drops what nobody holds any more');

# (the session that resets ends too, and is the first ending after it)
$node->safe_psql('postgres', 'SELECT connwatch.reset_ledgers()');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(reason || '|' || count, ',') FROM connwatch.session_endings}),
	'client closed|1', 'reset_ledgers() empties the endings');

$node->stop;
done_testing();
