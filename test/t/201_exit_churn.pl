# 201_exit_churn.pl - read every view while sessions end by every path.
#
# Why: a backend that is exiting is still in the status array for a while,
# in a state no running backend ever has.  Its transaction is already
# aborted (xact_start cleared) while st_state still says "idle in
# transaction", until pgstat_beshutdown_hook clears the slot.  A reader that
# trusts the combination crashes the server: the first version of
# connwatch.idle_in_transaction copied no query text for such a slot and
# dereferenced NULL, 119 segfaults in 45 s for a LOGIN role without grants
# reading the view in a loop while its own sessions hit
# idle_in_transaction_session_timeout.  The window is short (the rest of
# the backend's exit), so only a lot of churn finds it: this test makes a
# lot of churn, and any reader that trusts an exiting backend's slot the
# same way, in any view or function, should be caught the same way.
#
# For CONNWATCH_CHURN_SECONDS (default 30), forked Perl processes (DBD::Pg,
# Unix socket and 127.0.0.1 only) run in parallel:
#
#   readers  4 x regress_churn (LOGIN, explicit grants, no pg_monitor, so
#            the visibility filter runs) and 1 x regress_churn_monitor
#            (pg_monitor, sees everything).  Each loops over every view of
#            schema connwatch and every set-returning function (the rule
#            functions as dry runs), all taken from the catalog so that new
#            ones are covered, reading every column of every row.
#   enders   6 x regress_churn and 2 x regress_churn_other.  Each opens
#            sessions and ends them by one path after another:
#              iit timeout, idle-session timeout, pg_terminate_backend(),
#              connwatch.terminate_backend / terminate_idle_in_transaction /
#              terminate_idle / terminate_long_transactions (run by a
#              session of the victim's role), clean disconnect, client
#              process exit, client process SIGKILL, FATAL at connection
#              (no such database, role connection limit) and a session
#              that terminates itself inside a writing transaction.
#            The victim is idle, idle in transaction, aborted, holding an
#            xid or running pg_sleep() when it ends, whichever the path
#            allows.
#
# The parent polls the server log; at the first crash it stops the churn
# (the test cluster runs with restart_after_crash = off, so the server is
# gone anyway).  Then it checks: no crash (no crash line in the log, same
# postmaster, still answering); every reader made many reads and got no
# error at all (none is expected); every ending path ended sessions, each
# as intended (the client saw the expected FATAL or the rule function said
# 'terminated'), with no unexpected error; the server log agrees.  The
# figures are printed, ending with one greppable line:
#
#   # churn: N reads, M calls, K sessions ended (a by iit timeout, ...) in Ss, C crashes
#
# PostgreSQL 13 has neither idle_session_timeout nor
# client_connection_check_interval (both came in 14).  There the
# idle-session timeout path is left out (the test says so in a note, and
# the figures line has no "by idle-session timeout"), and a client process
# that leaves its victim running (state active) has it run a loop of short
# sleeps that sends a NOTICE after each: the backend notices that its
# client is gone at its next write instead of at the next check, and ends
# with the same "connection to client lost".  Every other path, state and
# check is the same on every major.
#
# A client built with libpq before 14 (13's root) does not see the FATAL
# that ends a running (async) query: libpq replaces it by its own "server
# closed the connection unexpectedly" when it reads the EOF that follows.
# Only then, the FATAL is taken from the server log, for that backend pid
# and application_name, and checked the same way (see expect_ended).

use strict;
use warnings;

use DBI;
use DBD::Pg qw(:async);
use IO::Select;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# 30 s: the first finding (see above), put back, crashes the server 0.9 s
# to 3 s into the churn on a 2-core VM, where 30 s make 7,000 to 14,000
# reads and 750 to 900 endings; the 18.6 s it once took at most, with fewer
# readers of the view, fit too.  CONNWATCH_CHURN_SECONDS=60 runs longer.
my $SECONDS = $ENV{CONNWATCH_CHURN_SECONDS} // 30;
die "CONNWATCH_CHURN_SECONDS must be a positive number"
  unless $SECONDS =~ /^\d+(?:\.\d+)?$/ && $SECONDS > 0;

my $N_READERS      = 4;     # regress_churn readers, plus one pg_monitor reader
my $N_ENDERS       = 8;     # the last $N_OTHER_ENDERS use regress_churn_other
my $N_OTHER_ENDERS = 2;
my $WAIT           = 30;    # bound, in seconds, of any single wait
my $MIN_ROUNDS     = 20;    # full passes over the statement list per reader
my $MIN_PER_PATH   = 3;     # sessions each ending path must end
my $CHILD_GRACE    = 60;    # beyond $SECONDS before children are killed

# Any of these in the server log is a crash.
my $CRASH_MARK = qr/terminated by signal|was terminated|PANIC|all server processes terminated; reinitializing/;
# One line per crashing process.
my $CRASH_CAUSE = qr/terminated by signal|was terminated|PANIC/;

