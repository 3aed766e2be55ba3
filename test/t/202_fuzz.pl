# 202_fuzz.pl - fuzzing pg_connwatch: sqlsmith, then a randomized driver
# over every function signature of schema connwatch.
#
# Why: the hand-written tests call the functions with the values their
# authors thought of.  Fuzzing earlier found what they missed: enforce()
# crashed on NULL policy columns; an older_than of '178000000 years -1 day'
# (accepted by the policies' CHECK, since SQL compares intervals in 128
# bits) overflowed to INT64_MIN in C, so the policy matched a session idle
# for one second; skip reasons told a caller hidden state of sessions it
# may not see.  This test keeps looking for that kind of bug.
#
# What runs, within CONNWATCH_FUZZ_SECONDS (default 40) for the whole file
# (each sqlsmith run gets a fifth of it, at least 5 s; the two driver runs
# share what is left, at least 3 s each; setup and verdicts come on top):
#
# 1. sqlsmith (Debian package) twice, with the fixed seed 42 and with a
#    random seed (CONNWATCH_FUZZ_SEED, or derived from the clock; printed),
#    --max-queries bounded (CONNWATCH_FUZZ_QUERIES) and under timeout(1),
#    with --exclude-catalog so that its queries draw on the connwatch views
#    and tables.  It connects as regress_fuzz, a role that is not a
#    superuser, has neither pg_signal_backend nor pg_read_all_stats, and was
#    granted USAGE on the schema, SELECT on every relation and EXECUTE on
#    every routine of schema connwatch by a loop over the catalog (so
#    objects added later are covered).  statement_timeout = 1s for the role
#    keeps pg_sleep() and friends from eating the budget, and
#    pg_terminate_backend() is revoked from PUBLIC so that sqlsmith cannot
#    end its own connection.  Throwaway sessions (below) give the views
#    rows in every state.
#
# 2. A driver (DBD::Pg, prepared statements with bind parameters) that
#    enumerates pg_proc for schema connwatch and calls every signature many
#    times, each argument drawn from a pool of edge values for its type:
#    intervals that overflow 64-bit microseconds, pids of the postmaster,
#    of auxiliary processes, of its own and of other sessions, timestamps at
#    both ends of the range and backend_start values right and off by one
#    microsecond, 100,000-character and multibyte strings, LIKE
#    metacharacters, NULLs.  Arguments with defaults are sometimes left
#    out.  It also validates random connwatch.* settings (set_config(...,
#    true)), and as a superuser writes random rows into connwatch.policies
#    (most rejected by the CHECKs, the others applied by enforce()).
#    It runs twice: as regress_fuzz with seed 42 (its victims are sessions of
#    regress_fuzz_victim, a role it is a member of, and regress_fuzz_other's
#    sessions are hidden from it), then as a superuser with the random seed
#    and a random kill budget (max_terminations_per_run), who may only act
#    for real on the test's throwaway sessions: its real calls are narrowed
#    to their application_name, it never pairs a session of the test's
#    infrastructure with its right backend_start, and real policies name
#    the throwaway applications (all others are dry runs).
#
# What fails the test (each check can fail):
#   - a crash: postmaster.pid changed, or the server log says "terminated by
#     signal", "was terminated", "PANIC", "reinitializing", "exited with
#     exit code"; a driver connection lost; sqlsmith reporting a lost
#     connection ('C') or ending abnormally;
#   - any error of class XX (internal_error: an elog(), data_corrupted,
#     index_corrupted) from a driver call, or one the server log locates in
#     the extension's code: user-triggerable errors need a proper errcode;
#   - oracles on the results: an action row younger than its older_than,
#     not matching its filters or state, in a dry run but signalled, about a
#     session the caller may not see, or the caller's own; a NULL accepted
#     where the README says 22004; a negative older_than accepted or a
#     non-negative one called negative (compared as SQL compares intervals);
#     long_transactions(t) rows younger than t; a signal sent to a session
#     the test does not own, or that the caller may not signal;
#   - hidden state leaking: for sessions the non-superuser may not see,
#     terminate_backend()/cancel_backend() must answer the same whatever
#     backend_start it passes and whatever state the session is in;
#   - connwatch.terminations rows not matching the signals the driver saw;
#     the test's own infrastructure (monitor session, auxiliary processes)
#     signalled;
#   - fewer than 20 calls reaching each signature in each run (not stopped
#     by a parameter's input conversion or a missing privilege), so that
#     the test cannot silently do nothing.
#
# Every error the driver sees is counted by SQLSTATE and printed, with one
# example call each.  The last line is greppable:
#   # fuzz: N sqlsmith queries (seed 42 and seed S), M driver calls over K signatures, 0 crashes
# The seeds fix the random choices; pids and timing still differ between
# runs, so a replay explores the same kind of calls, not the same bytes.
#
# Majors 13 to 18, with the same checks on each.  The library's path comes
# from the server's pg_config view ($node->config_data() is 15+ only).
# pg_terminate_backend() is revoked in whatever signature the major has:
# (integer) on 13, (integer, bigint) from 14.  Edge values the server cannot
# parse are dropped and listed (see the pools): interval 'infinity' before
# 17, and on 13 also '9223372036854775807 microseconds' and its negative,
# which 13's interval input rejects as out of range (22015); the other
# beyond-64-bit intervals remain in the pool there.

use strict;
use warnings;

use DBI;
use DBD::Pg qw(:async);
use File::Basename qw(basename);
use FindBin;
use IPC::Run;
use List::Util qw(sum0);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $BUDGET           = $ENV{CONNWATCH_FUZZ_SECONDS} // 40;
my $SQLSMITH_QUERIES = $ENV{CONNWATCH_FUZZ_QUERIES} // 400;       # per run
my $DRIVER_CALLS     = $ENV{CONNWATCH_FUZZ_CALLS}   // 50_000;    # per run
my $MIN_CALLS        = 20;    # calls reaching each signature, per driver run
my $MIN_QUERIES      = 10;    # per sqlsmith run, even on a loaded machine
my $FIXED_SEED       = 42;
my $RANDOM_SEED      = $ENV{CONNWATCH_FUZZ_SEED}
  // (int(time() * 1000) + $$) % 2_147_483_647;

my $started = time;
diag("fuzz seeds: fixed $FIXED_SEED, random $RANDOM_SEED "
	  . "(replay with CONNWATCH_FUZZ_SEED=$RANDOM_SEED); budget ${BUDGET}s");

#
# The node
#
my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
# a crash must not end the run: keep fuzzing, report, fail
restart_after_crash = on
# the remember layer's hooks and functions are fuzzed too
shared_preload_libraries = 'pg_connwatch'
# thousands of statements: log only errors, with where they came from
log_statement = none
log_error_verbosity = verbose
log_parameter_max_length_on_error = 200
max_connections = 60
});
$node->start;

my $host = $node->host;
my $port = $node->port;
my $postmaster_pid = read_postmaster_pid();
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
{
	# the server's own pg_config view (every major; config_data() is 15+)
	my $lib = $node->safe_psql('postgres',
		q{SELECT setting FROM pg_catalog.pg_config WHERE name = 'PKGLIBDIR'})
	  . '/pg_connwatch.so';
	diag("testing $lib, modified " . localtime((stat $lib)[9]));
}

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
-- the fuzzing caller, and the owners of the throwaway sessions
CREATE ROLE regress_fuzz LOGIN;
CREATE ROLE regress_fuzz_victim LOGIN;    -- regress_fuzz may see and signal these
CREATE ROLE regress_fuzz_other LOGIN;     -- these are hidden from regress_fuzz
GRANT regress_fuzz_victim TO regress_fuzz;
ALTER ROLE regress_fuzz SET statement_timeout = '1s';
GRANT USAGE ON SCHEMA connwatch TO regress_fuzz;
DO $$
DECLARE
    obj text;
