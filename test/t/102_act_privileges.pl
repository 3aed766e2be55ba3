# 102_act_privileges.pl - who may signal whom: connwatch against core.
#
# Callers: a plain role; a member of the victim's role with and without
# INHERIT; a pg_signal_backend member with and without INHERIT; a pg_monitor
# member; a superuser.  Targets: the caller's own session, another
# (non-superuser) role's session, a superuser's session, the autovacuum
# launcher, a background worker (the logical replication launcher) and a
# walsender (a physical replication connection of a REPLICATION role).
#
# In every cell connwatch.cancel_backend(pid, backend_start) is compared
# with core's pg_cancel_backend(pid) (the same permission rule as
# terminate; cancelling an idle process or a pg_sleep() is harmless):
#   - client-backend targets the caller may see (pg_stat_activity's rule):
#     our boolean equals core's (core's ERROR 42501 counts as false); when
#     we say true the target's statement really is cancelled, when we say
#     false it keeps running.
#   - targets the caller may not see: ours is false with 'not permitted',
#     whatever core says (a pg_signal_backend member without
#     pg_read_all_stats may cancel another role's statement with core, but
#     cannot even read its backend_start): any other reason would tell
#     what pg_stat_activity hides.
#   - the caller's own session: core lets anyone cancel their own
#     statement, the primitive never signals its caller ('own session').
#   - non-client targets: ours is false ('not a client backend', or 'not
#     permitted' where the caller may not see them) even where core
#     succeeds, and the process is left alone.
# Then the rule functions' visibility rule: with pg_signal_backend but
# without pg_read_all_stats other roles' sessions are invisible, so nothing
# of theirs is acted on; with pg_monitor + pg_signal_backend (the README
# recipe) a non-superuser's idle transaction is terminated and a
# superuser's is skipped as 'superuser'.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use FindBin;
use lib "$FindBin::Bin/lib";
use ConnwatchTest qw(send_sql wait_sql run_sql close_session);

my $node = PostgreSQL::Test::Cluster->new('privs');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "max_connections = 40\n");
# autovacuum stays on: its launcher is one of the targets.
$node->start;

my @callers = (
	[ plain            => 'regress_plain' ],
	[ member_inherit   => 'regress_member_inh' ],
	[ member_noinherit => 'regress_member_noinh' ],
	[ signal_inherit   => 'regress_sig_inh' ],
	[ signal_noinherit => 'regress_sig_noinh' ],
	[ monitor          => 'regress_monitor' ],
	[ superuser        => 'regress_su' ],);

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_victim LOGIN;
CREATE ROLE regress_super_victim LOGIN SUPERUSER;
CREATE ROLE regress_repl LOGIN REPLICATION;

CREATE ROLE regress_plain LOGIN;
CREATE ROLE regress_member_inh LOGIN INHERIT;
CREATE ROLE regress_member_noinh LOGIN NOINHERIT;
GRANT regress_victim TO regress_member_inh, regress_member_noinh;
CREATE ROLE regress_sig_inh LOGIN INHERIT;
CREATE ROLE regress_sig_noinh LOGIN NOINHERIT;
GRANT pg_signal_backend TO regress_sig_inh, regress_sig_noinh;
CREATE ROLE regress_monitor LOGIN;
GRANT pg_monitor TO regress_monitor;
CREATE ROLE regress_su LOGIN SUPERUSER;

-- the visibility part
CREATE ROLE regress_sig_only LOGIN;
GRANT pg_signal_backend TO regress_sig_only;
CREATE ROLE regress_cleanup LOGIN;
GRANT pg_monitor, pg_signal_backend TO regress_cleanup;

-- the README recipe: EXECUTE on the action functions
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['regress_plain', 'regress_member_inh',
        'regress_member_noinh', 'regress_sig_inh', 'regress_sig_noinh',
        'regress_monitor', 'regress_su', 'regress_sig_only', 'regress_cleanup']
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION
            connwatch.cancel_backend(integer, timestamptz, text),
            connwatch.terminate_backend(integer, timestamptz, text),
            connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text)
            TO %I', r);
    END LOOP;
END
$$;
});

#
# Helpers (send_sql, wait_sql, run_sql and close_session come from
# ConnwatchTest)
#
sub session
{
	my ($app, $user, %opt) = @_;
	local %ENV = %ENV;
	$ENV{PGAPPNAME} = $app;
	$ENV{PGUSER}    = $user if defined $user;
	my $s = $node->background_psql('postgres', on_error_stop => 0, %opt);
	$s->set_query_timer_restart;
	my $self = { psql => $s, app => $app, user => $user };
	return $self if $opt{replication};
	my ($row) = run_sql($self,
		q{SELECT pg_backend_pid() || '|' || backend_start
		  FROM pg_catalog.pg_stat_activity WHERE pid = pg_backend_pid()});
	@$self{qw(pid start)} = split /\|/, $row;
	return $self;
}