#
# The node
#
my $node = PostgreSQL::Test::Cluster->new('churn');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
listen_addresses = '127.0.0.1'
max_connections = 80
# the remember layer's hooks and exit callback run under the churn too
shared_preload_libraries = 'pg_connwatch'
log_disconnections = on
# the log is read for crashes and endings; every statement would be noise
log_statement = none
});
$node->start;

# 14 brought idle_session_timeout and client_connection_check_interval.
my $server_version_num = $node->safe_psql('postgres', 'SHOW server_version_num');
die "unexpected server_version_num '$server_version_num'"
  unless $server_version_num =~ /^\d+$/;
my $HAS_IDLE_SESSION_TIMEOUT = $server_version_num >= 140000;
my $HAS_CLIENT_CHECK         = $server_version_num >= 140000;
if ($HAS_CLIENT_CHECK)
{
	$node->append_conf(
		'postgresql.conf', q{
# a backend running pg_sleep() notices soon that its client was killed
client_connection_check_interval = '100ms'
});
	$node->restart;
	is($node->safe_psql('postgres', 'SHOW client_connection_check_interval'),
		'100ms', 'client_connection_check_interval is set');
}
else
{
	note "server_version_num $server_version_num: no client_connection_check_interval; "
	  . 'an active victim of a client process writes to its client instead';
}

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_churn LOGIN;
CREATE ROLE regress_churn_other LOGIN;
CREATE ROLE regress_churn_monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE regress_churn_limited LOGIN CONNECTION LIMIT 0;
CREATE TABLE churn_writes (pid int);
GRANT INSERT ON churn_writes TO regress_churn, regress_churn_other;

-- Explicit grants: the views may be granted to pg_monitor only, not to
-- PUBLIC.  Everything in the schema, so that what is added later is
-- covered; policies too, for the enforce() dry runs.
DO $$
DECLARE
    r text;
    obj text;
BEGIN
    FOREACH r IN ARRAY ARRAY['regress_churn', 'regress_churn_other',
                             'regress_churn_monitor']
    LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA connwatch TO %I', r);
        EXECUTE format('GRANT SELECT ON connwatch.policies TO %I', r);
        FOR obj IN SELECT c.oid::regclass::text FROM pg_class c
                   WHERE c.relnamespace = 'connwatch'::regnamespace
                     AND c.relkind = 'v'
        LOOP
            EXECUTE format('GRANT SELECT ON %s TO %I', obj, r);
        END LOOP;
        FOR obj IN SELECT p.oid::regprocedure::text FROM pg_proc p
                   WHERE p.pronamespace = 'connwatch'::regnamespace
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj, r);
        END LOOP;
    END LOOP;
END
$$;

-- Something for the enforce() dry runs to match.  Nobody runs enforce()
-- for real.
INSERT INTO connwatch.policies (name, state, older_than, age_of, usename, action) VALUES
    ('churn_1_idle_in_transaction', 'idle in transaction', '0', 'state', 'regress_churn%', 'terminate'),
    ('churn_2_long', 'any', '0', 'transaction', NULL, 'terminate'),
    ('churn_3_idle', 'idle', '0', 'state', NULL, 'terminate'),
    ('churn_4_active', 'active', '0', 'state', NULL, 'cancel');
});

is( $node->safe_psql(
		'postgres',
		q{SELECT pg_has_role('regress_churn', 'pg_read_all_stats', 'USAGE')
		      OR pg_has_role('regress_churn', 'pg_monitor', 'USAGE')}),
	'f',
	'regress_churn sees other roles\' sessions only through the visibility filter');

my $socket_dir = $node->host;
my $port       = $node->port;

#
# What the readers run: every view, and every set-returning function, from
# the catalog.  t::text reads (and detoasts) every column of every row.
#
sub reader_statements
{
	my (@statements, @uncallable);
	my $read = sub {
		my ($kind, $label, $from) = @_;
		push @statements,
		  {
			kind  => $kind,
			label => $label,
			sql   => "SELECT count(*), sum(length(t::text)) FROM $from t"
		  };
	};

	my $views = $node->safe_psql(
		'postgres', q{
		SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = 'connwatch'::regnamespace AND c.relkind = 'v'
		ORDER BY 1});
	$read->('view', "connwatch.$_", "connwatch.$_") for split /\n/, $views;

	# name|input argument names
	my $functions = $node->safe_psql(
		'postgres', q{
		SELECT p.proname || '|' ||
		       array_to_string(coalesce(p.proargnames[1:p.pronargs], '{}'), ',')
		FROM pg_proc p
		WHERE p.pronamespace = 'connwatch'::regnamespace AND p.proretset
		ORDER BY p.proname, p.pronargs});
	for my $row (split /\n/, $functions)
	{
		my ($name, $args) = split /\|/, $row, -1;
		my %arg = map { $_ => 1 } split /,/, $args;
		if ($arg{dry_run})
		{
			my $older = $arg{older_than} ? "older_than => '0', " : '';
			$read->('dry run', "connwatch.$name(dry run)",
				"connwatch.$name(${older}dry_run => true)");
		}
		elsif ($args eq '')
		{
			$read->('function', "connwatch.$name()", "connwatch.$name()");
		}
		elsif ($args eq 'older_than')
		{
			$read->('function', "connwatch.$name('$_')", "connwatch.$name('$_')")
			  for ('0', '1 ms');
		}
		elsif ($args eq 'since,until')
		{
			$read->('function', "connwatch.$name(range)",
				"connwatch.$name(now() - interval '1 minute', now())");
		}
		else
		{
			push @uncallable, "connwatch.$name($args)";
		}
	}
	is(join(', ', @uncallable), '',
		'the readers know how to call every set-returning function of connwatch');
	return @statements;
}

