# 106_act_audit_hardening.pl - no kill without its audit row, an enforcer
# that keeps going, and protection that cannot be claimed by a name
# (issue 14, items 9 to 12).
#
# (a) Audit.  Terminated sessions equal audit rows, every time:
#     a1. enforce() with a later policy whose pattern ends in "\" (skipped
#         with a WARNING 22025 before the first signal) and one with a NULL
#         value (22004);
#     a2. enforce() under statement_timeout: once at a known point (the
#         timeout expires while the first signal waits at the primitive's
#         debug barrier), then several times at random points; and the
#         documented gap: the caller terminated after its first signal
#         (the LOG line stays, the row goes with the caller's transaction);
#     a3. a cancel_first caller cancelled while it waits for the grace
#         period;
#     a4. the worker's round: SIGTERM while its first signal is pending
#         (at the barrier), and SIGTERM while it waits for a lock on the
#         audit table.
# (b) The worker: a broken policy beside a good one (the good one keeps
#     enforcing, samples keep coming at their interval, the worker is not
#     restarted); a database owner's default_transaction_read_only (and
#     statement_timeout, lock_timeout, role, exit_on_error, ALLOW_CONNECTIONS
#     false, RENAME) does not stop it; CREATE DATABASE ... TEMPLATE and DROP DATABASE of its database
#     succeed while it enforces every 300 ms.
# (c) SET application_name = 'pg_dump' gives an ordinary role no immunity,
#     from enforce() or from the worker; a superuser's pg_dump session and a
#     member of connwatch.protected_application_roles keep theirs.

use strict;
use warnings;

use DBI;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use FindBin;
use lib "$FindBin::Bin/lib";
use ConnwatchTest;

my $BARRIER          = 424601;
my $SAMPLE_MS        = 200;
my $ENFORCE_MS       = 300;

my $node = PostgreSQL::Test::Cluster->new('audit');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_connwatch'
max_connections = 150
connwatch.database = 'cwdb'
connwatch.sample_interval = '${SAMPLE_MS}ms'
connwatch.max_terminations_per_run = 1000
log_error_verbosity = verbose
autovacuum = off
});
$node->start;

my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_victim LOGIN;
CREATE ROLE regress_owner LOGIN;
CREATE ROLE regress_backup_group;
CREATE ROLE regress_backup LOGIN IN ROLE regress_backup_group;
CREATE DATABASE cwdb OWNER regress_owner;
});
$node->safe_psql('cwdb', 'CREATE EXTENSION pg_connwatch');