my $controller = session('regress_priv_controller');

sub query
{
	my ($sql) = @_;
	my ($out, $err) = run_sql($controller, $sql);
	die "controller query failed: $err" if $err ne '';
	return $out;
}

sub poll
{
	my ($sql, $expected, $what) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my $got;
	while (time < $deadline)
	{
		$got = query($sql);
		return 1 if $got eq $expected;
		usleep(20_000);
	}
	die "timed out waiting for $what (last result: '$got')";
}

#
# Targets
#
my %caller_session;
$caller_session{ $_->[0] } = session("regress_caller_$_->[0]", $_->[1])
  for @callers;

# Client targets run a long pg_sleep(): a cancel is visible as the
# statement's error, its absence as the statement still running.
my %client_target = (
	other_role => session('regress_target_other', 'regress_victim'),
	superuser  => session('regress_target_super', 'regress_super_victim'),);

sub start_sleeping
{
	my ($t) = @_;
	send_sql($t, 'SELECT pg_sleep(600)');
	poll(
		"SELECT state = 'active' AND wait_event = 'PgSleep'
		 FROM pg_catalog.pg_stat_activity WHERE pid = $t->{pid}",
		't', "target $t->{pid} to sleep");
	$t->{query_start} = query(
		"SELECT query_start FROM pg_catalog.pg_stat_activity WHERE pid = $t->{pid}");
	return;
}