my @STATEMENTS = reader_statements();
ok((grep { $_->{label} eq 'connwatch.idle_in_transaction' } @STATEMENTS),
	'the readers read connwatch.idle_in_transaction');
note "reader statements: " . join(', ', map { $_->{label} } @STATEMENTS);

#
# Helpers for the child processes
#
my $stop     = 0;        # set by SIGTERM in a child
my $deadline = 0;        # set when the churn starts
sub stopping { return $stop || time >= $deadline }

# %opt: tcp (else the Unix socket), db, notices (warn the server's notices,
# see expect_ended)
sub connect_as
{
	my ($role, $app, %opt) = @_;
	my $host = $opt{tcp} ? '127.0.0.1' : $socket_dir;
	my $db   = $opt{db} // 'postgres';
	return DBI->connect(
		"dbi:Pg:dbname=$db;host=$host;port=$port;application_name=$app;connect_timeout=$WAIT",
		$role, '',
		{
			AutoCommit        => 1,
			RaiseError        => 0,
			PrintError        => 0,
			Warn              => $opt{notices} ? 1 : 0,
			PrintWarn         => $opt{notices} ? 1 : 0,
			pg_server_prepare => 0
		});
}

sub first_line
{
	my ($msg) = @_;
	$msg //= 'unknown error';
	$msg =~ s/ at \S+ line \d+(?:, <\S+> (?:line|chunk) \d+)?\.$//mg;    # die's where
	($msg) = grep { /\S/ } split /\n/, $msg;
	$msg //= 'empty error';
	$msg =~ s/\s+/ /g;
	return $msg;
}

# Errors are counted by kind: numbers (pids, ids) are folded.
sub count_error
{
	my ($count, $who, $msg) = @_;
	(my $kind = first_line($msg)) =~ s/\d+/N/g;
	$count->{"error $who: $kind"}++;
	return;
}

# Run $body in a forked child.  It returns a hash of counts, which goes to
# $result_dir/$name; the child leaves by _exit, never through the END
# blocks (the Cluster's would stop the node).
my $result_dir = PostgreSQL::Test::Utils::tempdir;
my %children;    # pid => name

sub spawn
{
	my ($name, $body) = @_;
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		$SIG{TERM} = sub { $stop = 1 };
		srand($$ ^ int(time * 1000));
		my %count;
		eval { %count = $body->(); 1 } or $count{died} = first_line($@);
		if (open my $fh, '>', "$result_dir/$name.tmp")
		{
			for my $k (sort keys %count)
			{
				(my $key = $k) =~ s/[\t\n]/ /g;
				print $fh "$key\t$count{$k}\n";
			}
			close $fh and rename "$result_dir/$name.tmp", "$result_dir/$name";
		}
		POSIX::_exit(0);
	}
	$children{$pid} = $name;
	return;
}

sub read_results
{
	my ($name) = @_;
	open my $fh, '<', "$result_dir/$name" or return undef;
	my %count = map { chomp; split /\t/, $_, 2 } <$fh>;
	return \%count;
}

#
# Readers
#
sub reader
{
	my ($role) = @_;
	my %count = (reads => 0, calls => 0, rounds => 0);
	my $dbh;
	while (!stopping())
	{
		$dbh //= connect_as($role, 'churn_reader');
		if (!$dbh)
		{
			count_error(\%count, 'reader connect', $DBI::errstr);
			usleep(100_000);    # back off: the server is not there
			next;
		}
		my $round_done = 1;
		for my $s (@STATEMENTS)
		{
			if (stopping()) { $round_done = 0; last; }
			if ($dbh->selectrow_arrayref($s->{sql}))
			{
				$count{ $s->{kind} eq 'view' ? 'reads' : 'calls' }++;
				$count{"run $s->{label}"}++;
				next;
			}
			count_error(\%count, "reader $s->{label}", $dbh->errstr);
			$round_done = 0;
			if (!$dbh->ping)
			{
				$dbh = undef;
				last;
			}
		}
		$count{rounds}++ if $round_done;
	}
	$dbh->disconnect if $dbh;
	return %count;
}