BEGIN
    FOR obj IN SELECT p.oid::pg_catalog.regprocedure::text
               FROM pg_catalog.pg_proc p
               WHERE p.pronamespace = 'connwatch'::pg_catalog.regnamespace
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO regress_fuzz', obj);
    END LOOP;
    FOR obj IN SELECT c.oid::pg_catalog.regclass::text
               FROM pg_catalog.pg_class c
               WHERE c.relnamespace = 'connwatch'::pg_catalog.regnamespace
                 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO regress_fuzz', obj);
    END LOOP;
END
$$;
-- sqlsmith calls any routine of pg_proc; pg_terminate_backend(its own pid)
-- would end its connection and look like a crash.  Every signature: it is
-- (integer, bigint) from PostgreSQL 14, (integer) in 13.
DO $$
DECLARE
    obj text;
BEGIN
    FOR obj IN SELECT p.oid::pg_catalog.regprocedure::text
               FROM pg_catalog.pg_proc p
               WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
                 AND p.proname = 'pg_terminate_backend'
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', obj);
    END LOOP;
END
$$;
});

note('pg_terminate_backend() revoked from PUBLIC in: '
	  . $node->safe_psql(
		'postgres', q{
SELECT string_agg(p.oid::regprocedure::text, ', ')
FROM pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = 'pg_terminate_backend'})
	  . ' (13 has only (integer); 14 and later (integer, bigint))');

is( $node->safe_psql(
		'postgres', q{
SELECT r.rolsuper,
       pg_has_role('regress_fuzz', 'pg_signal_backend', 'MEMBER'),
       pg_has_role('regress_fuzz', 'pg_read_all_stats', 'MEMBER'),
       (SELECT count(*) FROM pg_proc p
        WHERE p.pronamespace = 'connwatch'::regnamespace
          AND NOT has_function_privilege('regress_fuzz', p.oid, 'EXECUTE')),
       (SELECT count(*) FROM pg_class c
        WHERE c.relnamespace = 'connwatch'::regnamespace AND c.relkind IN ('r', 'v')
          AND NOT has_table_privilege('regress_fuzz', c.oid, 'SELECT')),
       (SELECT count(*) FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND p.proname = 'pg_terminate_backend'
          AND has_function_privilege('regress_fuzz', p.oid, 'EXECUTE'))
FROM pg_roles r WHERE r.rolname = 'regress_fuzz'}),
	'f|f|f|0|0|0',
	'regress_fuzz: no superuser, no pg_signal_backend, no pg_read_all_stats; '
	  . 'EXECUTE on every connwatch routine and SELECT on every relation; '
	  . 'no EXECUTE on pg_terminate_backend()');

#
# Small helpers
#
sub read_postmaster_pid
{
	my ($line) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	return $line;
}

sub connect_as
{
	my ($user, $app, %attr) = @_;
	return DBI->connect(
		"dbi:Pg:dbname=postgres;host=$host;port=$port;application_name=$app",
		$user, '',
		{
			AutoCommit => 1,
			RaiseError => 0,
			PrintError => 0,
			PrintWarn  => 0,
			%attr
		});
}

# A value as it reads in a report: long strings abbreviated
sub render
{
	my ($v) = @_;
	return 'NULL' unless defined $v;
	my $s = $v;
	if (length($s) > 60)
	{
		my $head = substr($s, 0, 20);
		$s = "$head... (" . length($v) . ' chars)';
	}
	$s =~ s/\n/\\n/g;
	return "'$s'";
}

sub one_line
{
	my ($s) = @_;
	$s //= '';
	$s =~ s/\s*\n\s*/ | /g;
	return length($s) > 300 ? substr($s, 0, 300) . '...' : $s;
}

#
# Findings: everything that fails the test, by kind, with examples
#
my %findings;    # kind => class => { n, examples }
my @finding_order;

sub finding
{
	my ($kind, $class, $example) = @_;
	my $f = $findings{$kind}{$class};
	if (!$f)
	{
		$f = $findings{$kind}{$class} = { n => 0, examples => [] };
		push @finding_order, [ $kind, $class ];
	}
	$f->{n}++;
	push @{ $f->{examples} }, $example
	  if defined $example
	  && @{ $f->{examples} } < 3
	  && !grep { $_ eq $example } @{ $f->{examples} };
	return;
}

