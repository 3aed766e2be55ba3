# 304_remember_worker.pl - the pg_connwatch background worker: it samples
# connwatch.history, it enforces connwatch.policies when every client slot
# is taken (on a primary and on a hot standby), and it survives being
# terminated and an invalid policy without taking the server down.

use strict;
use warnings;

use DBI;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $MAX_CONNECTIONS  = 10;
my $RESERVED         = 3;
my $ENFORCE_INTERVAL = 1;     # seconds
my $OLDER_THAN       = 1;     # seconds, the policy's
my $SLACK            = 3;     # seconds, for a loaded machine

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_connwatch'
max_connections = $MAX_CONNECTIONS
superuser_reserved_connections = $RESERVED
connwatch.sample_interval = '200ms'
connwatch.enforce_interval = '${ENFORCE_INTERVAL}s'
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_leak LOGIN;
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('regress_kill_leaks', 'idle in transaction', '${OLDER_THAN}s', 'leak%');
});

sub connect_to
{
	my ($n, $user, $app) = @_;
	return DBI->connect(
		'dbi:Pg:dbname=postgres;host=' . $n->host . ';port=' . $n->port
		  . ";application_name=$app",
		$user, undef, { RaiseError => 0, PrintError => 0, AutoCommit => 0 });
}

# A session idle in a transaction, as a leaked SQLAlchemy Session leaves it.
sub leak
{
	my ($n, $app) = @_;
	my $dbh = connect_to($n, 'regress_leak', $app)
	  or die "could not connect as $app: $DBI::errstr";
	$dbh->do('SELECT 1') or die "SELECT failed: " . $dbh->errstr;
	return $dbh;
}

sub worker_pid
{
	my ($n) = @_;
	return $n->safe_psql('postgres',
		q{SELECT coalesce(max(pid), 0) FROM pg_stat_activity
		  WHERE backend_type = 'pg_connwatch worker'});
}

#
# History
#
my @hist = map { leak($node, 'hist_app') } 1 .. 2;
ok( $node->poll_query_until('postgres', q{
SELECT count(*) > 0 FROM connwatch.history
WHERE idle_in_transaction >= 2
  AND application_idle_in_transaction[array_position(applications, 'hist_app')] = 2}),
	'history: a sample shows the two sessions of hist_app idle in a transaction');
is( $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM connwatch.history(now() - interval '1 hour', now()))
       = (SELECT count(*) FROM connwatch.history WHERE sampled_at <= now())}),
	't', 'history(since, until) returns the samples of its range');
$_->rollback, $_->disconnect for @hist;

#
# The enforcer with every client slot taken
#
my $ordinary = $MAX_CONNECTIONS - $RESERVED;
my @leaks = map { leak($node, "leak_$_") } 1 .. $ordinary;
my $leaked_at = time;
my $extra = connect_to($node, 'regress_leak', 'one_more');
ok(!$extra && $DBI::errstr =~ /reserved/,
	"every one of the $ordinary slots a role may take is leaked: no client can connect");
$extra->disconnect if $extra;

my $gone_at;
for (;;)
{
	my $left = $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'leak\_%'});
	if ($left eq '0') { $gone_at = time; last; }
	last if time - $leaked_at > $OLDER_THAN + 2 * $ENFORCE_INTERVAL + $SLACK;
	select(undef, undef, undef, 0.1);
}
ok(defined $gone_at, 'the worker terminated every leaked session');
cmp_ok(($gone_at // 1e9) - $leaked_at, '<=', $OLDER_THAN + 2 * $ENFORCE_INTERVAL + $SLACK,
	"... within older_than + two intervals (+${SLACK}s slack)");
is( $node->safe_psql('postgres', q{
SELECT count(*) || '|' || string_agg(DISTINCT policy || '|' || invoked_by || '|' || action, ',')
FROM connwatch.terminations WHERE application_name LIKE 'leak\_%'}),
	"$ordinary|regress_kill_leaks|"
	  . $node->safe_psql('postgres', 'SELECT current_user') . '|terminated',
	'the audit has each termination, with the policy, as enforce() writes it');
is( $node->safe_psql('postgres', q{
SELECT sum(count) FROM connwatch.session_endings
WHERE application_name LIKE 'leak\_%' AND reason = 'terminated by connwatch'
  AND policy = 'regress_kill_leaks'}),
	$ordinary, 'session_endings: terminated by connwatch, with the policy');
eval { $_->disconnect } for @leaks;

#
# The worker survives pg_terminate_backend() and an ERROR
#
my $log_offset = -s $node->logfile;
my $pid = worker_pid($node);
ok($pid > 0, 'the worker runs');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE backend_type = 'pg_connwatch worker' AND pid <> $pid}),
	'terminated, it is started again');

# an invalid policy is a WARNING and skipped: the worker keeps running
$pid = worker_pid($node);
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
ALTER TABLE connwatch.policies DROP CONSTRAINT policies_state_check;
UPDATE connwatch.policies SET state = 'bogus' WHERE name = 'regress_kill_leaks';
});
ok( $node->wait_for_log(qr/WARNING:  policy "regress_kill_leaks" has an invalid state/,
		$log_offset),
	'an invalid policy is a WARNING, with the policy\'s name');
is(worker_pid($node), $pid, '... and the worker keeps running');
$node->safe_psql('postgres', q{
UPDATE connwatch.policies SET state = 'idle in transaction' WHERE name = 'regress_kill_leaks';
});
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/background worker "pg_connwatch (worker|enforcer)" \(PID \d+\) exited with exit code 1/,
	'no worker exited with an error');
unlike($log, qr/terminating any other active server processes/,
	'no other process was touched');

#
# The enforcer on a hot standby
#
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
# replay waits for nobody: a conflicting session is cut at once
$standby->append_conf('postgresql.conf', "max_standby_streaming_delay = 0\n");
$standby->start;
$node->wait_for_catchup($standby);
ok($standby->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_connwatch worker'}),
	'the worker runs on the standby');
my @standby_leaks = map { leak($standby, "leak_sb$_") } 1 .. 2;
$leaked_at = time;
ok( $standby->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'leak\_sb%'}),
	'on the standby, the worker terminates the leaked sessions');
cmp_ok(time - $leaked_at, '<=', $OLDER_THAN + 2 * $ENFORCE_INTERVAL + $SLACK,
	'... within older_than + two intervals');
like(slurp_file($standby->logfile),
	qr/pg_connwatch terminated backend \d+: policy=regress_kill_leaks .*application_name="leak_sb1"/,
	'... with the LOG line as its trail (the standby cannot write the audit table)');
eval { $_->disconnect } for @standby_leaks;

# A recovery conflict: a standby session idle in a transaction that read a
# table the primary then drops.
$node->safe_psql('postgres',
	'CREATE TABLE regress_conflict (i int); GRANT SELECT ON regress_conflict TO regress_leak');
$node->wait_for_catchup($standby);
my $reader = connect_to($standby, 'regress_leak', 'conflict_reader')
  or die "could not connect to the standby: $DBI::errstr";
$reader->do('SELECT count(*) FROM regress_conflict') or die $reader->errstr;
$node->safe_psql('postgres', 'DROP TABLE regress_conflict');
$node->wait_for_catchup($standby);
ok( $standby->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM connwatch.session_endings
WHERE application_name = 'conflict_reader' AND reason = 'recovery conflict'}),
	'a session cut by a recovery conflict ended by "recovery conflict"');
eval { $reader->disconnect };

$standby->stop;
$node->stop;
done_testing();