#
# Enders: victims, their states, and the ways they end
#
# How a victim gets into each state.  A raw BEGIN, not begin_work: DBD::Pg
# does not know about the transaction, so it never sends a ROLLBACK of its
# own (disconnect, DESTROY) and the session really ends inside it.  BEGIN
# and the statement go in one query string: a short
# idle_in_transaction_session_timeout must not fire between the two.
my %STATE_SQL = (
	idle                => 'SELECT 1',
	idle_in_transaction => 'BEGIN; SELECT count(*) FROM pg_class',
	aborted             => 'BEGIN; SELECT 1/0',
	holds_xid           => 'BEGIN; INSERT INTO churn_writes VALUES (pg_backend_pid())',
	active              => 'SELECT pg_sleep(300)',);

# Without client_connection_check_interval (13), a backend in pg_sleep()
# whose client is gone would sleep on: the active victim of a client
# process sends a NOTICE (flushed at once) every 100 ms instead, and the
# first write that fails ends it with "connection to client lost".  Also
# 300 s at most.
my $ACTIVE_WRITING_SQL =
  q{DO $$BEGIN FOR i IN 1..3000 LOOP PERFORM pg_sleep(0.1); RAISE NOTICE 'churn'; END LOOP; END$$};

# %opt: writing (an active victim that writes to its client while it runs)
sub enter_state
{
	my ($v, $state, %opt) = @_;
	my $sql = $STATE_SQL{$state};
	$sql = $ACTIVE_WRITING_SQL if $state eq 'active' && $opt{writing};
	return $v->do($sql, { pg_async => PG_ASYNC }) if $state eq 'active';
	return !defined($v->do($sql)) && $v->errstr =~ /division by zero/
	  if $state eq 'aborted';
	return $v->do($sql);
}

my @ANY_STATE    = qw(idle idle_in_transaction aborted holds_xid active);
my @IN_XACT      = qw(idle_in_transaction aborted holds_xid);
my @XACT_STARTED = qw(idle_in_transaction holds_xid);
my @NOT_RUNNING  = qw(idle idle_in_transaction aborted holds_xid);

sub pick { return $_[ int(rand(@_)) ] }

# What the server said to the current victim outside of any query: libpq
# hands such messages (the FATAL of a timeout or a terminate that hits an
# idle session) to the notice processor, which DBD::Pg turns into a warning.
# It can come with the last query's reply already, in the same read.
my @victim_notices;

# A new session of the ender's role, with its own application_name, over
# the Unix socket or TCP; after SET $opt{set} if given, in $state.
sub new_victim
{
	my ($ctx, $state, %opt) = @_;
	my $app = "churn_v$ctx->{id}_$ctx->{seq}";
	@victim_notices = ();
	my $v = connect_as($ctx->{role}, $app, tcp => rand() < 0.3, notices => 1)
	  or die "victim connect: " . first_line($DBI::errstr);
	# A SET leaves the session idle: with idle_session_timeout set, no
	# other statement may follow, or the timeout may fire between the two.
	if ($opt{set})
	{
		$v->do("SET $opt{set}") or die "victim SET: " . first_line($v->errstr);
	}
	$ctx->{count}{"state $state"}++;
	if (!($opt{set} && $state eq 'idle'))
	{
		enter_state($v, $state)
		  or die "victim could not enter $state: " . first_line($v->errstr);
	}
	return ($v, $app);
}

# The FATAL: line that backend $pid, application_name $app, wrote to the
# server log from byte $from on, without its prefix; undef if none.
sub server_log_fatal
{
	my ($pid, $app, $from) = @_;
	my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $from);
	return $log =~ /^.*? \[$pid\] \Q$app\E (FATAL:  .*)$/m ? $1 : undef;
}

# Wait until the server ends $v, and check the FATAL it sent.  Nothing is
# written to an idle victim: on TCP, a write to the closed socket draws a
# reset, which can discard the FATAL before libpq has read it.
#
# %opt: pid and app (the victim's backend pid and application_name),
# log_from (the server log's size before the victim was ended), count (the
# ender's counts).  libpq before 14 replaces the message of a FATAL that
# ends a running query by its own "server closed the connection
# unexpectedly" when it reads the EOF that follows, and DBD::Pg's
# pg_result reports only that.  The server writes its log line before it
# sends the message: with such a libpq, and only when the client saw
# nothing else, the FATAL is read from the server log instead (that
# backend pid and application_name, written after log_from), and must be
# the same.
sub expect_ended
{
	my ($v, $why, %opt) = @_;
	my $said;
	if ($v->{pg_async_status} == 1)    # the FATAL is the query's result
	{
		IO::Select->new($v->{pg_socket})->can_read($WAIT)
		  or die "victim still connected after ${WAIT}s";
		die "victim still answers" if defined $v->pg_result;
		$said = $v->errstr;
		if (   $v->{pg_lib_version} < 140000
			&& defined $opt{log_from}
			&& $opt{pid}
			&& first_line($said) =~ /^server closed the connection unexpectedly$/)
		{
			my $logged = server_log_fatal($opt{pid}, $opt{app}, $opt{log_from});
			die "libpq $v->{pg_lib_version} saw \"" . first_line($said)
			  . "\", and the server log has no FATAL for the victim"
			  unless defined $logged;
			$opt{count}{'FATAL read from the server log'}++ if $opt{count};
			$said = $logged;
		}
	}
	else
	{
		$v->set_err(undef, undef);    # forget the victim's own last error
		for (1 .. 3)                  # the FATAL, then EOF
		{
			last if @victim_notices || $v->err;
			IO::Select->new($v->{pg_socket})->can_read($WAIT)
			  or die "victim still connected after ${WAIT}s";
			$v->pg_notifies;          # reads without writing
		}
		$said = join('', @victim_notices) || $v->errstr;
		die "victim still answers" if $v->ping;
	}
	my $err = first_line($said);
	die "victim ended with \"$err\", not $why" unless $err =~ $why;
	return;
}

