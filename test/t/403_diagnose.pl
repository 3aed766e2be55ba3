# 403_diagnose.pl - connwatch.diagnose() against every pattern it names,
# provoked for real by libpq clients (DBD::Pg and psql), on every major:
# each finding must carry the right code, name the application, role or
# session it is about, and its client_symptom must contain the error the
# client really got (numbers and quoted names aside).  A healthy workload
# gives no finding at all; without shared_preload_libraries one info row
# says which checks were skipped.
#
# The same patterns driven by SQLAlchemy applications are in
# 401_diagnose_scenarios.pl (where Debian's python3-sqlalchemy is).

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

my $node = PostgreSQL::Test::Cluster->new('diagnose');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
max_connections = 20
superuser_reserved_connections = 3
max_prepared_transactions = 5
autovacuum = off
listen_addresses = '127.0.0.1'
connwatch.sample_interval = '100ms'
connwatch.diagnose_window = '2s'
connwatch.diagnose_idle_in_transaction = '1s'
connwatch.diagnose_horizon_age = '1s'
});
# The thresholds above are as short as the settings allow (whole seconds)
# or as the checks need; every wait below is for what a threshold asks,
# polled, and no longer: $WINDOW + 1 s where a pattern must span the window.
$node->start;

my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);
note "PostgreSQL $major";

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
INSERT INTO accounts VALUES (1, 0), (2, 0);
CREATE ROLE regress_app LOGIN;
GRANT ALL ON accounts TO regress_app;
CREATE ROLE regress_limited LOGIN CONNECTION LIMIT 2;
CREATE ROLE regress_timeout LOGIN;
CREATE ROLE regress_watcher LOGIN IN ROLE pg_monitor;
});
# a pool cut by the server while idle: idle_session_timeout from 14 on,
# on 13 the idle-in-transaction timeout of a connection left in a transaction
$node->safe_psql('postgres',
	$major >= 14
	? q{ALTER ROLE regress_timeout SET idle_session_timeout = '300ms'}
	: q{ALTER ROLE regress_timeout SET idle_in_transaction_session_timeout = '300ms'});

my $WINDOW = 2;    # connwatch.diagnose_window, in seconds

my $socket = $node->host;
my $port   = $node->port;

sub connect_as
{
	my ($user, $app, $host) = @_;
	$host //= $socket;
	return DBI->connect(
		"dbi:Pg:dbname=postgres;host=$host;port=$port;application_name=$app",
		$user, undef,
		{ RaiseError => 0, PrintError => 0, PrintWarn => 0, AutoCommit => 1 });
}

# diagnose() as a pg_monitor role (or as $user): every finding as a hash
sub diagnose
{
	my ($user) = @_;
	my $dbh;
	# a slot a client just gave back is free once its backend has exited
	for (1 .. 50)
	{
		last if $dbh = connect_as($user // 'regress_watcher', 'watcher');
		usleep(100_000);
	}
	die "watcher: $DBI::errstr" unless $dbh;
	my $rows = $dbh->selectall_arrayref(
		q{SELECT severity, code, subject, finding, evidence::text AS evidence,
		         client_symptom, advice, needs_preload
		  FROM connwatch.diagnose()}, { Slice => {} });
	$dbh->disconnect;
	return @$rows;
}

sub codes { return join ' ', map { "$_->{code}:$_->{subject}" } @_ }

# The finding with this code and subject, or undef
sub finding
{
	my ($code, $subject, @findings) = @_;
	my ($f) = grep { $_->{code} eq $code && $_->{subject} eq $subject } @findings;
	return $f;
}

# The client's error as a pattern: for a failed connection the server's
# part only; numbers and quoted names may differ, the words may not.
sub symptom_pattern
{
	my ($error) = @_;
	$error = (split /\n/, $error)[0];
	$error =~ s/^.* failed: //;
	$error =~ s/\s+$//;
	my $re = quotemeta($error);
	$re =~ s/\\"[^"]*?\\"/\\S+/g;
	$re =~ s/\d+(?:\\\.\d+)?/\\S+/g;
	return qr/$re/;
}

# One check: the code is found for the subject, and the client's error is in
# its client_symptom
sub found
{
	my ($code, $subject, $client_error, $findings, $what) = @_;
	my $f = finding($code, $subject, @$findings);
	ok($f, "$what: $code for $subject") or diag codes(@$findings);
	return $f unless $f && defined $client_error;
	like($f->{client_symptom}, symptom_pattern($client_error),
		"$what: $code names what the client saw: $client_error");
	return $f;
}