sub findings_of
{
	my ($kind) = @_;
	return sum0(map { $_->{n} } values %{ $findings{$kind} // {} });
}

sub check_findings
{
	my ($kind, $title) = @_;
	my @classes = map { $_->[1] } grep { $_->[0] eq $kind } @finding_order;
	my @lines;
	for my $class (@classes)
	{
		my $f = $findings{$kind}{$class};
		push @lines, "[$f->{n}x] $class", map { "      e.g. $_" } @{ $f->{examples} };
	}
	ok(!@classes, $title)
	  or diag("$title: "
		  . findings_of($kind) . ' occurrence(s) in '
		  . scalar(@classes)
		  . " class(es):\n  "
		  . join("\n  ", @lines));
	return;
}

#
# The monitor: a superuser session of the test's infrastructure that reads
# the true state of every backend.  It must survive everything.
#
my $monitor;
my $monitor_identity;

sub monitor_connect
{
	$monitor = connect_as($superuser, 'cwfuzz_monitor')
	  or die "cannot connect the monitor: $DBI::errstr";
	$monitor_identity = $monitor->selectrow_array(
		q{SELECT pid || '@' || backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()});
	return;
}

# Wait until the server accepts connections again (after a crash)
sub wait_for_server
{
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $dbh = connect_as($superuser, 'cwfuzz_probe');
		if ($dbh)
		{
			$dbh->disconnect;
			return 1;
		}
		usleep(200_000);
	}
	BAIL_OUT('the server did not come back');
}

sub monitor_rows
{
	my ($sql, @bind) = @_;
	for my $attempt (1 .. 2)
	{
		my $rows = $monitor->selectall_arrayref($sql, undef, @bind);
		return $rows if $rows;
		die "monitor query failed: " . $monitor->errstr
		  if $monitor->ping;
		finding('infrastructure', 'the monitor session was lost', $monitor_identity);
		wait_for_server();
		monitor_connect();
	}
	die "monitor query failed twice";
}

monitor_connect();

#
# Throwaway sessions: the only ones the driver may really signal.  Each is
# re-created when it was killed or left its state.
#
my @VICTIM_SPECS = (
	[ regress_fuzz_victim => 'throwaway_v', 'idle' ],
	[ regress_fuzz_victim => 'throwaway_v', 'idle in transaction' ],
	[ regress_fuzz_victim => 'throwaway_v', 'idle in transaction (aborted)' ],
	[ regress_fuzz_victim => 'throwaway_v', 'active' ],
	[ regress_fuzz_victim => 'throwaway_v', 'active', 'in a transaction' ],
	[ regress_fuzz_other  => 'throwaway_h', 'idle' ],
	[ regress_fuzz_other  => 'throwaway_h', 'idle in transaction' ],
	[ regress_fuzz_other  => 'throwaway_h', 'active' ],);
my @THROWAWAY_PATTERNS = ('throwaway_v', 'throwaway_h', 'throwaway%', 'throwaway__');
my @victims;
my $victims_created = 0;

sub start_victim
{
	my ($spec) = @_;
	my ($role, $app, $state, $in_xact) = @$spec;
	my $dbh = connect_as($role, $app)
	  or die "cannot connect a throwaway session as $role: $DBI::errstr";
	if ($state eq 'idle in transaction' || $in_xact)
	{
		$dbh->begin_work;
		$dbh->do('SELECT pg_catalog.txid_current()');
	}
	elsif ($state eq 'idle in transaction (aborted)')
	{
		$dbh->begin_work;
		$dbh->do('SELECT 1/0');
	}
	$dbh->do('SELECT pg_catalog.pg_sleep(3600)', { pg_async => PG_ASYNC })
	  if $state eq 'active';
	$victims_created++;
	return {
		spec    => $spec,
		dbh     => $dbh,
		pid     => $dbh->{pg_pid},
		role    => $role,
		app     => $app,
		state   => $state,
		started => time
	};
}

sub discard_victim
{
	my ($v) = @_;
	eval { $v->{dbh}->pg_cancel if $v->{state} eq 'active'; 1 };
	eval { $v->{dbh}->disconnect; 1 };
	return;
}

sub victim_pids
{
	return { map { $_->{pid} => $_ } @victims };
}

#
# Snapshot of every backend, as the monitor (a superuser) sees it
#
my @INFRA_TYPES = (
	'autovacuum launcher', 'logical replication launcher',
	'checkpointer',        'background writer',
	'walwriter');
my %dead_pids;

sub take_snapshot
{
	my $rows = monitor_rows(
		q{
SELECT pid, backend_start::text,
       (backend_start - interval '1 microsecond')::text,
       (backend_start + interval '1 microsecond')::text,
       coalesce(usename::text, ''), coalesce(application_name, ''),
       coalesce(backend_type, ''), coalesce(state, ''),
       coalesce(pg_has_role('regress_fuzz', usesysid, 'USAGE'), false)
FROM pg_catalog.pg_stat_activity
WHERE backend_start IS NOT NULL
ORDER BY pid});
	my %by_pid;
	for my $r (@$rows)
	{
		$by_pid{ $r->[0] } = {
			pid        => $r->[0],
			start      => $r->[1],
			before     => $r->[2],
			after      => $r->[3],
			role       => $r->[4],
			app        => $r->[5],
			type       => $r->[6],
			state      => $r->[7],
			fuzz_sees  => $r->[8],
		};
	}
	return { by_pid => \%by_pid, list => [ map { $by_pid{ $_->[0] } } @$rows ] };
}

# Keep every throwaway session alive and in its state
sub upkeep_victims
{
	my ($snap) = @_;
	@victims = map { start_victim($_) } @VICTIM_SPECS unless @victims;
	for my $i (0 .. $#victims)
	{
		my $v    = $victims[$i];
		my $seen = $snap->{by_pid}{ $v->{pid} };
		# a new session may not show in pg_stat_activity yet
		next if time - $v->{started} < 1;
		next if $seen && $seen->{state} eq $v->{state};
		$dead_pids{ $v->{pid} } = 1 unless $seen;
		discard_victim($v);
		$victims[$i] = start_victim($v->{spec});
	}
	return;
}

# The identities of what the driver must never touch
sub infrastructure
{
	my ($snap) = @_;
	my %infra = (monitor => $monitor_identity);
	for my $b (@{ $snap->{list} })
	{
		$infra{"$b->{type} $b->{pid}"} = "$b->{pid}\@$b->{start}"
		  if grep { $_ eq $b->{type} } @INFRA_TYPES;
	}
	return \%infra;
}

#
# Edge values, by type.  Values this server cannot parse are dropped (and
# listed), e.g. interval 'infinity' before PostgreSQL 17, and
# '+-9223372036854775807 microseconds' on 13.
#
my $LONG = 'x' x 100_000;
my %POOL = (
	interval => [
		undef,
		'0', '1 microsecond', '-1 microsecond', '-1 second', '00:00:01', '1 year',
		# zero or near it, judged as a whole (months count 30 days)
		'1 day -86400 s', '1 day -1 microsecond',
		'1 mon -30 days', '-1 mon 31 days', '1 mon -31 days',
		# beyond 64-bit microseconds, positive or negative as a whole
		'178000000 years -1 day', '-178000000 years 1 day', '178000000 years',
		'2147483647 days', '2147483647 days -1 microsecond', '-2147483648 days',
		'2147483647 months -2147483648 days', '-2147483648 months',
		'9223372036854775807 microseconds', '-9223372036854775807 microseconds',
		# PostgreSQL 17 and later only
		'infinity', '-infinity',
	],
	integer => [ undef, 0, -1, 1, 2, 2147483647, -2147483648, 4194304, 99999 ],
	bigint  => [ undef, 0, -1, 1, 2147483648, '9223372036854775807', '-9223372036854775808' ],
	'timestamp with time zone' => [
		undef,
		'-infinity', 'infinity',
		'4714-11-24 00:00:00+00 BC', '4713-01-01 00:00:00+00 BC',
		'294276-12-31 23:59:59+00', '294276-12-31 23:59:59.999999+00',
		'2000-01-01 00:00:00+00',    # 0 in PostgreSQL's internal representation
		'1999-12-31 23:59:59.999999+00', 'epoch', 'now', 'today',
	],
	text => [
		undef,
		'', ' ', '%', '_', '%%', '\\', 'a\\', '\\%', ('%' x 50) . 'x',
		"'", '"', "O'Reilly", "\"it's\"", "a\nb",
		'ñandú 日本語 🐘', 'ä' x 5000, $LONG,
		# names of what exists
		'postgres', 'template1', $superuser, 'regress_fuzz', 'regress_fuzz%',
		'regress_fuzz_victim', 'regress_fuzz_other', 'throwaway_v', 'throwaway_h',
		'throwaway%', 'throwaway_', 'cwfuzz_monitor', 'cwfuzz_%', 'pg_dump', 'pg_cron',
		# schedules, reasons
		'* * * * *', '*/5 * * * *', '61 * * * *', 'requested',
	],
	boolean => [ undef, 'true', 'false' ],
	numeric => [ undef, '0', '100', '50', '99.95', '-1', '100.0001', 'NaN', '1e-300' ],);
$POOL{$_} = $POOL{text}    for ('name', 'character varying');
$POOL{$_} = $POOL{integer} for ('smallint', 'oid');

# Filters (LIKE patterns on datname, usename, application_name): random
# text rarely matches a session, so most are NULL or patterns that match
# something, and the oracles on acted rows get material.
my %MATCHING = (
	datname => [ '%', 'postgres', 'p%', '_ostgres', '%%' ],
	usename => [
		'%', 'regress_fuzz%', 'regress\\_fuzz\\_victim', 'regress_fuzz_other',
		$superuser, '_%'
	],
	application_name =>
	  [ '%', 'throwaway%', 'throwaway_v', 'throwaway__', 'throwaway_h', 'cwfuzz_%' ],);

sub draw_pattern
{
	my ($col) = @_;
	my $r = rand;
	return undef if $r < 0.4;
	return pick($MATCHING{$col}) if $r < 0.75;
	return pick($POOL{text});
}

my %is_negative;    # interval value => whether SQL says it is < '0'
my @dropped;

sub validate_pools
{
	my ($types) = @_;
	for my $type (@$types)
	{
		my @kept;
		for my $v (@{ $POOL{$type} })
		{
			if (!defined $v)
			{
				push @kept, $v;
				next;
			}
			my $row = $monitor->selectrow_arrayref(
				$type eq 'interval'
				? q{SELECT $1::interval < '0'::interval}
				: "SELECT \$1::$type IS NOT NULL",
				undef, $v);
			if (!$row)
			{
				push @dropped, "$type " . render($v) . ' (' . $monitor->state . ')';
				next;
			}
			$is_negative{$v} = $row->[0] if $type eq 'interval';
			push @kept, $v;
		}
		$POOL{$type} = \@kept;
	}
	return;
}

#
# The signatures: every routine of schema connwatch, from the catalog
#
sub split_top_level
{
	my ($s) = @_;
	my @parts;
	my ($cur, $depth, $quoted) = ('', 0, 0);
	for my $c (split //, $s)
	{
		$quoted = !$quoted if $c eq "'";
		$depth++ if !$quoted && $c eq '(';
		$depth-- if !$quoted && $c eq ')';
		if (!$quoted && $depth == 0 && $c eq ',')
		{
			push @parts, $cur;
			$cur = '';
			next;
		}
		$cur .= $c;
	}
	push @parts, $cur if $cur ne '';
	s/^\s+|\s+$//g for @parts;
	return @parts;
}

sub load_signatures
{
	my $rows = monitor_rows(
		q{
SELECT p.proname, pg_get_function_arguments(p.oid), p.proretset,
       coalesce(p.prorettype = to_regtype('connwatch.action'), false),
       coalesce((SELECT array_agg(format_type(t, NULL) ORDER BY i)
                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS u(t, i)), '{}'),
       coalesce(p.proargnames, '{}'), coalesce(p.proargmodes, '{}'), p.prokind
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'connwatch'::regnamespace
ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)});
	my @sigs;
	for my $r (@$rows)
	{
		my ($name, $arguments, $retset, $returns_action, $types, $names, $modes,
			$kind)
		  = @$r;
		my @in_names;
		my @out_names;
		for my $i (0 .. $#$names)
		{
			my $mode = $modes->[$i] // 'i';
			push @in_names,  $names->[$i] if $mode =~ /^[ibv]$/;
			push @out_names, $names->[$i] if $mode =~ /^[obt]$/;
		}
		@in_names = @$names[ 0 .. $#$types ] unless @$modes;
		my @decls = grep { !/^(OUT|TABLE)\b/ } split_top_level($arguments);
		my @args;
		for my $i (0 .. $#$types)
		{
			my ($default) = ($decls[$i] // '') =~ /\bDEFAULT (.*)$/;
			push @args,
			  {
				name    => $in_names[$i] // "arg$i",
				type    => $types->[$i],
				default => $default
			  };
		}
		push @sigs,
		  {
			name           => $name,
			label          => "$name(" . join(', ', @$types) . ')',
			qname          => "connwatch.$name",
			args           => \@args,
			out            => \@out_names,
			retset         => $retset,
			returns_action => $returns_action,
			procedure      => $kind eq 'p',
		  };
	}
	return @sigs;
}

my @SIGNATURES = load_signatures();
# [ name, type ] of each column of connwatch.policies
my @POLICY_COLUMNS = @{
	monitor_rows(
		q{SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		  WHERE attrelid = 'connwatch.policies'::regclass AND attnum > 0 AND NOT attisdropped
		  ORDER BY attnum})
};
{
	my %used = map { $_ => 1 } grep { $POOL{$_} } 'integer', 'timestamp with time zone',
	  'text', (map { $_->{type} } map { @{ $_->{args} } } @SIGNATURES),
	  (map { $_->[1] } @POLICY_COLUMNS);
	validate_pools([ sort keys %used ]);
	diag('edge values this server rejects as input, left out: '
		  . (@dropped ? join(', ', @dropped) : 'none'));
}
my %unknown = map { $_->{type} => 1 } grep { !$POOL{ $_->{type} } }
  map { @{ $_->{args} } } @SIGNATURES;
my @unknown_types = sort keys %unknown;
ok(!@unknown_types,
	'every argument type of a connwatch routine has a pool of edge values')
  or diag('add a pool for: ' . join(', ', @unknown_types));
$POOL{$_} //= [ undef, '', '0', '-1' ] for @unknown_types;
diag(scalar(@SIGNATURES) . ' signatures: ' . join(', ', map { $_->{label} } @SIGNATURES));

sub arg_index
{
	my ($sig, $name) = @_;
	for my $i (0 .. $#{ $sig->{args} })
	{
		return $i if $sig->{args}[$i]{name} eq $name;
	}
	return undef;
}

#
# The SQL of one call.  Functions returning connwatch.action are wrapped in
# the oracles below, evaluated by the server on every row:
#
#   acted rows (terminated, cancelled, would ...) must be at least
#   older_than old (the policy's for enforce()), match the filters and the
#   state, be neither in a dry run (if signalled) nor the caller's own;
#   no row may be about a session the caller may not see; a row names an
#   enabled policy or, for a rule function, none.
#
my %RULE_STATE = (
	terminate_idle                => 'idle',
	terminate_idle_in_transaction => 'idle in transaction',);

sub call_sql
{
	my ($sig, $n) = @_;
	my @args = @{ $sig->{args} };
	my @ph   = map { '$' . ($_ + 1) . "::$args[$_]{type}" } 0 .. $n - 1;
	my $call = "$sig->{qname}(" . join(', ', @ph) . ')';

	# an input argument as the call passes it: its parameter or its default
	my $arg = sub {
		my $i = arg_index($sig, $_[0]);
		return undef unless defined $i;
		return $i < $n ? $ph[$i] : ($args[$i]{default} // 'NULL');
	};

	return ($sig->{procedure} ? 'CALL ' : 'SELECT ') . $call
	  unless $sig->{retset};

	if (!$sig->{returns_action})
	{
		my $thr = $arg->('older_than');
		my $problem =
		  (defined $thr && grep { $_ eq 'xact_age' } @{ $sig->{out} })
		  ? "string_agg('row younger than older_than' || E'\\x1f' || 'pid ' || a.pid || ', xact_age ' || a.xact_age, E'\\x1e')"
		  . " FILTER (WHERE a.xact_age < $thr)"
		  : 'NULL';
		return "SELECT count(*), 0, '', $problem, NULL, 0 FROM $call AS a";
	}

	my $by_rule = defined $arg->('older_than');
	my $thr     = $arg->('older_than') // 'p.older_than';
	my $dry     = $arg->('dry_run') // 'false';
	my $want    = $RULE_STATE{ $sig->{name} } ? "'$RULE_STATE{$sig->{name}}'" : 'p.state';
	my $acted =
	  "(a.action IN ('terminated', 'cancelled', 'would terminate', 'would cancel')"
	  . " AND a.reason IS DISTINCT FROM 'transaction still open after cancel')";
	my @checks = (
		"CASE WHEN $acted AND CASE WHEN a.reason LIKE 'transaction open for %'"
		  . " THEN a.xact_age ELSE a.state_age END < ($thr)"
		  . " THEN 'acted on a session younger than older_than' END",
		"CASE WHEN $acted AND NOT CASE $want"
		  . " WHEN 'idle in transaction' THEN a.state LIKE 'idle in transaction%'"
		  . " WHEN 'idle' THEN a.state = 'idle'"
		  . " WHEN 'active' THEN a.state IN ('active', 'fastpath function call')"
		  . " ELSE true END THEN 'state does not match' END",
		"CASE WHEN $acted AND a.action IN ('cancelled', 'would cancel')"
		  . " AND a.state NOT IN ('active', 'fastpath function call')"
		  . " THEN 'cancel without a running statement' END",
		"CASE WHEN a.action IN ('terminated', 'cancelled')"
		  . " AND (($dry) IS TRUE OR p.dry_run IS TRUE) THEN 'signalled in a dry run' END",
		"CASE WHEN $acted AND a.pid = pg_catalog.pg_backend_pid() THEN 'the caller''s own session' END",
		"CASE WHEN a.usename IS NOT NULL AND NOT pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')"
		  . " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r"
		  . " WHERE r.rolname = a.usename AND pg_catalog.pg_has_role(r.oid, 'USAGE'))"
		  . " THEN 'a session the caller may not see' END",
		$by_rule
		? "CASE WHEN a.policy IS NOT NULL THEN 'a policy from a rule function' END"
		: "CASE WHEN a.policy IS NOT NULL AND (p.name IS NULL OR NOT p.enabled)"
		  . " THEN 'no such enabled policy' END",);
	for my $col (qw(datname usename application_name))
	{
		my $pat = $arg->($col) // "p.$col";
		push @checks,
		  "CASE WHEN $acted AND ($pat) IS NOT NULL AND (a.$col IS NULL"
		  . " OR NOT (a.${col}::text LIKE ($pat) COLLATE \"C\")) THEN '$col does not match' END";
	}
	my $problem = join(",\n    ", @checks);
	return qq{
SELECT count(*),
       count(*) FILTER (WHERE a.action IN ('terminated', 'cancelled')),
       coalesce(string_agg(DISTINCT a.action, ','), ''),
       string_agg(v.problem || E'\\x1f' || 'row (pid ' || a.pid || ', ' || coalesce(a.usename::text, '?')
                  || ', ' || coalesce(a.application_name, '?') || ', ' || coalesce(a.state, '?')
                  || ', ' || a.action || coalesce(', ' || left(a.reason, 60), '')
                  || coalesce(', policy ' || left(a.policy, 40), '')
                  || coalesce(', older_than ' || ($thr), '') || ')', E'\\x1e')
         FILTER (WHERE v.problem <> ''),
       string_agg(a.pid::text, ',') FILTER (WHERE a.action IN ('terminated', 'cancelled')),
       count(*) FILTER (WHERE $acted)
FROM $call AS a
LEFT JOIN connwatch.policies AS p ON p.name = a.policy
CROSS JOIN LATERAL (SELECT concat_ws(', ',
    $problem) AS problem) AS v};
}

#
# Drawing calls
#
sub pick { return $_[0][ int(rand(scalar @{ $_[0] })) ]; }

sub draw
{
	my ($ctx, $type, $name) = @_;
	if ($type eq 'boolean')
	{
		my $r = rand;
		return $r < 0.8 ? 'true' : $r < 0.92 ? 'false' : undef
		  if $name eq 'dry_run';
		return $r < 0.45 ? 'true' : $r < 0.9 ? 'false' : undef;
	}
	return draw_pattern($name) if $MATCHING{$name} && $type eq 'text';
	my $snap = $ctx->{snap};
	if ($type eq 'integer' && rand() < 0.5)
	{
		my @pids = (
			$postmaster_pid, $ctx->{own_pid},
			(map { $_->{pid} } @{ $snap->{list} }),
			sort { $a <=> $b } keys %dead_pids);
		return pick(\@pids);
	}
	if ($type eq 'timestamp with time zone' && rand() < 0.4)
	{
		my $b = pick($snap->{list});
		return $b->{ pick([qw(start before after)]) };
	}
	return pick($POOL{$type});
}

# Arguments with defaults are sometimes left out; a session-identifying
# (pid, backend_start) pair often names a live session, right or off by
# one microsecond.
sub plan_call
{
	my ($ctx, $sig) = @_;
	my @args      = @{ $sig->{args} };
	my $required  = grep { !defined $_->{default} } @args;
	my $n         = rand() < 0.7 ? @args : $required + int(rand(@args - $required + 1));
	my @vals      = map { draw($ctx, $_->{type}, $_->{name}) } @args;
	my ($ipid, $istart) = (arg_index($sig, 'pid'), arg_index($sig, 'backend_start'));
	if (defined $ipid && defined $istart && rand() < 0.6)
	{
		my $target = pick($ctx->{snap}{list});
		$vals[$ipid] = $target->{pid};
		my $r = rand;
		$vals[$istart] =
		    $r < 0.5  ? $target->{start}
		  : $r < 0.75 ? $target->{ pick([qw(before after)]) }
		  :             pick($POOL{'timestamp with time zone'});
	}
	make_safe($ctx, $sig, \@vals, \$n) if $ctx->{superuser};
	return ($n, \@vals);
}

# A superuser acts for real only on throwaway sessions
sub make_safe
{
	my ($ctx, $sig, $vals, $n) = @_;
	my ($ipid, $istart) = (arg_index($sig, 'pid'), arg_index($sig, 'backend_start'));
	if (defined $ipid && defined $istart && defined $vals->[$ipid])
	{
		my $b = $ctx->{snap}{by_pid}{ $vals->[$ipid] };
		$vals->[$istart] = $b->{after}
		  if $b
		  && $b->{type} eq 'client backend'
		  && !victim_pids()->{ $b->{pid} }
		  && $b->{pid} != $ctx->{own_pid}
		  && defined $vals->[$istart]
		  && $vals->[$istart] eq $b->{start};
	}
	my $idry = arg_index($sig, 'dry_run');
	return unless defined $idry;
	return if $idry < $$n && defined $vals->[$idry] && $vals->[$idry] eq 'true';
	return if $idry >= $$n && ($sig->{args}[$idry]{default} // '') eq 'true';
	my $iapp = arg_index($sig, 'application_name');
	if (defined $iapp)
	{
		$vals->[$iapp] = pick(\@THROWAWAY_PATTERNS);
		$$n = $iapp + 1 if $$n <= $iapp;
	}
	elsif (defined arg_index($sig, 'older_than') || !$sig->{returns_action})
	{
		# no way to narrow it to the throwaway sessions: a dry run
		$vals->[$idry] = 'true';
		$$n = $idry + 1 if $$n <= $idry;
	}
	# else enforce(): every policy that is not a dry run names a throwaway application
	return;
}

#
# Per-run statistics
#
sub count_call
{
	my ($ctx, $label, $res) = @_;
	my $s = $ctx->{stats}{$label} //= { calls => 0, ok => 0, reached => 0, states => {} };
	$s->{calls}++;
	$ctx->{calls}++;
	if ($res->{ok})
	{
		$s->{ok}++;
		$s->{reached}++;
		return;
	}
	my $state = $res->{state};
	$s->{states}{$state}++;
	$ctx->{states}{$state}++;
	$ctx->{example}{$state} //= "$label: $res->{call} -> " . one_line($res->{error});
	# not reached: input conversion of a parameter, a missing privilege or object
	$s->{reached}++
	  unless $res->{error} =~ /portal parameter|permission denied for (function|routine)/
	  || $state eq '42703'
	  || $state eq '42883';
	return;
}

sub render_call
{
	my ($name, $vals, $n) = @_;
	return "$name(" . join(', ', map { render($vals->[$_]) } 0 .. $n - 1) . ')';
}

#
# Executing one call, and the connection it runs on
#
sub driver_connect
{
	my ($ctx) = @_;
	my $dbh = connect_as($ctx->{user}, 'cwfuzz_driver', PrintWarn => 1)
	  or die "cannot connect the driver as $ctx->{user}: $DBI::errstr";
	$dbh->do("SET statement_timeout = '5s'");
	$dbh->do('SET client_min_messages = warning');
	# a real terminate_long_transactions() waits this long after cancelling
	$dbh->do("SET connwatch.cancel_grace_period = '50ms'");
	$dbh->do(
		"SET connwatch.protected_applications = 'pg_dump,pg_basebackup,pg_restore,pg_rewind,pg_cron,cwfuzz_monitor'"
	) if $ctx->{superuser};
	$ctx->{dbh}     = $dbh;
	$ctx->{sth}     = {};
	$ctx->{own_pid} = $dbh->{pg_pid};
	return;
}

# Run a prepared statement; returns what happened
sub execute
{
	my ($ctx, $key, $sql, $vals, $call) = @_;
	my $dbh = $ctx->{dbh};
	my $sth = $ctx->{sth}{$key} //= $dbh->prepare($sql);
	my @warnings;
	local $SIG{__WARN__} = sub { push @warnings, $_[0] };
	my $rv  = $sth->execute(@$vals);
	my %res = (ok => defined $rv, call => $call, warnings => \@warnings);
	if ($res{ok})
	{
		$res{row} = $sth->{NUM_OF_FIELDS} ? $sth->fetchrow_arrayref : undef;
		$res{row} = [@{ $res{row} }] if $res{row};
		$sth->finish if $sth->{NUM_OF_FIELDS};
		return \%res;
	}
	$res{state} = $dbh->state || '?????';
	$res{error} = $dbh->errstr // '';
	if ($res{state} =~ /^(08|57P)/ || $res{error} =~ /connection/i)
	{
		if (!$dbh->ping)
		{
			finding('crash', 'driver connection lost', "$call: " . one_line($res{error}));
			wait_for_server();
			driver_connect($ctx);
			$ctx->{refresh_due} = 1;
		}
	}
	if ($res{state} =~ /^XX/)
	{
		my ($message) = $res{error} =~ /^(?:ERROR|FATAL):\s+(.*)/;
		finding('internal', "$res{state} " . ($message // one_line($res{error})),
			"$call -> " . one_line($res{error}));
	}
	return \%res;
}

sub fuzz_function
{
	my ($ctx, $sig) = @_;
	my ($n, $vals) = plan_call($ctx, $sig);
	my @bind = @$vals[ 0 .. $n - 1 ];
	my $call = render_call($sig->{qname}, $vals, $n);
	my $res  = execute($ctx, "$sig->{label}/$n", call_sql($sig, $n), \@bind, $call);
	count_call($ctx, $sig->{label}, $res);
	check_arguments($ctx, $sig, $n, $vals, $res);
	check_result($ctx, $sig, $n, $vals, $res);
	return;
}

#
# Oracles on one call
#
my @MUST_NOT_BE_NULL = qw(older_than dry_run cancel_first pid backend_start schedule);

sub check_arguments
{
	my ($ctx, $sig, $n, $vals, $res) = @_;
	my $call = $res->{call};
	for my $name (@MUST_NOT_BE_NULL)
	{
		my $i = arg_index($sig, $name);
		next unless defined $i && $i < $n && !defined $vals->[$i];
		finding('oracle', "NULL $name accepted (README: 22004)", $call) if $res->{ok};
	}
	my $i = arg_index($sig, 'older_than');
	return unless defined $i && $i < $n && defined $vals->[$i];
	my $negative = $is_negative{ $vals->[$i] };
	finding('oracle', 'negative older_than accepted', $call)
	  if $negative && $res->{ok};
	finding('oracle',
		'older_than >= 0 (as SQL compares intervals) rejected as negative (22023)',
		"$call -> " . one_line($res->{error}))
	  if !$negative
	  && !$res->{ok}
	  && $res->{state} eq '22023'
	  && $res->{error} =~ /negative/;
	return;
}

sub check_result
{
	my ($ctx, $sig, $n, $vals, $res) = @_;
	return unless $res->{ok} && $res->{row};
	my $call = $res->{call};
	my @signalled;
	if ($sig->{retset})
	{
		my ($nrows, undef, undef, $problems, $pids, $nacted) = @{ $res->{row} };
		$ctx->{rows_checked} += $nrows;
		$ctx->{acted_checked} += $nacted;
		for my $row (split /\x1e/, $problems // '')
		{
			my ($labels, $detail) = split /\x1f/, $row;
			finding('oracle', "$sig->{name}: $_", "$detail from $call")
			  for split /, /, $labels;
		}
		@signalled = split /,/, ($pids // '');
	}
	elsif (defined arg_index($sig, 'pid') && $res->{row}[0])
	{
		@signalled = ($vals->[ arg_index($sig, 'pid') ]);
		check_hidden_answer($ctx, $sig, $n, $vals, 'signalled');
	}
	elsif (defined arg_index($sig, 'pid'))
	{
		my ($warning) = map { /WARNING:\s+(.*)/ ? $1 : () } @{ $res->{warnings} };
		check_hidden_answer($ctx, $sig, $n, $vals, $warning // 'false, no warning');
	}
	for my $pid (@signalled)
	{
		$ctx->{signals}++;
		my $v = victim_pids()->{$pid};
		my $b = $ctx->{snap}{by_pid}{$pid};
		my $who = $b ? "$b->{type} $pid ($b->{role}, $b->{app})" : "pid $pid";
		if (!$v)
		{
			finding('oracle', 'signalled a session that is not a throwaway one', "$who by $call");
		}
		elsif (!$ctx->{superuser} && $v->{role} ne 'regress_fuzz_victim')
		{
			finding('oracle', 'regress_fuzz signalled a session it may not signal', "$who by $call");
		}
	}
	return;
}

# For a session the caller may not see, record the answer; answers that
# differ for the same role and application leak hidden state.
sub check_hidden_answer
{
	my ($ctx, $sig, $n, $vals, $answer) = @_;
	return if $ctx->{superuser};
	my $ipid = arg_index($sig, 'pid');
	my $b    = $ctx->{snap}{by_pid}{ $vals->[$ipid] // '' };
	return unless $b && !$b->{fuzz_sees} && $b->{pid} != $ctx->{own_pid};
	$answer =~ s/\s*DETAIL:.*//s;
	push @{ $ctx->{hidden_answers} },
	  {
		key    => "$sig->{name} on sessions of "
		  . ($b->{role} eq '' ? 'no role' : "role $b->{role}")
		  . " (application '$b->{app}')",
		pid    => $b->{pid},
		start  => $b->{start},
		answer => $answer,
		call   => render_call($sig->{qname}, $vals, $n)
		  . " [target $b->{type}, state '$b->{state}'"
		  . (defined $vals->[ arg_index($sig, 'backend_start') ]
			&& $vals->[ arg_index($sig, 'backend_start') ] eq $b->{start}
			? ', right backend_start]'
			: ', other backend_start]'),
	  };
	return;
}

# Keep the answers about sessions still alive afterwards (a session that
# ended in between may rightly be 'gone')
sub settle_hidden_answers
{
	my ($ctx, $snap) = @_;
	for my $h (@{ $ctx->{hidden_answers} // [] })
	{
		my $b = $snap->{by_pid}{ $h->{pid} };
		next unless $b && $b->{start} eq $h->{start};
		$ctx->{answers}{ $h->{key} }{ $h->{answer} } //= $h->{call};
	}
	$ctx->{hidden_answers} = [];
	return;
}

#
# Settings: validate random values of every connwatch.* setting, local to
# the statement so that nothing sticks
#
my @SETTING_VALUES = (
	'-1', '0', '1', '50', '2147483647', '2147483648', '-2147483648', '1e308',
	'NaN', 'Infinity', '-0.0001', '100', '100.0001', '80.5', '10min', '601s',
	'1d', '30d', '0ms', '1 ms', '"a,b", c', ',', 'a,,b', '"unterminated');

sub fuzz_setting
{
	my ($ctx) = @_;
	my $name = pick($ctx->{settings});
	my $value = rand() < 0.5 ? pick(\@SETTING_VALUES) : pick($POOL{text});
	my $call = "set_config('$name', " . render($value) . ', true)';
	my $res = execute($ctx, 'set_config', 'SELECT pg_catalog.set_config($1, $2, true)',
		[ $name, $value ], $call);
	count_call($ctx, 'set_config(connwatch.*, value, true)', $res);
	return;
}

#
# Policies (superuser run): random rows, from the table's own columns
#
#
# Mostly valid values for the columns with a fixed vocabulary, so that many
# rows pass the CHECKs and enforce() applies them; the rare invalid ones
# exercise the constraints.
my %POLICY_COLUMN_POOL = (
	state => [
		('idle in transaction', 'idle', 'active', 'any') x 5,
		undef, 'idle in transaction (aborted)', 'IDLE', ''
	],
	age_of => [ ('state', 'transaction') x 8, undef, 'xact' ],
	action => [ ('terminate') x 12, ('cancel') x 6, undef, 'kill' ],
	enabled => [ ('true') x 16, ('false') x 3, undef ],
	only_if_holds_xmin => [ ('false') x 14, ('true') x 5, undef ],
	min_pct_used => [ (undef) x 9, @{ $POOL{numeric} } ],
	name => [ (map { "p$_" } 1 .. 9, 1 .. 9), '', 'ñ', "it's", $LONG, undef ],);

sub policy_value
{
	my ($col, $type) = @_;
	return pick($POLICY_COLUMN_POOL{$col}) if $POLICY_COLUMN_POOL{$col};
	return draw_pattern($col) if $MATCHING{$col};
	return pick($POOL{$type} // [undef]);
}

# Only a dry run or a throwaway application makes a safe policy
sub insert_random_policy
{
	my ($ctx, $dbh) = @_;
	my %v = map { $_->[0] => policy_value(@$_) } @POLICY_COLUMNS;
	my $app = $v{application_name};
	$v{dry_run} = 'true'
	  unless defined $app && grep { $_ eq $app } @THROWAWAY_PATTERNS;
	my @cols = map { $_->[0] } @POLICY_COLUMNS;
	my $sql =
	    'INSERT INTO connwatch.policies ('
	  . join(', ', @cols)
	  . ') VALUES ('
	  . join(', ', map { '$' . ($_ + 1) . "::$POLICY_COLUMNS[$_][1]" } 0 .. $#cols) . ')';
	my $call = 'INSERT policy (' . join(', ', map { "$_ = " . render($v{$_}) } @cols) . ')';
	return execute($ctx, 'policy insert', $sql, [ @v{@cols} ], $call);
}

sub mutate_policies
{
	my ($ctx) = @_;
	my $r = rand;
	my $res;
	if ($r < 0.55 && $ctx->{policies} < 8)
	{
		$res = insert_random_policy($ctx, $ctx->{dbh});
	}
	elsif ($r < 0.8)
	{
		# any column but the two that keep a policy safe
		my ($col, $type) = @{ pick([ grep { $_->[0] !~ /^(dry_run|application_name)$/ } @POLICY_COLUMNS ]) };
		my $value = policy_value($col, $type);
		$res = execute(
			$ctx, "policy update $col",
			"UPDATE connwatch.policies SET $col = \$1::$type"
			  . ' WHERE ctid = (SELECT ctid FROM connwatch.policies OFFSET $2 LIMIT 1)',
			[ $value, int(rand(8)) ],
			"UPDATE policy SET $col = " . render($value));
	}
	else
	{
		$res = execute($ctx, 'policy delete',
			'DELETE FROM connwatch.policies WHERE ctid = (SELECT ctid FROM connwatch.policies OFFSET $1 LIMIT 1)',
			[ int(rand(8)) ], 'DELETE a policy');
	}
	$ctx->{policies_written}++ if $res->{ok};
	count_call($ctx, 'connwatch.policies (INSERT, UPDATE, DELETE)', $res);
	return;
}

#
# One driver run
#
sub refresh
{
	my ($ctx) = @_;
	my $snap = take_snapshot();
	settle_hidden_answers($ctx, $snap);
	upkeep_victims($snap);
	$ctx->{snap} = take_snapshot();
	$ctx->{policies} = monitor_rows('SELECT count(*) FROM connwatch.policies')->[0][0];
	if ($ctx->{superuser} && rand() < 0.2)
	{
		# the kill budget, from none to unlimited
		my $budget = pick([ 0, 1, 3, 50, 2147483647 ]);
		$ctx->{dbh}->do("SET connwatch.max_terminations_per_run = $budget");
	}
	$ctx->{refresh_due} = 0;
	$ctx->{last_refresh} = time;
	$ctx->{since_refresh} = 0;
	return;
}

sub audit_rows
{
	return monitor_rows('SELECT count(*) FROM connwatch.terminations')->[0][0];
}

sub run_driver
{
	my (%o) = @_;
	my $t0       = time;
	my $deadline = $t0 + $o{seconds};
	srand($o{seed});
	my $ctx = {
		user             => $o{user},
		superuser        => $o{superuser},
		stats            => {},
		states           => {},
		calls            => 0,
		signals          => 0,
		policies_written => 0,
	};
	driver_connect($ctx);
	# load the library, so that pg_settings lists its settings (the hidden
	# one and an unknown one are added)
	$ctx->{dbh}->do('SELECT count(*) FROM connwatch.connection_limits');
	my $names = $ctx->{dbh}->selectcol_arrayref(
		q{SELECT name FROM pg_settings WHERE name LIKE 'connwatch.%'});
	$ctx->{settings} =
	  [ sort(@$names, 'connwatch.debug_signal_barrier', 'connwatch.no_such_setting') ];
	my $crashes_before = findings_of('crash');
	refresh($ctx);
	my $infra_before = infrastructure($ctx->{snap});
	my $audit_before = audit_rows();

	while (time < $deadline && $ctx->{calls} < $DRIVER_CALLS)
	{
		refresh($ctx)
		  if $ctx->{refresh_due}
		  || ++$ctx->{since_refresh} >= 40
		  || time - $ctx->{last_refresh} > 0.3;
		my $r = rand;
		if ($ctx->{superuser} && $r < 0.08)
		{
			mutate_policies($ctx);
		}
		elsif ($r < 0.12)
		{
			fuzz_setting($ctx);
		}
		else
		{
			fuzz_function($ctx, pick(\@SIGNATURES));
		}
	}
	refresh($ctx);
	my $elapsed = time - $t0;

	# the audit trail has one row per signal the driver saw
	my $audit_after = audit_rows();
	if (findings_of('crash') == $crashes_before)
	{
		finding('audit', 'connwatch.terminations rows differ from the signals seen',
			"$o{title}: "
			  . ($audit_after - $audit_before)
			  . " new rows, $ctx->{signals} signals")
		  if $audit_after - $audit_before != $ctx->{signals};
	}

	# nothing of the infrastructure was touched
	my $infra_after = infrastructure($ctx->{snap});
	for my $k (sort keys %$infra_before)
	{
		finding('infrastructure', "$k is gone",
			"$o{title}: was $infra_before->{$k}"
			  . ($infra_after->{$k} ? ", now $infra_after->{$k}" : ''))
		  unless ($infra_after->{$k} // '') eq $infra_before->{$k};
	}

	# answers about hidden sessions
	for my $key (sort keys %{ $ctx->{answers} // {} })
	{
		my $answers = $ctx->{answers}{$key};
		next if keys %$answers < 2;
		finding('leak', "$key: the answer depends on hidden state", "'$_': $answers->{$_}")
		  for sort keys %$answers;
	}

	report_driver($ctx, $o{title}, $elapsed);
	$ctx->{dbh}->disconnect;
	return $ctx;
}

sub report_driver
{
	my ($ctx, $title, $elapsed) = @_;
	my @lines = sprintf(
		'driver %s: %d calls in %.1fs, %d real signals, %d policy rows written, '
		  . '%d result rows checked (%d acted or would act), %d throwaway sessions so far',
		$title, $ctx->{calls}, $elapsed, $ctx->{signals}, $ctx->{policies_written},
		$ctx->{rows_checked} // 0, $ctx->{acted_checked} // 0, $victims_created);
	for my $label (sort keys %{ $ctx->{stats} })
	{
		my $s = $ctx->{stats}{$label};
		push @lines,
		  sprintf('  %-78s %5d calls, %5d ok, %5d reached%s',
			$label, $s->{calls}, $s->{ok}, $s->{reached},
			join('', map { ", $_ x$s->{states}{$_}" } sort keys %{ $s->{states} }));
	}
	push @lines, '  errors by SQLSTATE: '
	  . (join(', ', map { "$_ x$ctx->{states}{$_}" } sort keys %{ $ctx->{states} }) || 'none');
	push @lines, "  e.g. $_: $ctx->{example}{$_}" for sort keys %{ $ctx->{example} // {} };
	diag(join("\n", @lines));

	for my $sig (@SIGNATURES)
	{
		my $reached = $ctx->{stats}{ $sig->{label} }{reached} // 0;
		cmp_ok($reached, '>=', $MIN_CALLS,
			"driver $title: calls reaching $sig->{label}");
	}
	return;
}

#
# sqlsmith
#
my $SQLSMITH = (grep { -x "$_/sqlsmith" } split /:/, "$ENV{PATH}:/usr/bin")[0];
ok(defined $SQLSMITH, 'sqlsmith is installed') or BAIL_OUT('no sqlsmith in PATH');
$SQLSMITH .= '/sqlsmith';

# A sqlsmith killed by timeout leaves its backend running its last
# statement (up to statement_timeout): a session of regress_fuzz the driver
# would rightly signal.  Wait until it is gone.
sub wait_for_sqlsmith_backends
{
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return
		  if monitor_rows(
			q{SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'sqlsmith%'}
		)->[0][0] == 0;
		usleep(100_000);
	}
	die 'sqlsmith backends did not go away';
}

sub run_sqlsmith
{
	my ($seed, $seconds) = @_;
	my $target =
	  "host=$host port=$port dbname=postgres user=regress_fuzz application_name=sqlsmith";
	my @cmd = (
		'timeout', '--kill-after=5', $seconds, $SQLSMITH,
		"--target=$target", "--seed=$seed",
		"--max-queries=$SQLSMITH_QUERIES", '--verbose', '--exclude-catalog');
	my ($out, $err) = ('', '');
	my $t0 = time;
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	my $status = $?;
	my $exit = $status & 127 ? 128 + ($status & 127) : $status >> 8;
	my $elapsed = time - $t0;
	wait_for_sqlsmith_backends();

	open my $fh, '>', "$PostgreSQL::Test::Utils::log_path/202_sqlsmith_seed$seed.log";
	print $fh "\$ @cmd\nexit $exit\n$out$err";
	close $fh;

	# --verbose prints one character per query: . ok, e error, t timeout,
	# S syntax error, C connection lost
	my %chars = ('.' => 0, e => 0, t => 0, S => 0, C => 0);
	for my $line (split /\n/, $err)
	{
		next unless $line =~ /^[.etSC]+$/;
		$chars{$_}++ for split //, $line;
	}
	my $queries = sum0(values %chars);
	# its final report (only when it was not killed): "count<TAB>message"
	my @top = map { one_line($_) } $err =~ /^(\d+\t.*)$/mg;
	splice(@top, 5) if @top > 5;
	diag(sprintf('sqlsmith seed %s: exit %d after %.1fs, %d queries '
		  . '(%d ok, %d errors, %d timeouts, %d syntax, %d connection lost)',
			$seed, $exit, $elapsed, $queries, $chars{'.'}, $chars{e},
			$chars{t}, $chars{S}, $chars{C})
		  . (@top ? "\n  most frequent errors:\n    " . join("\n    ", @top) : ''));

	ok($exit == 0 || ($exit == 124 && $queries >= $MIN_QUERIES),
		"sqlsmith seed $seed completed its queries or its time (exit $exit)")
	  or diag("sqlsmith output:\n" . substr($err, -3000));
	cmp_ok($queries, '>=', $MIN_QUERIES, "sqlsmith seed $seed ran queries");
	is($chars{C}, 0, "sqlsmith seed $seed kept its connection");
	return $queries;
}

#
# The run
#
upkeep_victims(take_snapshot());

# a few policies for sqlsmith to read and enforce() to apply (the
# superuser driver run writes more)
{
	srand($FIXED_SEED);
	my $seeder = { dbh => $monitor, sth => {} };
	insert_random_policy($seeder, $monitor) for 1 .. 20;
	monitor_rows('SELECT count(*) FROM connwatch.policies');
}

my $smith_seconds = int($BUDGET * 0.2) > 5 ? int($BUDGET * 0.2) : 5;
my $sqlsmith_queries = run_sqlsmith($FIXED_SEED, $smith_seconds);
$sqlsmith_queries += run_sqlsmith($RANDOM_SEED, $smith_seconds);

# what is left, less a few seconds for the verdicts
my $left = $BUDGET - (time - $started) - 3;
my $driver_seconds = $left / 2 > 3 ? $left / 2 : 3;
my @runs = (
	run_driver(
		title     => 'as regress_fuzz (seed 42)',
		user      => 'regress_fuzz',
		superuser => 0,
		seed      => $FIXED_SEED,
		seconds   => $driver_seconds),
	run_driver(
		title     => "as superuser $superuser (seed $RANDOM_SEED)",
		user      => $superuser,
		superuser => 1,
		seed      => $RANDOM_SEED,
		seconds   => $driver_seconds));

#
# Verdicts
#
for my $v (@victims) { discard_victim($v); }
@victims = ();

# the server log: crashes, and internal errors located in the extension
my @our_files = map { basename($_) } glob("$FindBin::Bin/../../src/*.c");
my $log = slurp_file($node->logfile);
my @crash_lines = grep {
	/\bPANIC:|\bLOG:\s+\w+:\s+.*(terminated by signal|was terminated|reinitializing|exited with exit code)/
} split /\n/, $log;
my $crashes = scalar(@crash_lines) + ($postmaster_pid eq read_postmaster_pid() ? 0 : 1);
finding('crash', 'the server log reports a crash', $_) for @crash_lines;
finding('crash', 'postmaster.pid changed') if $postmaster_pid ne read_postmaster_pid();

my @log_lines = split /\n/, $log;
my %internal_core;
for my $i (0 .. $#log_lines)
{
	next unless $log_lines[$i] =~ /(ERROR|FATAL|PANIC):\s+(XX00[0-2]):\s+(.*)/;
	my ($code, $msg) = ($2, $3);
	my ($where) = grep { /LOCATION:/ } @log_lines[ $i + 1 .. ($i + 3 > $#log_lines ? $#log_lines : $i + 3) ];
	$where //= '';
	my ($func, $file) = $where =~ /LOCATION:\s+(\S+), (\S+?):\d+/;
	my $ours = ($func // '') =~ /^cw_/ || grep { $_ eq ($file // '') } @our_files;
	if ($ours)
	{
		finding('internal', "$code $msg", "server log, $func, $file");
	}
	else
	{
		$internal_core{"$code $msg" . ($func ? " ($func, $file)" : '')}++;
	}
}
diag('internal errors the server log locates in core, not counted: '
	  . join('; ', map { "$_ x$internal_core{$_}" } sort keys %internal_core))
  if %internal_core;

check_findings('crash',          'no crash, no lost connection');
check_findings('internal',       'no internal error (SQLSTATE XX000-XX002)');
check_findings('oracle',         'results and errors agree with the arguments and the README');
check_findings('leak',           'no hidden state leaks to a caller that may not see a session');
check_findings('audit',          'connwatch.terminations has one row per signal');
check_findings('infrastructure', "the test's own infrastructure was never signalled");

my $driver_calls = sum0(map { $_->{calls} } @runs);
diag(sprintf(
		'fuzz: %d sqlsmith queries (seed %d and seed %d), %d driver calls over %d signatures, %d crashes',
		$sqlsmith_queries, $FIXED_SEED, $RANDOM_SEED, $driver_calls,
		scalar(@SIGNATURES), $crashes));

$node->stop;
done_testing();