# A statement of the killer session; dies on error.
sub killer_rows
{
	my ($ctx, $sql) = @_;
	my $rows = $ctx->{killer}->selectcol_arrayref($sql)
	  or die "killer: " . first_line($ctx->{killer}->errstr);
	return join(',', @$rows);
}

my $ADMIN_COMMAND = qr/terminating connection due to administrator command/;

# A victim in one of @states, ended by $kill from the killer session.
sub killed_by
{
	my ($states, $kill) = @_;
	return sub {
		my ($ctx) = @_;
		my ($v, $app) = new_victim($ctx, pick(@$states));
		my ($pid, $log_from) = ($v->{pg_pid}, -s $node->logfile);
		$kill->($ctx, $v, $app);
		expect_ended($v, $ADMIN_COMMAND,
			pid      => $pid,
			app      => $app,
			log_from => $log_from,
			count    => $ctx->{count});
	};
}

# A rule function, not a dry run, limited to the victim's application_name.
sub rule_kills
{
	my ($function, $extra) = @_;
	$extra //= '';
	return sub {
		my ($ctx, $v, $app) = @_;
		my $got = killer_rows($ctx,
			"SELECT action || ':' || reason FROM connwatch.$function('0', application_name => '$app'$extra)");
		die "connwatch.$function: $got" unless $got =~ /^terminated:[^,]*$/;
	};
}

# A victim in a forked client process, which then exits or is killed.  The
# victim holds a session advisory lock: when the killer gets it, the
# backend has ended.
sub client_process_ends
{
	my ($how) = @_;
	return sub {
		my ($ctx) = @_;
		my $key = $ctx->{id} * 1_000_000 + $ctx->{seq};
		pipe(my $ready_r, my $ready_w) or die "pipe: $!";
		pipe(my $go_r,    my $go_w)    or die "pipe: $!";
		my $pid = fork // die "fork: $!";
		if ($pid == 0)
		{
			close $ready_r;
			close $go_w;
			my $v;    # lives until _exit: no DESTROY, no disconnect
			my $msg = eval {
				my $state = pick(@ANY_STATE);
				$v = connect_as($ctx->{role}, "churn_c$ctx->{id}_$ctx->{seq}")
				  or die first_line($DBI::errstr);
				$v->do("SELECT pg_advisory_lock($key)") or die first_line($v->errstr);
				enter_state($v, $state, writing => !$HAS_CLIENT_CHECK)
				  or die first_line($v->errstr);
				"ready $state";
			} // 'error ' . first_line($@);
			syswrite $ready_w, "$msg\n";
			sysread $go_r, my $buf, 1;    # a byte: exit; EOF: the ender is gone
			POSIX::_exit(0);              # no disconnect, no DESTROY
		}
		close $ready_w;
		close $go_r;
		my $line = '';
		$line = <$ready_r> // '' if IO::Select->new($ready_r)->can_read($WAIT);
		chomp $line;
		if ($line =~ /^ready (\S+)/)
		{
			$ctx->{count}{"state $1"}++;
			if   ($how eq 'sigkill') { kill 'KILL', $pid }
			else                     { syswrite $go_w, 'x' }
		}
		close $go_w;    # the client exits now in any case
		waitpid($pid, 0);
		die "client process: " . ($line || 'no answer') unless $line =~ /^ready/;
		killer_rows($ctx, "SELECT pg_advisory_lock($key), pg_advisory_unlock($key)");
	};
}