sub reset_remembered
{
	$node->safe_psql('postgres',
		'SELECT connwatch.reset_ledgers(); SELECT connwatch.reset_peaks();');
}

#
# A healthy workload: a pool of 3 reused for 2 s, each statement committed,
# then closed.  No finding at all.
#
{
	my @pool = map { connect_as('regress_app', 'healthy') } 1 .. 3;
	for my $i (1 .. 40)
	{
		my $dbh = $pool[ $i % 3 ];
		$dbh->begin_work;
		$dbh->do('UPDATE accounts SET balance = balance + 1 WHERE id = 2');
		$dbh->commit;
		usleep(50_000);
	}
	$_->disconnect for @pool;
	my @f = diagnose();
	is(scalar(@f), 0, 'healthy: no finding at all') or diag codes(@f);
}

#
# CW101, CW102: an application leaks its connections idle in a transaction
# until its pool of 3 is exhausted; held for the whole window
#
reset_remembered();
{
	# a warmed-up pool, as flat as the leak (and as old), but with idle
	# connections
	my @warm = map { connect_as('regress_app', 'warm-pool') } 1 .. 3;
	$warm[0]->begin_work;
	$warm[0]->selectrow_array('SELECT 1');
	my @leaked = map { connect_as('regress_app', 'leaky-api') } 1 .. 3;
	for my $dbh (@leaked)
	{
		$dbh->begin_work;
		$dbh->selectrow_array('SELECT balance FROM accounts WHERE id = 1');
	}
	sleep $WINDOW + 1;    # both flat for the whole window, and a second more
	my @f = diagnose();
	ok(!finding('CW102', 'application "warm-pool"', @f),
		'plateau: a flat pool with idle connections is not exhausted');
	$_->disconnect for @warm;
	my $f = found('CW101', 'application "leaky-api"', undef, \@f, 'leak');
	like($f->{finding}, qr/^3 sessions of application "leaky-api" .* idle in a transaction/,
		'leak: the count in the sentence');
	like($f->{evidence}, qr/"sessions": 3\b/, 'leak: the count in the evidence');
	like($f->{finding}, qr/SELECT balance FROM accounts WHERE id = 1/, 'leak: its last statement');
	like($f->{client_symptom}, qr/QueuePool limit of size \S+ overflow \S+ reached/,
		'leak: QueuePool exhaustion is the symptom');
	$f = found('CW102', 'application "leaky-api"', undef, \@f, 'plateau');
	like($f->{evidence}, qr/"connections": 3\b/, 'plateau: at 3 connections');
	$_->disconnect for @leaked;
}

#
# At most ten findings of a kind: twelve applications leak one session each
#
{
	my @leaked = map { connect_as('regress_app', "leaky-$_") } 1 .. 12;
	$_->begin_work, $_->selectrow_array('SELECT 1') for @leaked;
	# leaked: idle in their transaction for connwatch.diagnose_idle_in_transaction
	wait_in_state($node, q{application_name LIKE 'leaky-%' AND state = 'idle in transaction'}, 12, 1);
	my @f = grep { $_->{code} eq 'CW101' } diagnose();
	is(scalar(@f), 10, 'twelve leaking applications: ten CW101 rows');
	$_->disconnect for @leaked;
	wait_app_gone($node, "leaky-$_") for 1 .. 12;
}

#
# CW130: a session idle in a transaction holds a row lock that two others
# wait for, one through the other
#
{
	my $head = session($node, 'lock-holder');
	run_sql($head, 'BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = 1;');
	my @waiters = map { session($node, 'lock-waiter') } 1 .. 2;
	send_sql($_, "SET lock_timeout = '10s'; UPDATE accounts SET balance = 0 WHERE id = 1;")
	  for @waiters;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 2 FROM pg_stat_activity
		  WHERE application_name = 'lock-waiter' AND wait_event_type = 'Lock'})
	  or die 'waiters are not waiting';
	# the head of a chain once idle in its transaction for
	# LEAST(connwatch.diagnose_idle_in_transaction, 5 s)
	wait_in_state($node, "pid = $head->{pid} AND state = 'idle in transaction'", 1, 1);
	my @f = diagnose();
	my $f = found('CW130', "pid $head->{pid}", undef, \@f, 'lock chain');
	like($f->{finding}, qr/application "lock-holder".* 2 in all behind it/,
		'lock chain: the head and everything behind it');
	run_sql($head, 'ROLLBACK;');
	wait_sql($_) for @waiters;
	close_session($_) for ($head, @waiters);
}

