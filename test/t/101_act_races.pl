# 101_act_races.pl - the termination primitive under deterministic races.
#
# connwatch.debug_signal_barrier = K makes the primitive take
# pg_advisory_xact_lock_shared(K) between observing a session and
# re-checking it.  A controller session holds pg_advisory_lock(K), so the
# actor's rule function is known to be paused after it observed the victim;
# the test changes the victim, then releases the lock.  Every scenario is
# repeated $ROUNDS times:
#
#   a. the victim becomes active during the pause (it runs a statement that
#      waits on a lock the controller holds, so it stays active as long as
#      the test wants): skipped 'state changed', never signalled, and its
#      statement completes;
#   b. the victim commits (goes idle) during the pause: skipped, alive;
#   c. the victim stays idle in transaction: always terminated;
#   e. the victim disconnects during the pause while new sessions connect:
#      skipped 'gone', nobody signalled (see the comment there about pid
#      reuse).
#
# Then: (d) the right pid with the wrong backend_start does nothing, and
# (f) a rule function run inside an explicit transaction long after reading
# the views kills nothing that has since become active or started a new
# transaction, while still killing the one that stayed idle.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use FindBin;
use lib "$FindBin::Bin/lib";
use ConnwatchTest;

my $ROUNDS  = 20;
my $BARRIER = 424201;    # the primitive's debug barrier
my $BLOCKER = 424202;    # keeps a victim's statement active

my $node = PostgreSQL::Test::Cluster->new('races');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
autovacuum = off
log_min_messages = log
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_race LOGIN;
});

#
# Helpers (session, send_sql, wait_sql, run_sql and close_session come
# from ConnwatchTest)
#
# Poll $sql in the controller session until it returns $expected.
my $controller;
sub poll
{
	my ($sql, $expected, $what) = @_;
	$expected //= 't';
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my $got;
	while (time < $deadline)
	{
		($got) = run_sql($controller, $sql);
		return 1 if $got eq $expected;
		usleep(10_000);
	}
	die "timed out waiting for $what (last result: '$got')";
}

# Is this very session (pid, backend_start) still connected?
sub alive
{
	my ($s) = @_;
	my ($n) = run_sql($controller,
		"SELECT count(*) FROM pg_catalog.pg_stat_activity
		 WHERE pid = $s->{pid} AND backend_start = '$s->{start}'");
	return $n eq '1';
}

sub actor_waits_at_barrier
{
	my ($actor) = @_;
	poll(
		"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks
		  WHERE locktype = 'advisory' AND pid = $actor->{pid}
		    AND objid = $BARRIER AND NOT granted)",
		't', 'the actor to wait at the barrier');
	return;
}

$controller = session($node, 'regress_race_controller');

# The actor: a superuser session with the barrier on.  The library is
# loaded first so that the SUSET GUC exists when it is set.
my $actor = session($node, 'regress_race_actor');
my (undef, $err) = run_sql($actor,
	"SELECT count(*) FROM connwatch.sessions; SET connwatch.debug_signal_barrier = $BARRIER;");
is($err, '', 'actor set the debug barrier');

my %signalled_pids;    # pids the actor reported as terminated
my @should_die;        # pids of scenario c