# A connection attempt that must fail with a FATAL.
sub connection_fails
{
	my ($role, $db, $why) = @_;
	return sub {
		my ($ctx) = @_;
		my $dbh = connect_as($role // $ctx->{role}, "churn_f$ctx->{id}", db => $db);
		die "connection succeeded" if $dbh;
		my $err = first_line($DBI::errstr);
		die "connection failed with \"$err\", not $why" unless $err =~ $why;
	};
}

# Every way a session ends.  group: the summary's grouping.
my @PATHS = (
	{
		name  => 'idle_in_transaction_session_timeout',
		group => 'iit timeout',
		run   => sub {
			my ($ctx) = @_;
			my $ms = 20 + int(rand(181));
			my ($v) = new_victim($ctx, pick(@IN_XACT),
				set => "idle_in_transaction_session_timeout = $ms");
			expect_ended($v, qr/idle-in-transaction timeout/);
		}
	},
	{
		name  => 'idle_session_timeout',
		group => 'idle-session timeout',
		needs => $HAS_IDLE_SESSION_TIMEOUT,
		run   => sub {
			my ($ctx) = @_;
			my $ms = 20 + int(rand(181));
			my ($v) = new_victim($ctx, 'idle', set => "idle_session_timeout = $ms");
			expect_ended($v, qr/idle-session timeout/);
		}
	},
	{
		name  => 'pg_terminate_backend',
		group => 'pg_terminate_backend',
		run   => killed_by(
			\@ANY_STATE,
			sub {
				my ($ctx, $v) = @_;
				my $got = killer_rows($ctx, "SELECT pg_terminate_backend($v->{pg_pid})");
				die "pg_terminate_backend: $got" unless $got eq '1';
			})
	},
	{
		name  => 'connwatch.terminate_backend',
		group => 'connwatch.terminate_*',
		run   => killed_by(
			\@ANY_STATE,
			sub {
				my ($ctx, $v) = @_;
				my $got = killer_rows(
					$ctx,
					"SELECT connwatch.terminate_backend(pid, backend_start, 'churn')
					 FROM pg_catalog.pg_stat_activity WHERE pid = $v->{pg_pid}");
				die "connwatch.terminate_backend: '$got'" unless $got eq '1';
			})
	},
	{
		name  => 'connwatch.terminate_idle_in_transaction',
		group => 'connwatch.terminate_*',
		run   => killed_by(\@IN_XACT, rule_kills('terminate_idle_in_transaction'))
	},
	{
		name  => 'connwatch.terminate_idle',
		group => 'connwatch.terminate_*',
		run   => killed_by(['idle'], rule_kills('terminate_idle'))
	},
	{
		name  => 'connwatch.terminate_long_transactions',
		group => 'connwatch.terminate_*',
		run   => killed_by(\@XACT_STARTED,
			rule_kills('terminate_long_transactions', ', cancel_first => false'))
	},
	{
		name  => 'client disconnect',
		group => 'client exit',
		run   => sub {
			my ($ctx) = @_;
			my ($v) = new_victim($ctx, pick(@NOT_RUNNING));
			$v->disconnect;
		}
	},
	{
		name  => 'client process exit',
		group => 'client exit',
		run   => client_process_ends('exit')
	},
	{
		name  => 'client process SIGKILL',
		group => 'client SIGKILL',
		run   => client_process_ends('sigkill')
	},
	{
		name  => 'FATAL: no such database',
		group => 'FATAL',
		run   => connection_fails(undef, 'regress_churn_nodb',
			qr/database "regress_churn_nodb" does not exist/)
	},
	{
		name  => 'FATAL: role connection limit',
		group => 'FATAL',
		run   => connection_fails('regress_churn_limited', 'postgres',
			qr/too many connections for role/)
	},
	{
		name  => 'FATAL: terminated itself while writing',
		group => 'FATAL',
		run   => sub {
			my ($ctx) = @_;
			my ($v) = new_victim($ctx, 'holds_xid');
			die "the session survived" if defined $v->do('SELECT pg_terminate_backend(pg_backend_pid())');
			my $err = first_line($v->errstr);
			die "ended with \"$err\"" unless $err =~ $ADMIN_COMMAND;
		}
	},);

# needs: false where the server lacks what the path needs (13: no
# idle_session_timeout)
my @DROPPED_PATHS = grep { exists $_->{needs} && !$_->{needs} } @PATHS;
@PATHS = grep { !exists $_->{needs} || $_->{needs} } @PATHS;
note "server_version_num $server_version_num: no $_->{name}; "
  . "the ending path \"$_->{group}\" is left out" for @DROPPED_PATHS;
my %DROPPED_GROUP = map { $_->{group} => 1 } @DROPPED_PATHS;

sub ender
{
	my ($id, $role) = @_;
	my %count;
	my $ctx = { id => $id, role => $role, seq => 0, count => \%count };
	# only the victims warn, and only what the server told them
	$SIG{__WARN__} = sub {
		if   ($_[0] =~ /^(?:FATAL|ERROR|WARNING|NOTICE):/) { push @victim_notices, $_[0] }
		else                                              { print STDERR @_ }
	};
	my $turn = $id;
	while (!stopping())
	{
		if (!$ctx->{killer})
		{
			$ctx->{killer} = connect_as($role, "churn_killer$id");
			if (!$ctx->{killer})
			{
				count_error(\%count, 'ender connect', $DBI::errstr);
				usleep(100_000);    # back off: the server is not there
				next;
			}
			$ctx->{killer}->do("SET statement_timeout = '${WAIT}s'");
		}
		my $path = $PATHS[ $turn++ % @PATHS ];
		$ctx->{seq}++;
		if (eval { $path->{run}->($ctx); 1 })
		{
			$count{"ended $path->{name}"}++;
			next;
		}
		count_error(\%count, "ender $path->{name}", $@) unless stopping();
		delete $ctx->{killer} unless $ctx->{killer}->ping;
	}
	return %count;
}

#
# The parent: run the churn, watch the log, collect the figures
#
sub postmaster_pid
{
	open my $fh, '<', $node->data_dir . '/postmaster.pid' or return 'none';
	my $pid = <$fh>;
	chomp $pid;
	return $pid;
}

sub stop_children
{
	my ($signal) = @_;
	kill $signal, $_ for keys %children;
	return;
}

# Kill whatever is left, also when the test dies; runs before the
# Cluster's END, which stops the node.
my $parent_pid = $$;
END
{
	if (defined $parent_pid && $$ == $parent_pid && %children)
	{
		stop_children('KILL');
		waitpid($_, 0) for keys %children;
	}
	# a crashed server is gone already: do not let the Cluster's END bail out
	$node->stop('immediate', fail_ok => 1)
	  if defined $parent_pid && $$ == $parent_pid && $node;
}

my $pm_before = postmaster_pid();
my $log_start = -s $node->logfile;

my $start = time;
$deadline = $start + $SECONDS;
spawn("reader$_", sub { reader('regress_churn') }) for 1 .. $N_READERS;
spawn('reader_monitor', sub { reader('regress_churn_monitor') });
for my $id (1 .. $N_ENDERS)
{
	my $role = $id > $N_ENDERS - $N_OTHER_ENDERS ? 'regress_churn_other' : 'regress_churn';
	spawn("ender$id", sub { ender($id, $role) });
}
note "starting $N_READERS + 1 readers and $N_ENDERS enders for ${SECONDS}s";

# Poll the children and the log; stop everything at the first crash.
my ($first_crash, $stopped_early, $log_pos) = (undef, 0, $log_start);
while (%children)
{
	while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0)
	{
		delete $children{$pid};
	}
	last unless %children;

	my $new = PostgreSQL::Test::Utils::slurp_file($node->logfile, $log_pos);
	$new = substr($new, 0, rindex($new, "\n") + 1);    # whole lines only
	$log_pos += length $new;
	if (!defined $first_crash && $new =~ $CRASH_MARK)
	{
		$first_crash = time - $start;
		$stopped_early = 1;
		diag sprintf('the server crashed %.1fs into the churn; stopping it', $first_crash);
		stop_children('TERM');
	}
	if (time > $deadline + $CHILD_GRACE)
	{
		diag 'children still running ' . $CHILD_GRACE . 's after the deadline; killing them';
		stop_children('KILL');
		$deadline = time + 3600;    # kill once
	}
	usleep(200_000);
}
my $elapsed = time - $start;

#
# Figures
#
my @reader_names = ((map { "reader$_" } 1 .. $N_READERS), 'reader_monitor');
my @ender_names = map { "ender$_" } 1 .. $N_ENDERS;
my (%sum, %per_child);
for my $name (@reader_names, @ender_names)
{
	my $r = read_results($name) // { died => 'no result file' };
	$per_child{$name} = $r;
	$sum{$_} += $r->{$_} for grep { $r->{$_} =~ /^\d+$/ } keys %$r;
}
my @errors = sort grep { /^error / } keys %sum;

my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $log_start);
my @crash_lines = grep { $_ =~ $CRASH_MARK } split /\n/, $log;
my $crashes = grep { $_ =~ $CRASH_CAUSE } @crash_lines;
$crashes ||= 1 if @crash_lines;