# Still sleeping in the very statement started by start_sleeping()?
sub still_sleeping
{
	my ($t) = @_;
	return query(
		"SELECT count(*) FROM pg_catalog.pg_stat_activity
		 WHERE pid = $t->{pid} AND backend_start = '$t->{start}'
		   AND state = 'active' AND query_start = '$t->{query_start}'") eq '1';
}

# Wait for the cancel to reach the target's statement; true if it did.
sub was_cancelled
{
	my ($t) = @_;
	my (undef, $err) = wait_sql($t);
	return $err =~ /ERROR:  canceling statement due to user request/;
}

start_sleeping($_) for values %client_target;

# The walsender: a physical replication connection, idle (a cancel of an
# idle walsender is ignored, as for an idle client).
my $walsender = session('regress_target_walsender', 'regress_repl',
	replication => 'true');
poll(
	"SELECT count(*) FROM pg_catalog.pg_stat_activity
	 WHERE backend_type = 'walsender' AND usename = 'regress_repl'",
	'1', 'the walsender');

my %non_client;
for my $t (
	[ autovacuum_launcher => 'autovacuum launcher' ],
	[ background_worker   => 'logical replication launcher' ],
	[ walsender           => 'walsender' ])
{
	my $row = query(
		"SELECT pid || '|' || backend_start FROM pg_catalog.pg_stat_activity
		 WHERE backend_type = '$t->[1]'");
	die "no $t->[1] found" unless $row =~ /^\d+\|/;
	my ($pid, $start) = split /\|/, $row;
	$non_client{ $t->[0] } = { pid => $pid, start => $start, type => $t->[1] };
}

#
# The matrix
#

# connwatch.cancel_backend() as the caller: (boolean, reason from the
# WARNING or '').
sub ours
{
	my ($caller, $pid, $start) = @_;
	my ($out, $err) = run_sql($caller,
		"SELECT connwatch.cancel_backend($pid, '$start')");
	my $reason = '';
	$reason = $1 if $err =~ /WARNING:  session not signalled: (.*)/;
	# signalling itself cancels the caller's own statement
	return (1, 'cancelled itself') if $err =~ /ERROR:  canceling statement due to user request/;
	return (0, "error: $err") if $err =~ /ERROR|FATAL|psql exited/;
	return ($out eq 't' ? 1 : 0, $reason);
}

# pg_cancel_backend() as the caller: (boolean, message).  A refusal is
# ERROR 42501; cancelling one's own statement shows as the statement's
# "canceling statement" error.
sub core
{
	my ($caller, $pid) = @_;
	my ($out, $err) = run_sql($caller,
		"\\set VERBOSITY verbose\nSELECT pg_cancel_backend($pid);\n\\set VERBOSITY default");
	return (1, 'signalled') if $out eq 't';
	return (1, 'cancelled itself') if $err =~ /ERROR:  57014: canceling statement due to user request/;
	return (0, '42501') if $err =~ /ERROR:  42501: must be a/;
	return (0, "unexpected: $out $err");
}

# Whether a caller may see a target's session, by pg_stat_activity's rule:
# superusers and pg_read_all_stats (in pg_monitor) see every session, an
# INHERIT member of the victim's role sees the victim's.
sub sees
{
	my ($cname, $tname) = @_;
	return 1 if $cname eq 'superuser' || $cname eq 'monitor';
	return 1 if $cname eq 'member_inherit' && $tname eq 'other_role';
	return 0;
}

my %matrix;     # $matrix{caller}{target} = "ours/core"
my @targets = qw(own other_role superuser autovacuum_launcher background_worker walsender);

# Own session and client targets.
for my $c (@callers)
{
	my ($cname) = @$c;
	my $cs = $caller_session{$cname};

	# own session
	{
		my ($o, $why) = ours($cs, $cs->{pid}, $cs->{start});
		my ($k, $kwhy) = core($cs, $cs->{pid});
		is("$o $why", '0 own session',
			"$cname x own session: ours refuses ('own session')");
		is($k, 1, "$cname x own session: core allows cancelling one's own statement");
		$matrix{$cname}{own} = "$o/$k";
	}

	for my $tname ('other_role', 'superuser')
	{
		my $t = $client_target{$tname};
		my ($o, $why) = ours($cs, $t->{pid}, $t->{start});
		if ($o)
		{
			ok(was_cancelled($t), "$cname x $tname: ours true and the statement was cancelled");
			start_sleeping($t);
		}
		else
		{
			ok(still_sleeping($t), "$cname x $tname: ours false and the statement still runs");
		}
		my ($k, $kwhy) = core($cs, $t->{pid});
		if ($k)
		{
			ok(was_cancelled($t), "$cname x $tname: core true and the statement was cancelled");
			start_sleeping($t);
		}
		if (sees($cname, $tname))
		{
			is($o, $k, "$cname x $tname: ours ($o, '$why') matches core ($k, $kwhy)");
		}
		else
		{
			is($o, 0, "$cname x $tname: ours refuses a session the caller may not see (core: $k, $kwhy)");
		}
		if (!$o)
		{
			my $expected = (sees($cname, $tname) && $tname eq 'superuser')
			  ? 'superuser' : 'not permitted';
			is($why, $expected, "$cname x $tname: the WARNING says '$expected'");
		}
		$matrix{$cname}{$tname} = "$o/$k";
	}
}

# Non-client targets: first ours for every caller, then check that nothing
# was signalled, then core's answer (which may signal: the logical
# replication launcher exits on a cancel and is restarted, so core goes
# last).
my $log_offset = -s $node->logfile;
for my $tname (qw(autovacuum_launcher background_worker walsender))
{
	my $t = $non_client{$tname};
	for my $c (@callers)
	{
		my ($cname) = @$c;
		my ($o, $why) = ours($caller_session{$cname}, $t->{pid}, $t->{start});
		my $expected = sees($cname, $tname) ? 'not a client backend' : 'not permitted';
		is("$o $why", "0 $expected", "$cname x $tname: ours refuses ('$expected')");
		$matrix{$cname}{$tname} = "$o/";
	}
}
# The replication connection still answers, on the same walsender.
{
	my ($out, $err) = run_sql($walsender, 'IDENTIFY_SYSTEM');
	like($out, qr/^\d+\|1\|/, 'the walsender still works');
}
for my $tname (qw(autovacuum_launcher background_worker walsender))
{
	my $t = $non_client{$tname};
	is( query(
			"SELECT count(*) FROM pg_catalog.pg_stat_activity
			 WHERE pid = $t->{pid} AND backend_start = '$t->{start}'"),
		'1',
		"$tname: the same process is still there");
}
unlike(
	slurp_file($node->logfile, $log_offset),
	qr/canceling statement due to user request|exited with exit code/,
	'no non-client process reported a cancel after our calls');

my %core_allows = (
	autovacuum_launcher => { superuser => 1 },
	background_worker   => { superuser => 1 },
	walsender => { superuser => 1, signal_inherit => 1 },);
for my $tname (qw(autovacuum_launcher background_worker walsender))
{
	my $t = $non_client{$tname};
	for my $c (@callers)
	{
		my ($cname) = @$c;
		my ($k, $kwhy) = core($caller_session{$cname}, $t->{pid});
		$matrix{$cname}{$tname} .= $k;
		# Core answers by its own rules (role-less processes: superusers
		# only; the walsender's role is regress_repl): recorded to show
		# where core would signal what we refuse.
		is($k, $core_allows{$tname}{$cname} // 0,
			"$cname x $tname: core says $k ($kwhy)");
	}
}

note("cancel_backend: ours/core (1 = signalled), own session deliberately 0");
note(sprintf("%-17s" . (" %-10s" x @targets), 'caller', map { substr($_, 0, 10) } @targets));
for my $c (@callers)
{
	my ($cname) = @$c;
	note(sprintf("%-17s" . (" %-10s" x @targets), $cname,
		map { $matrix{$cname}{$_} } @targets));
}

#
# Visibility: rule functions act only on sessions the caller may see.
#
for my $t (values %client_target)
{
	query("SELECT pg_cancel_backend($t->{pid})");
	ok(was_cancelled($t), "target $t->{app} released");
	close_session($t);
}

sub idle_in_transaction
{
	my ($user) = @_;
	my $s = session('regress_vis', $user);
	my (undef, $err) = run_sql($s, 'BEGIN; SELECT 1;');
	die "victim: $err" if $err ne '';
	return $s;
}

sub alive
{
	my ($s) = @_;
	return query(
		"SELECT count(*) FROM pg_catalog.pg_stat_activity
		 WHERE pid = $s->{pid} AND backend_start = '$s->{start}'") eq '1';
}

my $victim       = idle_in_transaction('regress_victim');
my $super_victim = idle_in_transaction('regress_super_victim');

sub rule_as
{
	my ($user, $dry_run) = @_;
	my $s = session('regress_cleanup_run', $user);
	my ($out, $err) = run_sql($s,
		"SELECT usename || '|' || action || '|'
		        || regexp_replace(reason, ' for .*', '')
		 FROM connwatch.terminate_idle_in_transaction('0', dry_run => $dry_run,
		      application_name => 'regress_vis')
		 ORDER BY usename COLLATE \"C\"");
	close_session($s);
	return $out if $err eq '';
	# the one message a rule function may add: the sessions it could not judge
	die "rule function failed: $err"
	  unless $err =~ /^psql:<stdin>:\d+: NOTICE:  (\d+) sessions? (?:was|were) not considered: (?:its|their) state is hidden from role "\Q$user\E"\nDETAIL: .*\nHINT:  Grant pg_read_all_stats .*\n?$/;
	return "$out [hidden: $1]";
}

# pg_signal_backend without pg_read_all_stats: blind to other roles, and
# told so: the two idle transactions match the filter but cannot be judged.
is(rule_as('regress_sig_only', 'true'), ' [hidden: 2]',
	'pg_signal_backend alone: dry run sees no other role\'s session, and a NOTICE counts them');
is(rule_as('regress_sig_only', 'false'), ' [hidden: 2]',
	'pg_signal_backend alone: nothing of other roles is acted on');
ok(alive($victim) && alive($super_victim), '... and both idle transactions are alive');

# A member of the victim's role (INHERIT) sees the victim's session through
# its role privileges, not the superuser's.
is(rule_as('regress_member_inh', 'true'),
	'regress_victim|would terminate|idle in transaction [hidden: 1]',
	'member of the victim\'s role: a dry run sees only the victim\'s session, and counts the superuser\'s as hidden');

# The README recipe: pg_monitor (for pg_read_all_stats) + pg_signal_backend.
is(rule_as('regress_cleanup', 'true'),
	"regress_super_victim|skipped|superuser\nregress_victim|would terminate|idle in transaction",
	'pg_monitor + pg_signal_backend: dry run would terminate the role session, skips the superuser');
ok(alive($victim) && alive($super_victim), '... a dry run leaves both alive');
is(rule_as('regress_cleanup', 'false'),
	"regress_super_victim|skipped|superuser\nregress_victim|terminated|idle in transaction",
	'pg_monitor + pg_signal_backend: terminates the role session, skips the superuser');
poll("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $victim->{pid}",
	'0', 'the victim to exit');
ok(alive($super_victim), "the superuser's idle transaction is alive");
is( query(
		q{SELECT string_agg(action || '|' || usename || '|' || invoked_by, ','
		                    ORDER BY action COLLATE "C", usename COLLATE "C",
		                             invoked_by COLLATE "C")
		  FROM connwatch.terminations}),
	join(',',
		'cancelled|regress_super_victim|regress_su',
		'cancelled|regress_victim|regress_member_inh',
		'cancelled|regress_victim|regress_su',
		'terminated|regress_victim|regress_cleanup'),
	'the audit trail holds exactly the three cancels of the matrix and the one termination');

close_session($_) for ($victim, $super_victim, $walsender, $controller,
	values %caller_session);
$node->stop;
done_testing();