#
# CW105, CW112: a pool larger than its role's CONNECTION LIMIT 2
#
reset_remembered();
{
	my @held = map { connect_as('regress_limited', 'limited-api') } 1 .. 2;
	my $third = connect_as('regress_limited', 'limited-api');
	ok(!$third, 'role limit: the third connection is refused');
	my $error = $DBI::errstr;
	my @f = diagnose();
	found('CW105', 'role "regress_limited"', $error, \@f, 'role limit');
	found('CW112', 'application "limited-api"', $error, \@f, 'role limit refused');
	$_->disconnect for @held;
}

#
# CW103, CW104, CW110, CW111: the ordinary slots fill up, then the
# reserved ones
#
reset_remembered();
{
	my @ordinary;
	while (my $dbh = connect_as('regress_app', 'filler'))
	{
		push @ordinary, $dbh;
		last if @ordinary > 20;
	}
	my $reserved_error = $DBI::errstr;
	like($reserved_error, qr/remaining connection slots are reserved/,
		'server: ordinary roles are refused when the ordinary slots are taken');
	my @super;
	while (my $dbh = connect_as('postgres', 'admin-tool'))
	{
		push @super, $dbh;
		last if @super > 5;
	}
	my $full_error = $DBI::errstr;
	like($full_error, qr/too many clients already/, 'server: then everybody is refused');
	pop(@super)->disconnect;    # room for a superuser watcher
	my @f = diagnose('postgres');
	found('CW103', 'server', $reserved_error, \@f, 'server full');
	found('CW104', 'server', $full_error, \@f, 'reserved slots in use');
	found('CW111', 'application "filler"', $reserved_error, \@f, 'reserved refusal');
	found('CW110', 'application "admin-tool"', $full_error, \@f, 'too many clients');
	$_->disconnect for (@ordinary, @super);
	wait_app_gone($node, 'filler');
}

#
# CW140: an application that connects for every request
#
reset_remembered();
{
	for (1 .. 80)
	{
		my $dbh = connect_as('regress_app', 'per-request') or die $DBI::errstr;
		$dbh->selectrow_array('SELECT 1');
		$dbh->disconnect;
	}
	wait_app_gone($node, 'per-request');
	my @f = diagnose();
	my $f = found('CW140', 'application "per-request"', undef, \@f, 'churn');
	like($f->{evidence}, qr/"short_sessions": 80\b/, 'churn: every short session counted');
}

#
# CW150: a pooled connection the server ended while it sat in the pool,
# used again without a pre-ping
#
reset_remembered();
{
	my $dbh = connect_as('regress_timeout', 'no-pre-ping') or die $DBI::errstr;
	$dbh->begin_work if $major < 14;
	$dbh->selectrow_array('SELECT 1');
	# the server ends it after 300 ms
	wait_app_gone($node, 'no-pre-ping');
	my $ok = $dbh->selectrow_array('SELECT 1');
	ok(!defined $ok, 'timeout: the next use of the pooled connection fails');
	my $error = $dbh->errstr;
	my @f = diagnose();
	found('CW150', 'application "no-pre-ping"', $error, \@f, 'timeout');
	$dbh->disconnect;
}

#
# CW160: two processes on one connection: BEGIN inside a transaction (the
# interleaved BEGINs of a pool shared across fork()), and a protocol
# violation
#
reset_remembered();
{
	my $dbh = connect_as('regress_app', 'forked-app') or die $DBI::errstr;
	$dbh->do('BEGIN');
	$dbh->do('BEGIN');    # WARNING:  there is already a transaction in progress
	$dbh->do('COMMIT');
	$dbh->do('COMMIT');   # WARNING:  there is no transaction in progress
	$dbh->disconnect;

	is(protocol_violation($node, 'regress_app', 'forked-app'), 'E',
		'shared connection: the server answers a message it does not know with an error');
	wait_app_gone($node, 'forked-app');

	my @f = diagnose();
	my $f = found('CW160', 'application "forked-app"', undef, \@f, 'shared connection');
	like($f->{evidence}, qr/"protocol_violations": 1\b/, 'shared connection: the protocol violation');
	like($f->{evidence}, qr/"transaction_warnings": 1\b/, 'shared connection: the misplaced BEGIN');
	like($f->{advice}, qr/engine\.dispose\(close=False\)/, 'shared connection: dispose after fork');
}