# One race: victim idle in transaction, the actor pauses after observing
# it, $change runs during the pause.  Returns the actor's rows.
sub race
{
	my ($victim, $change) = @_;
	run_sql($controller, "SELECT pg_advisory_lock($BARRIER)");
	send_sql($actor,
		"SELECT action || '|' || reason || '|' || pid
		 FROM connwatch.terminate_idle_in_transaction('0', application_name => '$victim->{app}')");
	actor_waits_at_barrier($actor);
	$change->();
	run_sql($controller, "SELECT pg_advisory_unlock($BARRIER)");
	my ($out, $err) = wait_sql($actor);
	die "actor failed: $err" if $err ne '';
	for my $row (split /\n/, $out)
	{
		my ($action, $reason, $pid) = split /\|/, $row;
		$signalled_pids{$pid} = 1 if $action eq 'terminated';
	}
	return $out;
}

sub idle_in_transaction_victim
{
	my ($app) = @_;
	my $v = session($node, $app, 'regress_race');
	my (undef, $err) = run_sql($v, 'BEGIN; SELECT 1;');
	die "victim: $err" if $err ne '';
	return $v;
}

#
# a. The victim becomes active during the pause.
#
{
	my ($wrong, $as_expected) = (0, 0);
	for my $round (1 .. $ROUNDS)
	{
		my $v = idle_in_transaction_victim('race_a');
		run_sql($controller, "SELECT pg_advisory_lock($BLOCKER)");
		my $out = race(
			$v,
			sub {
				send_sql($v, "SELECT pg_advisory_xact_lock_shared($BLOCKER)");
				poll(
					"SELECT state = 'active' AND wait_event_type = 'Lock'
					 FROM pg_catalog.pg_stat_activity WHERE pid = $v->{pid}",
					't', 'the victim to become active');
			});
		run_sql($controller, "SELECT pg_advisory_unlock($BLOCKER)");
		my (undef, $verr) = wait_sql($v);    # its statement completes
		my ($one, $err2) = run_sql($v, 'SELECT 1; ROLLBACK;');
		my $ok =
		     $out eq "skipped|state changed|$v->{pid}"
		  && $verr eq ''
		  && $one eq '1'
		  && $err2 eq ''
		  && alive($v);
		$ok ? $as_expected++ : $wrong++;
		diag("round $round: actor '$out', victim error '$verr' / '$err2'")
		  unless $ok;
		close_session($v);
	}
	is($wrong, 0, "a: victim that became active: signalled or disturbed 0 of $ROUNDS times");
	is($as_expected, $ROUNDS, "a: $ROUNDS of $ROUNDS skipped with 'state changed', statement completed");
}

#
# b. The victim commits during the pause.
#
{
	my ($wrong, $as_expected) = (0, 0);
	for my $round (1 .. $ROUNDS)
	{
		my $v   = idle_in_transaction_victim('race_b');
		my $out = race(
			$v,
			sub {
				my (undef, $e) = run_sql($v, 'COMMIT');
				die "victim commit: $e" if $e ne '';
			});
		my ($one, $err2) = run_sql($v, 'SELECT 1');
		my $ok =
		     $out eq "skipped|state changed|$v->{pid}"
		  && $one eq '1'
		  && $err2 eq ''
		  && alive($v);
		$ok ? $as_expected++ : $wrong++;
		diag("round $round: actor '$out', victim '$one' '$err2'") unless $ok;
		close_session($v);
	}
	is($wrong, 0, "b: victim that committed: signalled 0 of $ROUNDS times");
	is($as_expected, $ROUNDS, "b: $ROUNDS of $ROUNDS skipped with 'state changed'");
}

#
# c. The victim stays idle in transaction: it must be terminated every time.
#
{
	my $terminated = 0;
	for my $round (1 .. $ROUNDS)
	{
		my $v = idle_in_transaction_victim('race_c');
		my $out = race($v, sub { });
		my $reported = $out =~ /^terminated\|idle in transaction for [^|]+\|$v->{pid}$/;
		poll(
			"SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $v->{pid}",
			'0', "victim $v->{pid} to exit")
		  if $reported;
		if ($reported && !alive($v))
		{
			$terminated++;
			push @should_die, $v->{pid};
		}
		else
		{
			diag("round $round: actor '$out'");
		}
		close_session($v);
	}
	is($terminated, $ROUNDS, "c: victim that stayed idle in transaction: terminated $ROUNDS of $ROUNDS times");
}

#
# e. "Replaced by a new backend with the same pid".  A test cannot make the
# kernel hand a new backend the pid of one that exited (pids are allocated
# sequentially; forcing one needs CAP_SYS_ADMIN over ns_last_pid).  What
# the primitive sees in that case is a live slot under the observed pid with
# another backend_start: exactly case d below, which uses a live session
# and a wrong backend_start.  Here the observed session exits during the
# pause while new sessions connect (they take the freed slot and more): it
# must be skipped as 'gone' and none of the newcomers signalled.
#
{
	my ($wrong, $as_expected) = (0, 0);
	for my $round (1 .. $ROUNDS)
	{
		my $v = idle_in_transaction_victim('race_e');
		my @newcomers;
		my $out = race(
			$v,
			sub {
				close_session($v);
				poll(
					"SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $v->{pid}",
					'0', 'the victim to disconnect');
				for (1 .. 2)
				{
					my $n = session($node, 'race_e', 'regress_race');
					run_sql($n, 'BEGIN; SELECT 1;');
					push @newcomers, $n;
				}
			});
		my $ok = $out eq "skipped|gone|$v->{pid}";
		for my $n (@newcomers)
		{
			my ($one) = run_sql($n, 'SELECT 1');
			$ok &&= $one eq '1' && alive($n);
			close_session($n);
		}
		$ok ? $as_expected++ : $wrong++;
		diag("round $round: actor '$out'") unless $ok;
	}
	is($wrong, 0, "e: victim that disconnected during the pause: a newcomer signalled 0 of $ROUNDS times");
	is($as_expected, $ROUNDS, "e: $ROUNDS of $ROUNDS skipped with 'gone'");
}

# Nothing but the c victims was ever signalled or audited.
is_deeply(
	[ sort { $a <=> $b } keys %signalled_pids ],
	[ sort { $a <=> $b } @should_die ],
	'the actor reported terminating exactly the victims of scenario c');
{
	my ($pids) = run_sql($controller,
		"SELECT string_agg(pid::text, ',' ORDER BY pid) FROM connwatch.terminations");
	is($pids, join(',', sort { $a <=> $b } @should_die),
		'connwatch.terminations holds exactly the victims of scenario c');
}

#
# d. The right pid with the wrong backend_start does nothing.
#
{
	my $v = idle_in_transaction_victim('race_d');
	for my $shift ('-1 microsecond', '+1 microsecond', '-1 day')
	{
		my ($res, $err) = run_sql($controller,
			"SELECT connwatch.terminate_backend($v->{pid}, '$v->{start}'::timestamptz + '$shift'::interval)");
		is($res, 'f', "d: terminate_backend with backend_start $shift returns false");
		like($err, qr/WARNING:  session not signalled: backend_start mismatch\n.*PID $v->{pid} is not the PostgreSQL session that started at/,
			"d: ... and warns 'backend_start mismatch' for pid $v->{pid}");
		($res, $err) = run_sql($controller,
			"SELECT connwatch.cancel_backend($v->{pid}, '$v->{start}'::timestamptz + '$shift'::interval)");
		is($res, 'f', "d: cancel_backend with backend_start $shift returns false");
	}
	my ($one, $err) = run_sql($v, 'SELECT 1');
	ok($one eq '1' && $err eq '' && alive($v), 'd: the session is alive and usable');

	# The same call with the right backend_start does act: the false above
	# comes from the mismatch alone.
	my ($res) = run_sql($controller,
		"SELECT connwatch.terminate_backend($v->{pid}, '$v->{start}')");
	is($res, 't', 'd: with the right backend_start the session is terminated');
	poll("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $v->{pid}",
		'0', 'the d victim to exit');
	close_session($v);

	# A (pid, backend_start) of a session that has exited is refused as
	# gone, while other sessions have connected since.
	my $old = session($node, 'race_d_old', 'regress_race');
	close_session($old);
	poll("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $old->{pid}",
		'0', 'the old session to exit');
	my $new = session($node, 'race_d_new', 'regress_race');
	($res, $err) = run_sql($controller,
		"SELECT connwatch.terminate_backend($old->{pid}, '$old->{start}')");
	is($res, 'f', 'e: terminate_backend on an exited session returns false');
	like($err, qr/WARNING:  session not signalled: gone\n.*PID $old->{pid} is not the PostgreSQL session/,
		"e: ... and warns 'gone'");
	ok(alive($new), 'e: the session that connected since is alive');
	close_session($new);
}

#
# f. A rule function inside an explicit transaction, long after the view
# was read: a naive tool would act on its frozen pg_stat_activity snapshot.
# Victims: f_active become active, f_newxact commit and begin a new
# transaction, f_stale stay idle in transaction (control: the same call
# must terminate them, so "nothing killed" is not a broken rule function).
#
{
	my $threshold = '3 seconds';
	my (@f_active, @f_newxact, @f_stale);
	push @f_active,  idle_in_transaction_victim('race_f') for 1 .. 3;
	push @f_newxact, idle_in_transaction_victim('race_f') for 1 .. 3;
	push @f_stale,   idle_in_transaction_victim('race_f') for 1 .. 2;
	my @all = (@f_active, @f_newxact, @f_stale);
	my $pids = join(',', map { $_->{pid} } @all);

	# "Long after": every victim is idle in transaction for more than the
	# threshold when the actor reads the views.
	poll(
		"SELECT count(*) FROM connwatch.idle_in_transaction
		 WHERE application_name = 'race_f' AND idle_for > '$threshold'",
		scalar(@all), 'the f victims to be idle long enough');

	my $reader = session($node, 'regress_race_reader');
	my ($seen, $err) = run_sql($reader,
		"BEGIN;
		 SELECT count(*) FROM connwatch.idle_in_transaction
		 WHERE application_name = 'race_f' AND idle_for > '$threshold';
		 SELECT count(*) FROM pg_catalog.pg_stat_activity
		 WHERE application_name = 'race_f' AND state = 'idle in transaction'
		   AND state_change < now() - '$threshold'::interval;");
	is($seen, scalar(@all) . "\n" . scalar(@all),
		'f: the reader sees every victim idle in transaction beyond the threshold');

	run_sql($controller, "SELECT pg_advisory_lock($BLOCKER)");
	for my $v (@f_active)
	{
		send_sql($v, "SELECT pg_advisory_xact_lock_shared($BLOCKER)");
	}
	for my $v (@f_newxact)
	{
		my (undef, $e) = run_sql($v, 'COMMIT; BEGIN; SELECT 1;');
		die "victim: $e" if $e ne '';
	}
	poll(
		"SELECT count(*) FROM pg_catalog.pg_stat_activity
		 WHERE pid IN (" . join(',', map { $_->{pid} } @f_active) . ")
		   AND state = 'active' AND wait_event_type = 'Lock'",
		scalar(@f_active), 'the f_active victims to be active');

	# The reader's snapshot of pg_stat_activity is frozen: it still shows
	# all of them idle in transaction since before the threshold.
	($seen) = run_sql($reader,
		"SELECT count(*) FROM pg_catalog.pg_stat_activity
		 WHERE application_name = 'race_f' AND state = 'idle in transaction'
		   AND state_change < now() - '$threshold'::interval");
	is($seen, scalar(@all),
		'f: inside the transaction pg_stat_activity still shows the stale states');

	my ($out) = run_sql($reader,
		"SELECT action || '|' || pid FROM connwatch.terminate_idle_in_transaction('$threshold', application_name => 'race_f')
		 ORDER BY pid;
		 COMMIT;");
	my $expected = join("\n", map { "terminated|$_->{pid}" } sort { $a->{pid} <=> $b->{pid} } @f_stale);
	is($out, $expected,
		'f: inside the old transaction the rule function terminates only the victims that stayed idle');
	for my $v (@f_stale)
	{
		poll("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $v->{pid}",
			'0', 'an f_stale victim to exit');
	}

	run_sql($controller, "SELECT pg_advisory_unlock($BLOCKER)");
	my $survivors = 0;
	for my $v (@f_active)
	{
		my (undef, $e) = wait_sql($v);
		my ($one, $e2) = run_sql($v, 'SELECT 1; COMMIT;');
		$survivors++ if $e eq '' && $e2 eq '' && $one eq '1' && alive($v);
	}
	for my $v (@f_newxact)
	{
		my ($one, $e2) = run_sql($v, 'SELECT 1; COMMIT;');
		$survivors++ if $e2 eq '' && $one eq '1' && alive($v);
	}
	is($survivors, @f_active + @f_newxact,
		'f: every victim that became active or began a new transaction survived');
	close_session($_) for (@all, $reader);
}

close_session($actor);
close_session($controller);
$node->stop;
done_testing();
