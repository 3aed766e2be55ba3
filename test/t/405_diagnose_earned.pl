# 405_diagnose_earned.pl - a finding must be earned: connwatch.diagnose()
# raises no warning or critical finding on a busy but healthy pool, over
# repeated calls, and CW102's severity follows how many of a pool's
# connections are stuck (every one: critical; some: warning).
#
# The busy pool is pgbench: as many clients as connections, each running
# short transactions (a read, 5 ms of the application's own work, an update
# of one of a hundred rows, commit) back to back for longer than the window.  Flat at its size for the whole
# window, it has at most instants no idle connection and some between two
# statements or waiting for a row lock: what CW102 used to read as an
# exhausted pool.  The test checks that those instants did occur, so that it
# can fail.

use strict;
use warnings;

use DBI;
use DBD::Pg qw(:async);
use FindBin;
use lib "$FindBin::Bin/lib";
use ConnwatchTest;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $WINDOW = 2;    # connwatch.diagnose_window, in seconds
my $CALLS  = 10;   # diagnose() calls while the busy pool runs

my $node = PostgreSQL::Test::Cluster->new('earned');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_connwatch'
max_connections = 30
autovacuum = off
connwatch.sample_interval = '100ms'
connwatch.diagnose_window = '${WINDOW}s'
connwatch.diagnose_idle_in_transaction = '1s'
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 100) AS g;
CREATE ROLE regress_app LOGIN;
GRANT ALL ON accounts TO regress_app;
CREATE ROLE regress_watcher LOGIN IN ROLE pg_monitor;
});

my $socket = $node->host;
my $port   = $node->port;

sub connect_as
{
	my ($user, $app) = @_;
	return DBI->connect(
		"dbi:Pg:dbname=postgres;host=$socket;port=$port;application_name=$app",
		$user, undef,
		{ RaiseError => 0, PrintError => 0, PrintWarn => 0, AutoCommit => 1 });
}

my $watcher = connect_as('regress_watcher', 'watcher') or die $DBI::errstr;

# diagnose() as a pg_monitor role: every finding as a hash
sub diagnose
{
	return @{
		$watcher->selectall_arrayref(
			q{SELECT severity, code, subject, finding, evidence::text AS evidence
			  FROM connwatch.diagnose()}, { Slice => {} })
	};
}

sub codes { return join ' ', map { "$_->{severity}:$_->{code}:$_->{subject}" } @_ }

#
# A busy, healthy pool: 4 pgbench clients, short transactions, for the
# window and more
#
my $script = PostgreSQL::Test::Utils::tempdir() . '/busy.sql';
PostgreSQL::Test::Utils::append_to_file(
	$script, q{\set id random(1, 100)
BEGIN;
SELECT balance FROM accounts WHERE id = :id;
\sleep 5 ms
UPDATE accounts SET balance = balance + 1 WHERE id = :id;
COMMIT;
});
my $seconds = $WINDOW + 4 + int($CALLS / 4);
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds,
		'-f', $script, '-h', $socket, '-p', $port, '-U', 'regress_app', 'postgres'
	],
	'>', \$out, '2>', \$err,
	# pgbench's clients are named by the libpq environment
	init => sub { $ENV{PGAPPNAME} = 'busy-pool' });

# flat at 4 for the whole window (and a second more)
$node->poll_query_until('postgres',
	q{SELECT count(*) = 4 FROM pg_stat_activity WHERE application_name = 'busy-pool'})
  or die 'the busy pool did not connect';
sleep $WINDOW + 1;

my ($alarms, $looked_exhausted) = (0, 0);
for my $call (1 .. $CALLS)
{
	# what CW102 once read as an exhausted pool: no idle connection, some
	# idle in a transaction or waiting
	my ($exhausted_look) = $watcher->selectrow_array(
		q{SELECT count(*) > 0 FROM connwatch.connection_summary
		  WHERE application_name = 'busy-pool'
		  GROUP BY application_name
		  HAVING sum(idle) = 0
		     AND sum(idle_in_transaction + waiting) > 0});
	$looked_exhausted++ if $exhausted_look;
	my @bad = grep {
		$_->{severity} ne 'info'
		  && ($_->{subject} =~ /busy-pool/ || $_->{evidence} =~ /busy-pool/)
	} diagnose();
	if (@bad)
	{
		$alarms++;
		diag "call $call: " . codes(@bad);
	}
	usleep(200_000);
}
$pgbench->finish;
like($out, qr/number of transactions actually processed: [1-9]/,
	'the busy pool ran transactions throughout')
  or diag $err;
cmp_ok($looked_exhausted, '>', 0,
	"the busy pool looked exhausted at an instant in $looked_exhausted of $CALLS calls (else this test proves nothing)");
is($alarms, 0, "no warning or critical finding names the busy, healthy pool in $CALLS calls");

#
# A pool of 3 with one connection stuck idle in a transaction and two busy:
# CW102 warning.  Then all three stuck: critical.
#
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'busy-pool'})
  or die 'the busy pool did not go away';
$node->safe_psql('postgres', 'SELECT connwatch.reset_ledgers(); SELECT connwatch.reset_peaks();');
my @pool = map { connect_as('regress_app', 'half-stuck') or die $DBI::errstr } 1 .. 3;
$pool[0]->begin_work;
$pool[0]->selectrow_array('SELECT balance FROM accounts WHERE id = 1');
# the other two busy for longer than the window: running, not idle
$_->do('SELECT pg_sleep(60)', { pg_async => PG_ASYNC }) for @pool[1, 2];
sleep $WINDOW + 1;
my @f = diagnose();
my ($f) = grep { $_->{code} eq 'CW102' && $_->{subject} eq 'application "half-stuck"' } @f;
ok($f, 'one of three connections stuck: CW102') or diag codes(@f);
is($f && $f->{severity}, 'warning', 'one of three connections stuck: a warning, not critical');
like($f && $f->{evidence}, qr/"stuck_idle_in_transaction": 1\b/, 'the stuck connection in the evidence');
like($f && $f->{finding}, qr/works with 2 of its 3 connections/, 'the sentence says what still works');

# now the two busy ones leak too
for my $dbh (@pool[1, 2])
{
	$dbh->pg_cancel;
	$dbh->begin_work;
	$dbh->selectrow_array('SELECT balance FROM accounts WHERE id = 2');
}
sleep 2;    # connwatch.diagnose_idle_in_transaction, and a second more
@f = diagnose();
($f) = grep { $_->{code} eq 'CW102' && $_->{subject} eq 'application "half-stuck"' } @f;
is($f && $f->{severity}, 'critical', 'all three connections stuck: critical') or diag codes(@f);
like($f && $f->{finding}, qr/every connection of the application's pool is stuck/,
	'the sentence says no connection is left');
$_->disconnect for @pool;
$watcher->disconnect;

$node->stop;
done_testing();