#
# CW161: a client killed in the middle of a transaction
#
reset_remembered();
{
	my $s = session($node, 'killed-worker');
	run_sql($s, 'BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = 2;');
	kill 'KILL', $s->{psql}{run}{KIDS}[0]{PID};
	wait_app_gone($node, 'killed-worker');
	my @f = diagnose();
	my $f = found('CW161', 'application "killed-worker"', undef, \@f, 'killed client');
	like($f->{finding}, qr/^1 session of application "killed-worker" .* ended in the middle of a transaction/,
		'killed client: one session');
	eval { $s->{psql}{run}->finish };
}

#
# CW120, CW121: the horizon held by a session and by a forgotten prepared
# transaction
#
{
	my $s = session($node, 'reporting');
	run_sql($s, 'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM accounts;');
	$node->safe_psql('postgres',
		q{BEGIN; UPDATE accounts SET balance = 7 WHERE id = 2; PREPARE TRANSACTION 'lost-in-crash';});
	# both older than connwatch.diagnose_horizon_age
	$node->poll_query_until('postgres', qq{
SELECT (SELECT xact_start FROM pg_stat_activity WHERE pid = $s->{pid})
         <= clock_timestamp() - interval '1 s'
   AND (SELECT prepared FROM pg_prepared_xacts WHERE gid = 'lost-in-crash')
         <= clock_timestamp() - interval '1 s'})
	  or die 'the horizon is not held for 1 s';
	my @f = diagnose();
	my $f = found('CW120', "pid $s->{pid}", undef, \@f, 'horizon');
	like($f->{finding}, qr/application "reporting"/, 'horizon: names the application');
	found('CW121', 'prepared transaction "lost-in-crash"', undef, \@f, 'prepared transaction');
	$node->safe_psql('postgres', q{ROLLBACK PREPARED 'lost-in-crash'});
	close_session($s);
}

#
# CW170: pooled connections idle longer than a firewall's idle timeout
#
{
	my $dbh = connect_as('regress_app', 'behind-firewall', '127.0.0.1') or die $DBI::errstr;
	# idle longer than the firewall's 1 s set below
	wait_in_state($node, q{application_name = 'behind-firewall' AND state = 'idle'}, 1, 1);
	# the thresholds are a superuser's to set (SUSET): a pg_monitor role
	# may not, a superuser may for it
	my $watcher = connect_as('regress_watcher', 'watcher');
	ok(!$watcher->do(q{SET connwatch.diagnose_network_idle_timeout = '1s'}),
		'firewall: a pg_monitor role cannot set a threshold');
	like($watcher->errstr, qr/permission denied to set parameter/, 'firewall: permission denied');
	$watcher->disconnect;
	$node->safe_psql('postgres',
		q{ALTER ROLE regress_watcher SET connwatch.diagnose_network_idle_timeout = '1s'});
	$watcher = connect_as('regress_watcher', 'watcher');
	my $rows = $watcher->selectall_arrayref(
		q{SELECT code, subject FROM connwatch.diagnose() WHERE code = 'CW170'});
	is_deeply($rows, [ [ 'CW170', 'application "behind-firewall"' ] ],
		'firewall: the idle TCP connection is reported');
	$watcher->disconnect;
	$dbh->disconnect;
	$node->safe_psql('postgres', q{ALTER ROLE regress_watcher RESET ALL});
}

#
# Quiet again once the window has passed
#
sleep $WINDOW + 1;
{
	my @f = diagnose();
	is(scalar(@f), 0, 'after the window: no finding') or diag codes(@f);
}

#
# Without the library preloaded: the live checks still work, one info row
# says what was skipped
#
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
{
	my @f = diagnose();
	is(codes(@f), 'CW190:server', 'without preload: only the skipped checks are reported');
	my @leaked = map { connect_as('regress_app', 'leaky-api') } 1 .. 2;
	$_->begin_work, $_->selectrow_array('SELECT 1') for @leaked;
	wait_in_state($node, q{application_name = 'leaky-api' AND state = 'idle in transaction'}, 2, 1);
	@f = diagnose();
	is(codes(@f), 'CW101:application "leaky-api" CW190:server',
		'without preload: a leak is still found');
	$_->disconnect for @leaked;
}

$node->stop;
done_testing();
