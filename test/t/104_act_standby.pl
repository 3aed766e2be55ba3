# 104_act_standby.pl - pg_connwatch on a streaming hot standby.
#
# On the standby: the views work (sessions lists the startup process and
# the walreceiver, connection_limits has its server row, xmin_horizon shows
# a standby session's snapshot); a policy inserted on the primary
# replicates; connwatch.enforce() run on the standby terminates an
# idle-in-transaction session there, audited in the standby's server log
# only (connwatch.terminations cannot be written during recovery).
# With hot_standby_feedback, the primary's xmin_horizon shows the standby
# session's snapshot as held back through the walsender.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "autovacuum = off\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION pg_connwatch;');
$primary->backup('backup');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->append_conf(
	'postgresql.conf', q{
hot_standby_feedback = on
wal_receiver_status_interval = 1s
});
$standby->start;
$primary->wait_for_catchup($standby);

#
# The views on the standby
#
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
is( $standby->safe_psql(
		'postgres',
		q{SELECT string_agg(backend_type, ',' ORDER BY backend_type COLLATE "C")
		  FROM connwatch.sessions WHERE backend_type IN ('startup', 'walreceiver')}),
	'startup,walreceiver',
	'connwatch.sessions on the standby lists the startup process and the walreceiver');
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) || '|' || bool_and(max = current_setting('max_connections')::int
		                      - current_setting('superuser_reserved_connections')::int)
		         || '|' || bool_and(used >= 1)
		  FROM connwatch.connection_limits WHERE scope = 'server'}),
	'1|true|true',
	'connwatch.connection_limits on the standby has its server row');

# A standby session holding a snapshot (the leak below): it shows in the
# standby's xmin_horizon, and with hot_standby_feedback on the primary's.
my $leak = do
{
	local %ENV = %ENV;
	$ENV{PGAPPNAME} = 'standby_leaky';
	$standby->background_psql('postgres', on_error_stop => 0);
};
$leak->set_query_timer_restart;
my $leak_pid = $leak->query_safe('SELECT pg_backend_pid()');
$leak->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;');
my $leak_xmin = $standby->safe_psql('postgres',
	"SELECT backend_xmin FROM pg_catalog.pg_stat_activity WHERE pid = $leak_pid");
like($leak_xmin, qr/^\d+$/, 'the standby session holds a snapshot');
is( $standby->safe_psql(
		'postgres',
		"SELECT holder_type || '|' || xmin FROM connwatch.xmin_horizon
		 WHERE pid = $leak_pid"),
	"backend|$leak_xmin",
	"the standby's xmin_horizon shows the session's snapshot");

# Move the primary's xids on, so that only the leak holds the old xmin.
$primary->safe_psql('postgres', 'CREATE TABLE regress_t (i int);');
$primary->safe_psql('postgres', "INSERT INTO regress_t VALUES ($_);") for 1 .. 3;
$primary->wait_for_catchup($standby);
ok( $primary->poll_query_until(
		'postgres',
		"SELECT EXISTS (SELECT 1 FROM connwatch.xmin_horizon
		  WHERE holder_type = 'walsender_feedback' AND xmin = '$leak_xmin'
		    AND pid = (SELECT pid FROM pg_catalog.pg_stat_replication
		               WHERE application_name = 'standby'))"),
	"the primary's xmin_horizon shows the standby's feedback holding the leak's xmin");

#
# A policy inserted on the primary replicates.
#
$primary->safe_psql(
	'postgres', q{
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('standby_leaks', 'idle in transaction', '0', 'standby_leaky');
});
$primary->wait_for_catchup($standby);
is( $standby->safe_psql(
		'postgres',
		q{SELECT name || '|' || state || '|' || application_name FROM connwatch.policies}),
	'standby_leaks|idle in transaction|standby_leaky',
	'the policy has replicated to the standby');

#
# enforce() on the standby terminates the leak, audited in the log only.
#
my $log_offset = -s $standby->logfile;
my ($ret, $out, $err) = $standby->psql('postgres',
	q{SELECT pid || '|' || action || '|' || policy FROM connwatch.enforce()});
is($out, "$leak_pid|terminated|standby_leaks",
	'enforce() on the standby terminates the idle transaction');
is($err, '', '... without error or warning');
ok( $standby->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_catalog.pg_stat_activity WHERE pid = $leak_pid"),
	'the session is gone');
ok( eval {
		$standby->wait_for_log(
			qr/pg_connwatch terminated backend $leak_pid: policy=standby_leaks reason="idle in transaction for [^"]+" .*application_name="standby_leaky"/,
			$log_offset);
		1;
	},
	"the standby's server log has the audit line for backend $leak_pid");
is($standby->safe_psql('postgres', 'SELECT count(*) FROM connwatch.terminations'),
	'0', 'connwatch.terminations on the standby has no row');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM connwatch.terminations'),
	'0', '... nor on the primary');

# With the leak gone, the primary's horizon is released.
ok( $primary->poll_query_until(
		'postgres',
		"SELECT EXISTS (SELECT 1 FROM connwatch.xmin_horizon
		  WHERE holder_type = 'walsender_feedback'
		    AND xmin::text::bigint > $leak_xmin)"),
	"the primary's xmin_horizon shows the feedback moved past the leak's xmin");

eval { $leak->quit };
$standby->stop;
$primary->stop;
done_testing();