# What the server log says, in order
my @LOG_FIGURES = grep { !$DROPPED_GROUP{ $_->[0] } } (
	[ 'iit timeout' => qr/FATAL:  terminating connection due to idle-in-transaction timeout/ ],
	[ 'idle-session timeout' => qr/FATAL:  terminating connection due to idle-session timeout/ ],
	[ 'administrator command' => qr/FATAL:  terminating connection due to administrator command/ ],
	[ 'pg_connwatch terminated' => qr/LOG:  pg_connwatch terminated backend/ ],
	[ 'connection to client lost' => qr/FATAL:  connection to client lost/ ],
	[ 'EOF in a transaction' => qr/unexpected EOF on client connection with an open transaction/ ],
	[ 'no such database' => qr/FATAL:  database "regress_churn_nodb" does not exist/ ],
	[ 'role connection limit' => qr/FATAL:  too many connections for role/ ],
	[ 'disconnections' => qr/LOG:  disconnection: session time: .* user=regress_churn/ ],);
my %log_count;
$log_count{ $_->[0] } = () = $log =~ /$_->[1]/g for @LOG_FIGURES;

note sprintf('churn ran %.1fs%s', $elapsed,
	$stopped_early ? sprintf(' (stopped at the first crash, %.1fs in)', $first_crash) : '');
note sprintf('%-16s %8d rounds %8d reads %8d calls %6d errors', $_,
	$per_child{$_}{rounds} // 0, $per_child{$_}{reads} // 0, $per_child{$_}{calls} // 0,
	scalar grep { /^error / } keys %{ $per_child{$_} })
  for @reader_names;