sub connect_to
{
	my ($db, $user, $app, $autocommit) = @_;
	return DBI->connect(
		"dbi:Pg:dbname=$db;host=" . $node->host . ';port=' . $node->port
		  . ";application_name=$app",
		$user, undef,
		{ RaiseError => 0, PrintError => 0, AutoCommit => $autocommit // 0 });
}

# A session idle in a transaction
sub leak
{
	my ($db, $user, $app) = @_;
	my $dbh = connect_to($db, $user, $app)
	  or die "could not connect as $app: $DBI::errstr";
	# The worker's policies match at once (older_than 0): a session leaked
	# while the worker enforces may be terminated between BEGIN and SELECT.
	$dbh->do('SELECT 1')
	  or note "$app ended before its SELECT: " . $dbh->errstr;
	return $dbh;
}

sub count_sessions
{
	my ($like) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '$like'");
}

# The sessions of applications LIKE $like still connected, once that number
# has stopped changing (a terminated backend takes a moment to exit).
sub settled_sessions
{
	my ($like) = @_;
	my ($last, $stable) = (-1, 0);
	for (1 .. 300)
	{
		my $n = count_sessions($like);
		if ($n == $last) { return $n if ++$stable >= 5; }
		else { ($last, $stable) = ($n, 0); }
		usleep(100_000);
	}
	return $last;
}

# What the owner of cwdb sets for it (below) is for the worker: the test's
# own sessions override it from their startup packet, which wins over the
# database's settings.
$ENV{PGOPTIONS} = '-c statement_timeout=0 -c lock_timeout=0 -c exit_on_error=off '
  . '-c default_transaction_read_only=off -c role=none';

sub audit_rows
{
	my ($db, $like, $action) = @_;
	$action //= 'terminated';
	return $node->safe_psql($db, qq{
SELECT count(*) FROM connwatch.terminations
WHERE application_name LIKE '$like' AND action = '$action'});
}

sub log_lines
{
	my ($offset, $like_re) = @_;
	my @lines = grep { /pg_connwatch terminated backend \d+: .*application_name="$like_re/ }
	  split /\n/, slurp_file($node->logfile, $offset);
	return scalar @lines;
}

sub reload_with
{
	my (%settings) = @_;
	$node->safe_psql('postgres',
		join('', map { "ALTER SYSTEM SET $_ = '$settings{$_}';\n" } sort keys %settings)
		  . 'SELECT pg_reload_conf();');
	return;
}

sub worker_pid
{
	return $node->safe_psql('postgres', q{
SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'pg_connwatch worker'});
}

#
# (a1) enforce(): a later policy that cannot run, beside one that can
#
my @victims = map { leak('postgres', 'regress_victim', "a1_$_") } 1 .. 3;
$node->safe_psql('postgres', q{
INSERT INTO connwatch.policies (name, state, older_than, application_name) VALUES
  ('a1_good', 'idle in transaction', '0', 'a1\_%'),
  ('a1_z_escape', 'idle in transaction', '0', 'a1\');
ALTER TABLE connwatch.policies ALTER COLUMN older_than DROP NOT NULL;
INSERT INTO connwatch.policies (name, state, older_than) VALUES ('a1_z_null', 'idle', NULL);
});
my $offset = -s $node->logfile;
my ($rc, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT action, count(*) FROM connwatch.enforce() GROUP BY 1");
is($rc, 0, 'a1: enforce() succeeds with a broken policy among the good ones');
is($out, 'terminated|3', 'a1: the good policy terminated its three sessions');
like($err, qr/WARNING:  22025: policy "a1_z_escape" skipped: its application_name pattern ends with the escape character/,
	'a1: the policy whose pattern ends in a backslash is skipped, with 22025');
like($err, qr/WARNING:  22004: policy "a1_z_null" has a NULL older_than/,
	'a1: the policy with a NULL is skipped, with 22004');
is(settled_sessions('a1\_%'), 0, 'a1: the three sessions are gone');
is(audit_rows('postgres', 'a1\_%'), 3, 'a1: three sessions terminated, three audit rows');
is(log_lines($offset, 'a1_'), 3, 'a1: and three LOG lines');
eval { $_->disconnect } for @victims;
$node->safe_psql('postgres', q{
DELETE FROM connwatch.policies;
ALTER TABLE connwatch.policies ALTER COLUMN older_than SET NOT NULL;
});

#
# (a1b) the audit INSERT itself fails in the middle of a rule (a CHECK a
# superuser added): the rows already written stay, the run signals nobody
# after it, and the one signal without a row has its LOG line
#
@victims = map { leak('postgres', 'regress_victim', "a1b_$_") } qw(1 2 boom 3);
push @victims, leak('postgres', 'regress_victim', 'a1c_1');
$node->safe_psql('postgres', q{
ALTER TABLE connwatch.terminations ADD CONSTRAINT regress_no_boom CHECK (application_name <> 'a1b_boom');
INSERT INTO connwatch.policies (name, state, older_than, application_name) VALUES
  ('a1b', 'idle in transaction', '0', 'a1b\_%'),
  ('a1c', 'idle in transaction', '0', 'a1c\_%');
});
$offset = -s $node->logfile;
($rc, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT application_name, action, coalesce(reason, '') FROM connwatch.enforce() ORDER BY application_name");
is($rc, 0, 'a1b: enforce() returns');
like($err, qr/WARNING:  23514: policy "a1b" skipped: new row for relation "terminations" violates check constraint "regress_no_boom"/,
	'a1b: the failed row is a WARNING with its SQLSTATE');
like($err, qr/HINT:  No further session is signalled in this run: audit trail failed/,
	'a1b: ... after which the run signals nobody');
is(audit_rows('postgres', 'a1b\_%'), 2, 'a1b: the two rows written before the failure stay');
is(settled_sessions('a1b\_%'), 1, 'a1b: three sessions were signalled (two with rows, the one whose row failed)');
is(count_sessions('a1b\_3') + count_sessions('a1c\_1'), 2,
	'a1b: the sessions after the failure were not signalled');
is(log_lines($offset, 'a1b_'), 3, 'a1b: each of the three signals has its LOG line');
like($out, qr/^a1b_3\|skipped\|audit trail failed$/m, 'a1b: ... reported as skipped');
like($out, qr/^a1b_boom\|terminated\|idle in transaction for [^|]* \(no audit row: new row for relation "terminations" violates check constraint "regress_no_boom"\)$/m,
	'a1b: the session whose row failed is reported terminated, without its row');
eval { $_->disconnect } for @victims;
$node->safe_psql('postgres', q{
ALTER TABLE connwatch.terminations DROP CONSTRAINT regress_no_boom;
DELETE FROM connwatch.policies;
});

#
# (a2) enforce() under statement_timeout
#
$node->safe_psql('postgres', q{
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('a2', 'idle in transaction', '0', 'a2\_%')});

# at a known point: the timeout expires while the first signal waits at the
# barrier, with interrupts held off
my $controller = session($node, 'controller_a2');
my $actor      = session($node, 'actor_a2');
@victims = map { leak('postgres', 'regress_victim', "a2_$_") } 1 .. 5;
run_sql($controller, "SELECT pg_advisory_lock($BARRIER)");
send_sql($actor, qq{SET connwatch.debug_signal_barrier = $BARRIER;
SET statement_timeout = '300ms';
\\set VERBOSITY verbose
SELECT action || CASE WHEN action = 'skipped' THEN ':' || reason ELSE '' END, count(*)
FROM connwatch.enforce() GROUP BY 1 ORDER BY 1;
RESET statement_timeout;
RESET connwatch.debug_signal_barrier});
$node->poll_query_until('postgres', qq{
SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
  AND pid = $actor->{pid}})
  or die 'the actor did not reach the barrier';
usleep(600_000);    # past the statement timeout
run_sql($controller, "SELECT pg_advisory_unlock($BARRIER)");
($out, $err) = wait_sql($actor);
is($out, "skipped:run cancelled|4\nterminated|1",
	'a2: statement_timeout during the first signal: that signal is completed, then the run stops');
like($err, qr/WARNING:  57014: statement timeout after 1 signal: no further session was signalled/,
	'a2: ... with a WARNING 57014 instead of an error');
is(settled_sessions('a2\_%'), 4, 'a2: one session terminated');
is(audit_rows('postgres', 'a2\_%'), 1, 'a2: ... one audit row, committed with the statement');
eval { $_->disconnect } for @victims;
close_session($_) for $controller, $actor;

# The documented gap: the caller of enforce() terminated while its first
# signal is pending.  The SIGTERM waits for that signal and its row, then
# ends the caller, whose transaction -- and row -- is rolled back; the LOG
# line stays.  One session signalled, not more.
$controller = session($node, 'controller_a2b');
$actor      = session($node, 'actor_a2b');
@victims = map { leak('postgres', 'regress_victim', "a2b_$_") } 1 .. 3;
$node->safe_psql('postgres', q{
UPDATE connwatch.policies SET application_name = 'a2b\_%' WHERE name = 'a2'});
run_sql($controller, "SELECT pg_advisory_lock($BARRIER)");
$offset = -s $node->logfile;
send_sql($actor, qq{SET connwatch.debug_signal_barrier = $BARRIER;
SELECT count(*) FROM connwatch.enforce()});
$node->poll_query_until('postgres', qq{
SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
  AND pid = $actor->{pid}})
  or die 'the actor did not reach the barrier';
$node->safe_psql('postgres', "SELECT pg_terminate_backend($actor->{pid})");
run_sql($controller, "SELECT pg_advisory_unlock($BARRIER)");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $actor->{pid}")
  or die 'the actor did not end';
is(settled_sessions('a2b\_%'), 2, 'a2b: caller terminated during its first signal: that signal was sent, no other');
is(log_lines($offset, 'a2b_'), 1, 'a2b: ... with its LOG line');
is(audit_rows('postgres', 'a2b\_%'), 0,
	'a2b: ... and no row: the caller\'s transaction did not commit (the documented gap for SQL callers)');
eval { $_->disconnect } for @victims;
close_session($_) for $controller, $actor;

# at random points: many sessions, short timeouts
my @measured;
for my $timeout_ms (5, 10, 15, 20, 30, 40)
{
	my $n = 60;
	my $tag = "a2r${timeout_ms}_";
	@victims = map { leak('postgres', 'regress_victim', "$tag$_") } 1 .. $n;
	$node->safe_psql('postgres', qq{
UPDATE connwatch.policies SET application_name = '$tag%' WHERE name = 'a2'});
	($rc, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '${timeout_ms}ms';\nSELECT count(*) FROM connwatch.enforce() WHERE action = 'terminated'");
	my $terminated = $n - settled_sessions("$tag%");
	my $rows = audit_rows('postgres', "$tag%");
	my $how = $rc == 0 ? ($err =~ /statement timeout after/ ? 'stopped' : 'completed') : 'error';
	push @measured, "${timeout_ms}ms: $terminated terminated, $rows rows ($how)";
	is($rows, $terminated,
		"a2: statement_timeout = ${timeout_ms}ms: $terminated terminated, $rows audit rows ($how)");
	ok($how ne 'error' || $terminated == 0,
		"a2: ... an error only when nothing was signalled");
	eval { $_->disconnect } for @victims;
}
note "statement_timeout runs: " . join('; ', @measured);
$node->safe_psql('postgres', 'DELETE FROM connwatch.policies');

#
# (a3) a cancel_first caller cancelled while it waits for the grace period
#
my @busy = map {
	my $s = session($node, "a3_$_", 'regress_victim');
	send_sql($s, 'BEGIN; SELECT pg_sleep(600)');
	$s;
} 1 .. 3;
$node->poll_query_until('postgres', q{
SELECT count(*) = 3 FROM pg_stat_activity
WHERE application_name LIKE 'a3\_%' AND state = 'active' AND query LIKE '%pg_sleep%'})
  or die 'the busy sessions did not start';
$actor = session($node, 'actor_a3');
send_sql($actor, q{SET connwatch.cancel_grace_period = '10min';
\set VERBOSITY verbose
SELECT action || CASE WHEN action = 'skipped' THEN ':' || reason ELSE '' END, count(*)
FROM connwatch.terminate_long_transactions('0', cancel_first => true, application_name => 'a3\_%')
GROUP BY 1 ORDER BY 1});
$node->poll_query_until('postgres', q{
SELECT count(*) = 3 FROM pg_stat_activity
WHERE application_name LIKE 'a3\_%' AND state = 'idle in transaction (aborted)'})
  or die 'the statements were not cancelled';
$node->safe_psql('postgres', "SELECT pg_cancel_backend($actor->{pid})");
($out, $err) = wait_sql($actor);
is($out, "cancelled|3\nskipped:run cancelled|3",
	'a3: the statements were cancelled, and the cancel stopped the wait: no termination followed');
like($err, qr/WARNING:  57014: cancel request after 3 signals/,
	'a3: the cancel is answered with a WARNING 57014, not an error');
is(audit_rows('postgres', 'a3\_%', 'cancelled'), 3, 'a3: three cancels, three audit rows');
is(audit_rows('postgres', 'a3\_%', 'terminated'), 0, 'a3: no termination, no row');
is(count_sessions('a3\_%'), 3, 'a3: the three sessions are alive');
close_session($_) for @busy, $actor;

#
# (c) an application name protects nobody by itself
#
$node->safe_psql('postgres', q{
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('c', 'idle in transaction', '0', 'pg\_dump')});
my $plain  = leak('postgres', 'regress_victim', 'pg_dump');
my $backup = leak('postgres', 'regress_backup', 'pg_dump');
my $super  = leak('postgres', $superuser,       'pg_dump');
my $who = q{
SELECT string_agg(who || ':' || action || ':' || reason, ',' ORDER BY who)
FROM (SELECT CASE WHEN usename = current_user THEN 'super' ELSE usename::text END AS who,
             action, regexp_replace(coalesce(reason, ''), ' for .*', '') AS reason
      FROM connwatch.enforce(%s)) s};
is($node->safe_psql('postgres', sprintf($who, 'dry_run => true')),
	'regress_backup:would terminate:idle in transaction,'
	  . 'regress_victim:would terminate:idle in transaction,'
	  . 'super:skipped:protected application',
	'c: by default, pg_dump protects the superuser\'s session only');
reload_with('connwatch.protected_application_roles' => 'regress_backup_group');
is($node->safe_psql('postgres', sprintf($who, 'dry_run => false')),
	'regress_backup:skipped:protected application,'
	  . 'regress_victim:terminated:idle in transaction,'
	  . 'super:skipped:protected application',
	'c: a member of a role in protected_application_roles is protected; the ordinary role is terminated');
is(settled_sessions('pg\_dump'), 2, 'c: the ordinary role\'s pg_dump session is gone');
is( $node->safe_psql('postgres', q{
SELECT usename FROM connwatch.terminations WHERE application_name = 'pg_dump'}),
	'regress_victim', 'c: ... with its audit row');
($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE regress_victim; SET connwatch.protected_application_roles = 'regress_victim'");
like($err, qr/permission denied to set parameter "connwatch.protected_application_roles"/,
	'c: an ordinary role cannot list itself');
eval { $_->disconnect } for $plain, $backup, $super;
$node->safe_psql('postgres', 'DELETE FROM connwatch.policies');

#
# (b) the worker: a broken policy beside a good one, sampling on time, a
# database owner's settings
#
$node->safe_psql('cwdb', q{
INSERT INTO connwatch.policies (name, state, older_than, usename) VALUES
  ('b1_escape', 'idle in transaction', '0', 'regress\'),
  ('b2_state', 'idle in transaction', '0', 'regress_victim'),
  ('b3_good', 'idle in transaction', '0', 'regress_victim');
ALTER TABLE connwatch.policies DROP CONSTRAINT policies_state_check;
UPDATE connwatch.policies SET state = 'sleeping' WHERE name = 'b2_state';
});
# what a non-superuser owner of the database may do to its sessions
$node->safe_psql('cwdb', q{
SET ROLE regress_owner;
ALTER DATABASE cwdb SET default_transaction_read_only = on;
ALTER DATABASE cwdb SET statement_timeout = '1ms';
ALTER DATABASE cwdb SET lock_timeout = '1ms';
ALTER DATABASE cwdb SET exit_on_error = on;
ALTER DATABASE cwdb SET role = 'regress_owner';
});
my $pid = worker_pid();
ok($pid > 0, 'b: the worker runs');
$offset = -s $node->logfile;
reload_with('connwatch.enforce_interval' => "${ENFORCE_MS}ms");

for my $round (1 .. 3)
{
	my @leaks = map { leak('cwdb', 'regress_victim', "b${round}_$_") } 1 .. 3;
	push @leaks, leak('cwdb', 'regress_victim', 'pg_dump') if $round == 1;
	my $started = time;
	my $ok = 0;
	while (time - $started < 10)
	{
		if (count_sessions("b${round}\\_%") == 0 && count_sessions('pg\_dump') == 0)
		{
			$ok = 1;
			last;
		}
		usleep(50_000);
	}
	ok($ok, sprintf('b: round %d: the good policy terminated the leaked sessions (%.1f s)',
		$round, time - $started));
	eval { $_->disconnect } for @leaks;
}
is( $node->safe_psql('cwdb', q{
SELECT count(*) || ':' || string_agg(DISTINCT policy || '/' || invoked_by, ',')
FROM connwatch.terminations WHERE application_name ~ '^(b[123]_|pg_dump$)'}),
	"10:b3_good/$superuser",
	'b: ten rows (pg_dump included), by the good policy, invoked by the superuser despite ALTER DATABASE SET role');
like(slurp_file($node->logfile, $offset),
	qr/WARNING:  22025: policy "b1_escape" skipped/,
	'b: the broken pattern is logged with its policy and SQLSTATE');
like(slurp_file($node->logfile, $offset),
	qr/WARNING:  22023: policy "b2_state" has an invalid state/,
	'b: the invalid state is logged with its policy and SQLSTATE');
unlike(slurp_file($node->logfile, $offset), qr/exited with exit code 1/,
	'b: no worker exited with an error');
is(worker_pid(), $pid, 'b: the worker was never restarted');

# sampling keeps its interval
my $window_start = $node->safe_psql('postgres', 'SELECT now()');
sleep 3;
my ($samples, $seconds) = split /\|/, $node->safe_psql('postgres', qq{
SELECT count(*), extract(epoch FROM now() - '$window_start') FROM connwatch.history
WHERE sampled_at > '$window_start'});
my $expected_samples = $seconds * 1000 / $SAMPLE_MS;
cmp_ok($samples, '>=', 0.7 * $expected_samples,
	sprintf('b: %d samples in %.1f s with a broken policy enforced every %d ms (%.0f expected)',
		$samples, $seconds, $ENFORCE_MS, $expected_samples));
note sprintf('history: %d samples in %.2f s (interval %d ms)', $samples, $seconds, $SAMPLE_MS);
my @reported = slurp_file($node->logfile, $offset) =~ /WARNING:  22025: policy "b1_escape" skipped/g;
is(scalar @reported, 1,
	'b: the broken policy is logged when it breaks, not again every round');

# the owner keeps its sessions out (ALLOW_CONNECTIONS false) and renames
# the database: the enforcer keeps working in it
sub wait_gone
{
	my ($like) = @_;
	my $started = time;
	while (time - $started < 10)
	{
		return 1 if count_sessions($like) == 0;
		usleep(50_000);
	}
	return 0;
}
my @leaks = map { leak('cwdb', 'regress_victim', "b4_$_") } 1 .. 2;
$node->safe_psql('postgres', q{
ALTER ROLE regress_owner CREATEDB;
SET ROLE regress_owner;
ALTER DATABASE cwdb ALLOW_CONNECTIONS false});
ok(wait_gone('b4\_%'), 'b: ALLOW_CONNECTIONS false by the owner: the enforcer still terminates');
eval { $_->disconnect } for @leaks;
$node->safe_psql('postgres', q{
SET ROLE regress_owner;
ALTER DATABASE cwdb RENAME TO cwdb_moved;
ALTER DATABASE cwdb_moved ALLOW_CONNECTIONS true});
@leaks = map { leak('cwdb_moved', 'regress_victim', "b5_$_") } 1 .. 2;
ok(wait_gone('b5\_%'), 'b: renamed by the owner: the enforcer follows the database');
ok($node->wait_for_log(qr/WARNING:  55000: pg_connwatch worker: database "cwdb" was renamed to "cwdb_moved"; the enforcer keeps using it/,
		$offset), '... and says so');
eval { $_->disconnect } for @leaks;
is( $node->safe_psql('cwdb_moved', q{
SELECT count(*) FROM connwatch.terminations WHERE application_name ~ '^b[45]_'}),
	4, 'b: ... with the four audit rows');
$node->safe_psql('postgres', q{
SET ROLE regress_owner;
ALTER DATABASE cwdb_moved RENAME TO cwdb});

#
# (a4) the worker's round: SIGTERM after the first signal, and while it waits
# for the audit table's lock
#
$node->safe_psql('cwdb', q{
DELETE FROM connwatch.policies WHERE name <> 'b3_good';
UPDATE connwatch.policies SET usename = NULL, application_name = 'a4\_%' WHERE name = 'b3_good'});
reload_with('connwatch.enforce_interval' => '0');
my $holder = $node->background_psql('cwdb', on_error_stop => 0);
$holder->query_safe("SELECT pg_advisory_lock($BARRIER)");
@victims = map { leak('cwdb', 'regress_victim', "a4_$_") } 1 .. 3;
$offset = -s $node->logfile;
reload_with('connwatch.debug_signal_barrier' => $BARRIER,
	'connwatch.enforce_interval' => "${ENFORCE_MS}ms");
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND NOT l.granted AND a.backend_type = 'pg_connwatch enforcer'})
  or die 'no round reached the barrier';
my $round_pid = $node->safe_psql('postgres', q{
SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_connwatch enforcer'});
reload_with('connwatch.enforce_interval' => '0');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($round_pid)");
$holder->query_safe("SELECT pg_advisory_unlock($BARRIER)");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $round_pid")
  or die 'the round did not end';
is(settled_sessions('a4\_%'), 2, 'a4: SIGTERM while the first signal was pending: that one session was terminated');
is(audit_rows('cwdb', 'a4\_%'), 1, 'a4: ... and its row committed before the round ended');
is(log_lines($offset, 'a4_'), 1, 'a4: ... one LOG line');
like(slurp_file($node->logfile, $offset),
	# 14 and later name the background worker; 13's die() does not
	qr/\[$round_pid\][^\n]*(?:terminating background worker "pg_connwatch enforcer"|terminating connection) due to administrator command/,
	'a4: the round was ended by the SIGTERM');

# SIGTERM while the round waits for the audit table's lock: nothing signalled
$holder->query_safe('BEGIN; LOCK TABLE connwatch.terminations IN ACCESS EXCLUSIVE MODE');
reload_with('connwatch.debug_signal_barrier' => '0',
	'connwatch.enforce_interval' => "${ENFORCE_MS}ms");
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'relation' AND NOT l.granted AND a.backend_type = 'pg_connwatch enforcer'})
  or die 'no round waited for the lock';
$round_pid = $node->safe_psql('postgres', q{
SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_connwatch enforcer'});
reload_with('connwatch.enforce_interval' => '0');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($round_pid)");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $round_pid")
  or die 'the round did not end';
is(settled_sessions('a4\_%'), 2, 'a4: SIGTERM while waiting for the lock: nothing was signalled');
$holder->query_safe('ROLLBACK');
is(audit_rows('cwdb', 'a4\_%'), 1, 'a4: ... and no row is missing');
reload_with('connwatch.enforce_interval' => "${ENFORCE_MS}ms");
is(settled_sessions('a4\_%'), 0, 'a4: once the lock is gone, the next round terminates the rest');
is(audit_rows('cwdb', 'a4\_%'), 3, 'a4: three sessions terminated by the worker, three audit rows');
$holder->quit;
eval { $_->disconnect } for @victims;

#
# (b) CREATE DATABASE ... TEMPLATE and DROP DATABASE of the worker's database,
# while it enforces every 300 ms
#
for my $i (1 .. 3)
{
	my $started = time;
	($rc, $out, $err) = $node->psql('postgres', "CREATE DATABASE cwcopy$i TEMPLATE cwdb");
	my $took = time - $started;
	is($rc, 0, sprintf('b: CREATE DATABASE cwcopy%d TEMPLATE cwdb (%.2f s)', $i, $took))
	  or diag $err;
	cmp_ok($took, '<', 5, '... within 5 s');
}
$pid = worker_pid();
my $started = time;
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE cwdb');
my $took = time - $started;
is($rc, 0, sprintf('b: DROP DATABASE cwdb, the worker\'s database (%.2f s)', $took)) or diag $err;
cmp_ok($took, '<', 5, '... within 5 s');
ok($node->wait_for_log(qr/pg_connwatch worker: database "cwdb" does not exist; nothing to enforce/,
		$offset), 'b: the worker says once that its database is gone');
is(worker_pid(), $pid, 'b: ... and keeps running');
$window_start = $node->safe_psql('postgres', 'SELECT now()');
ok( $node->poll_query_until('postgres', qq{
SELECT count(*) >= 3 FROM connwatch.history WHERE sampled_at > '$window_start'}),
	'b: ... and sampling');

$node->stop;
done_testing();