note sprintf('%-52s %8d', $_->{label}, $sum{"run $_->{label}"} // 0) for @STATEMENTS;
note sprintf('ended by %-44s %8d', $_->{name}, $sum{"ended $_->{name}"} // 0) for @PATHS;
note sprintf('state at the end: %-35s %8d', $_, $sum{"state $_"} // 0) for @ANY_STATE;
note sprintf('server log: %-41s %8d', $_->[0], $log_count{ $_->[0] }) for @LOG_FIGURES;
note sprintf('libpq < 14: FATAL read from the server log %15d',
	$sum{'FATAL read from the server log'})
  if $sum{'FATAL read from the server log'};
# after a crash every session has errors: only worth a note then
if (@crash_lines) { note "$_: $sum{$_}" for @errors }
else              { diag "$_: $sum{$_}" for @errors }
diag 'crash: ' . $_ for @crash_lines[ 0 .. ($#crash_lines < 19 ? $#crash_lines : 19) ];
if (@crash_lines)
{
	# what the crashed process was running
	my @running = grep { /Failed process was running/ } split /\n/, $log;
	diag 'crash: ' . $_ for @running[ 0 .. ($#running < 4 ? $#running : 4) ];
}

#
# Checks
#
is(scalar @crash_lines, 0, 'the server never crashed (no crash line in the server log)');
is(postmaster_pid(), $pm_before, 'the postmaster is the one that started');
is(scalar $node->psql('postgres', 'SELECT 1'), 0, 'the server answers after the churn');

for my $name (@reader_names, @ender_names)
{
	is($per_child{$name}{died}, undef, "$name ran to its end");
}
# The rest measures the churn itself: meaningless once it was cut short by
# a crash, which has failed the test already.
if (@crash_lines)
{
	note 'the churn was cut short by a crash: its own figures are not checked';
}
else
{
	for my $name (@reader_names)
	{
		cmp_ok($per_child{$name}{rounds} // 0, '>=', $MIN_ROUNDS,
			"$name read every view and called every function at least $MIN_ROUNDS times");
	}
	is(join("\n", grep { /^error reader/ } @errors), '', 'no reader got an error');
	is(join("\n", grep { /^error ender/ } @errors), '',
		'every session ended as intended, and nothing else failed');

	for my $path (@PATHS)
	{
		cmp_ok($sum{"ended $path->{name}"} // 0, '>=', $MIN_PER_PATH,
			"sessions ended by $path->{name}");
	}
	cmp_ok($sum{"state $_"} // 0, '>=', $MIN_PER_PATH, "sessions ended while $_")
	  for @ANY_STATE;

	# The remember layer kept count through all of it: every session that
	# started has been taken out of the peaks again, and was counted as
	# an ending.
	is( $node->safe_psql(
			'postgres', q{
SELECT current = (SELECT count(*) FROM pg_stat_activity
                  WHERE backend_type = 'client backend')
FROM connwatch.peaks WHERE scope = 'server'}),
		't', 'peaks: the server\'s current sessions are exactly its client backends');
	my $ended_total = 0;
	$ended_total += $sum{"ended $_->{name}"} // 0 for @PATHS;
	# (sessions refused at login never started: those are refusals)
	cmp_ok($node->safe_psql('postgres',
			'SELECT (SELECT coalesce(sum(count), 0) FROM connwatch.session_endings)
			      + (SELECT coalesce(sum(count), 0) FROM connwatch.refused_connections)'),
		'>=', $ended_total,
		'session_endings and refused_connections counted every session the churn ended');
	# (the churn gives each session its own application_name: thousands of
	# keys, so the ledger overflows, and what it drops is still counted)
	cmp_ok($log_count{$_}, '>=', $MIN_PER_PATH, "the server log shows $_") for grep {
		!$DROPPED_GROUP{$_}
	} ('iit timeout', 'idle-session timeout', 'administrator command',
		'pg_connwatch terminated', 'EOF in a transaction', 'connection to client lost',
		'no such database', 'role connection limit', 'disconnections');
}

# The summary: one greppable line
my %by_group;
$by_group{ $_->{group} } += $sum{"ended $_->{name}"} // 0 for @PATHS;
my @groups = grep { !$DROPPED_GROUP{$_} } ('iit timeout', 'idle-session timeout',
	'pg_terminate_backend', 'connwatch.terminate_*', 'client exit', 'client SIGKILL', 'FATAL');
my $ended = 0;
$ended += $_ for values %by_group;
diag sprintf('churn: %d reads, %d calls, %d sessions ended (%s) in %.0fs, %d crashes',
	$sum{reads} // 0, $sum{calls} // 0, $ended,
	join(', ', map { ($by_group{$_} // 0) . " by $_" } @groups),
	$elapsed, $crashes);

$node->stop('fast', fail_ok => 1);    # after a crash it is gone already
done_testing();
