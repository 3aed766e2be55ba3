# 404_hostile_names.pl - names a client chose are data: diagnose()'s advice
# acts on exactly the sessions its finding names, and nothing pg_connwatch
# prints carries a raw control character, whatever the names.
#
# On every major:
#   - applications named '%', '_x', 'a\', with quotes, CR/LF, ESC and DEL
#     (the server itself cleans application_name, so these are what a login
#     role can send), beside innocent look-alikes (billing-api and
#     billing_api) and two roles without an application name, all idle in a
#     transaction: the SQL in each CW101 advice is executed as written, and
#     only that finding's sessions end; its ALTER ROLE reaches its role;
#   - a role whose name carries an ESC sequence and a quote: its advice's
#     identifiers are printable and name that role;
#   - a prepared transaction whose GID carries a newline, SQL and an ESC
#     sequence: CW121's advice, executed, rolls back that transaction and
#     grants nothing;
#   - a reused pid: the advice of a session that ended touches the session
#     that has its pid now (simulated with the pid of a live session, and
#     for real with /proc/sys/kernel/ns_last_pid when this user may write it);
#   - unauthenticated startup packets claiming hostile user and database
#     names (ESC/OSC, CR/LF, DEL, U+2028, an emoji, an invalid byte): they
#     are counted, and refused_connections and diagnose() show them escaped;
#   - diagnose() with client_encoding WIN1252 and LATIN1 after ten refusals
#     claiming an emoji role;
#   - no raw control character in the remember layer's views, xmin_horizon,
#     the live views' query and application_name,
#     diagnose() or metrics().

use strict;
use warnings;

use DBI;
use Encode qw(encode decode);
use FindBin;
use IO::Socket::UNIX;
use JSON::PP;
use lib "$FindBin::Bin/lib";
use ConnwatchTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('hostile_names');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
max_connections = 40
max_prepared_transactions = 5
autovacuum = off
connwatch.sample_interval = '100ms'
connwatch.diagnose_window = '30s'
connwatch.diagnose_idle_in_transaction = '1s'
connwatch.diagnose_horizon_age = '1s'
});
$node->start;
is($node->safe_psql('postgres', 'SHOW server_encoding'), 'UTF8', 'the cluster is UTF8');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE TABLE t (id int PRIMARY KEY);
INSERT INTO t VALUES (1);
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_alice LOGIN;
CREATE ROLE regress_bob LOGIN;
GRANT SELECT, UPDATE ON t TO regress_app, regress_alice, regress_bob;
});
# a role whose name a careless superuser accepted
my $evil_role = "regress_ev\e[2Jil'\"";
$node->safe_psql('postgres',
	'CREATE ROLE ' . quote_ident($evil_role) . ' LOGIN; GRANT SELECT ON t TO ' . quote_ident($evil_role));

my $socket = $node->host;
my $port   = $node->port;

sub quote_ident { my ($n) = @_; $n =~ s/"/""/g; return qq{"$n"} }

sub connect_as
{
	my ($user, $app) = @_;
	my $dbh = DBI->connect("dbi:Pg:dbname=postgres;host=$socket;port=$port",
		$user, undef,
		{ RaiseError => 1, PrintError => 0, AutoCommit => 1, pg_enable_utf8 => 0 });
	$dbh->do('SET application_name = ' . $dbh->quote($app)) if defined $app;
	return $dbh;
}

my $super = connect_as('postgres');

# A session idle in a transaction; returns [dbh, pid, backend_start]
sub leak
{
	my ($user, $app) = @_;
	my $dbh = connect_as($user, $app);
	$dbh->begin_work;
	$dbh->selectrow_array('SELECT id FROM t');
	my ($pid) = $dbh->selectrow_array('SELECT pg_backend_pid()');
	return { dbh => $dbh, pid => $pid, user => $user, app => $app };
}

sub alive_pids
{
	my $rows = $super->selectcol_arrayref(
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'});
	return { map { $_ => 1 } @$rows };
}

sub diagnose
{
	my ($dbh) = @_;
	$dbh //= $super;
	return @{
		$dbh->selectall_arrayref(
			q{SELECT severity, code, subject, finding, evidence::text AS evidence,
			         client_symptom, advice FROM connwatch.diagnose()},
			{ Slice => {} })
	};
}

# The SQL statements in an advice: each begins with one of these words and
# ends at the first ';' outside a literal or a quoted identifier.
sub statements
{
	my ($advice) = @_;
	my @found;
	while ($advice =~ /\b(SELECT connwatch\.|ALTER ROLE |ALTER DATABASE |COMMIT PREPARED |ROLLBACK PREPARED |SELECT pg_drop_replication_slot)/g)
	{
		my $start = $-[1];
		my $i     = $start;
		my $n     = length $advice;
		my $end;
		while ($i < $n)
		{
			my $c = substr($advice, $i, 1);
			if ($c eq ';') { $end = $i; last }
			if ($c eq "'")
			{
				my $e = $i > 0 && substr($advice, $i - 1, 1) eq 'E';
				$i++;
				while ($i < $n)
				{
					my $d = substr($advice, $i, 1);
					if ($e && $d eq '\\') { $i += 2; next }
					if ($d eq "'")
					{
						if (substr($advice, $i + 1, 1) eq "'") { $i += 2; next }
						last;
					}
					$i++;
				}
			}
			elsif ($c eq '"')
			{
				$i++;
				while ($i < $n)
				{
					my $d = substr($advice, $i, 1);
					if ($d eq '"')
					{
						if (substr($advice, $i + 1, 1) eq '"') { $i += 2; next }
						last;
					}
					$i++;
				}
			}
			$i++;
		}
		last unless defined $end;
		push @found, substr($advice, $start, $end - $start + 1);
		pos($advice) = $end + 1;
	}
	return @found;
}

# No character below 0x20 (but none at all in one-line columns), no DEL,
# no C1 control, no U+2028/2029, no invalid UTF-8
sub printable_ok
{
	my ($text, $multiline) = @_;
	return 1 unless defined $text;
	my $chars = eval { decode('UTF-8', $text, Encode::FB_CROAK | Encode::LEAVE_SRC) };
	return 0 unless defined $chars;
	$chars =~ s/[\n\t]//g if $multiline;
	return $chars !~ /[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}\x{202a}-\x{202e}\x{2066}-\x{2069}]/;
}

# Wait until these sessions have been idle in their transactions for
# connwatch.diagnose_idle_in_transaction (1 s): CW101 reports them from then
# on.
sub wait_leaked
{
	my (@sessions) = @_;
	my $pids = join ',', map { $_->{pid} } @sessions;
	$node->poll_query_until('postgres', qq{
SELECT count(*) = @{[ scalar @sessions ]} FROM pg_stat_activity
WHERE pid IN ($pids) AND state = 'idle in transaction'
  AND state_change <= clock_timestamp() - interval '1 s'})
	  or die "sessions $pids are not idle in their transactions";
	return;
}

# Wait until every prepared transaction is older than
# connwatch.diagnose_horizon_age (1 s): CW121 reports it from then on.
sub wait_prepared_old
{
	$node->poll_query_until('postgres', q{
SELECT count(*) > 0 AND bool_and(prepared <= clock_timestamp() - interval '1 s')
FROM pg_prepared_xacts})
	  or die 'no prepared transaction older than 1 s';
	return;
}

sub wait_gone
{
	my (@pids) = @_;
	for (1 .. 100)
	{
		my $alive = alive_pids();
		return 1 unless grep { $alive->{$_} } @pids;
		usleep(50_000);
	}
	return 0;
}

#
# 1. Applications with hostile names beside innocent look-alikes, and two
#    roles without an application name: each CW101 advice, executed,
#    ends its own sessions and no other.
#
{
	my @apps = ('%', '_x', 'a\\', qq{q'uo"te}, "cr\rlf\n", "esc\e[2J\x7f");
	my @sessions;
	push @sessions, leak('regress_app', $_) for @apps;
	push @sessions, leak('regress_app', 'billing-api'), leak('regress_app', 'billing-api');
	push @sessions, leak('regress_app', 'billing_api');
	push @sessions, leak('regress_alice', ''), leak('regress_bob', ''), leak('regress_bob', '');
	wait_leaked(@sessions);

	my @f = grep { $_->{code} eq 'CW101' } diagnose();
	is(scalar(@f), 10, 'hostile applications: one CW101 per application, role and database')
	  or diag join "\n", map { $_->{subject} } @f;
	for my $f (@f)
	{
		ok(printable_ok($f->{$_}), "CW101 $f->{subject}: $_ is printable")
		  for qw(subject finding evidence);
		ok(printable_ok($f->{advice}, 1), "CW101 $f->{subject}: advice is printable");
	}

	for my $f (@f)
	{
		my $evidence = decode_json($f->{evidence});
		my %named = map { $_ => 1 } @{ $evidence->{pids} };
		my @sql = statements($f->{advice});
		is(scalar(@sql), 2, "CW101 $f->{subject}: two statements in the advice")
		  or diag $f->{advice};
		my $before = alive_pids();
		for my $stmt (@sql)
		{
			my $ok = eval { $super->do($stmt); 1 };
			ok($ok, "CW101 $f->{subject}: the advice runs as written: $stmt")
			  or diag $@;
		}
		# its ALTER ROLE reached the role of the finding, in its database
		my ($set) = $super->selectrow_array(
			q{SELECT count(*) FROM pg_db_role_setting s
			  JOIN pg_roles r ON r.oid = s.setrole
			  JOIN pg_database d ON d.oid = s.setdatabase
			  WHERE connwatch.printable(r.rolname) = ? AND d.datname = 'postgres'},
			undef, $evidence->{role});
		is($set, 1, "CW101 $f->{subject}: ALTER ROLE reached role $evidence->{role}");
		$super->do('ALTER ROLE ' . $super->quote_identifier($_) . ' IN DATABASE postgres RESET ALL')
		  for qw(regress_app regress_alice regress_bob);
		ok(wait_gone(keys %named), "CW101 $f->{subject}: its sessions ended");
		my $after = alive_pids();
		my @gone  = sort grep { !$after->{$_} } keys %$before;
		is_deeply(\@gone, [ sort keys %named ],
			"CW101 $f->{subject}: only its own sessions ended");
	}
	eval { $_->{dbh}->disconnect } for @sessions;
}

#
# 2. A role named with an ESC sequence and quotes: its advice names it with
#    printable identifiers that mean exactly that role.
#
{
	my $s = leak($evil_role, 'evil-app');
	wait_leaked($s);
	my ($f) = grep { $_->{code} eq 'CW101' && $_->{subject} eq 'application "evil-app"' } diagnose();
	ok($f, 'hostile role: CW101 found');
	ok(printable_ok($f->{$_}), "hostile role: $_ is printable") for qw(finding evidence);
	ok(printable_ok($f->{advice}, 1), 'hostile role: advice is printable');
	like($f->{advice}, qr/ALTER ROLE U&"regress_ev\\001b\[2Jil'""" IN DATABASE postgres/,
		'hostile role: a U&"" identifier with its ESC escaped');
	for my $stmt (statements($f->{advice}))
	{
		ok(eval { $super->do($stmt); 1 }, "hostile role: runs: $stmt") or diag $@;
	}
	my ($set) = $super->selectrow_array(
		q{SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
		  WHERE r.rolname = ?}, undef, $evil_role);
	is($set, 1, 'hostile role: ALTER ROLE reached exactly that role');
	$super->do('ALTER ROLE ' . quote_ident($evil_role) . ' RESET ALL; ALTER ROLE ' . quote_ident($evil_role) . ' IN DATABASE postgres RESET ALL');
	ok(wait_gone($s->{pid}), 'hostile role: its session ended');
	# the handle of an ended session, closed here: a failure in DESTROY is
	# a die that 19's PostgreSQL::Test::Utils counts as the test's end
	eval { $s->{dbh}->disconnect };
}

#
# 3. A prepared transaction with a GID that would, pasted raw, make
#    regress_bob a superuser.
#
{
	my $gid = "gid\n'; ALTER ROLE regress_bob SUPERUSER; --\e[2J\e]0;x\a";
	my $dbh = connect_as('regress_app', 'two-phase');
	$dbh->begin_work;
	$dbh->selectrow_array('SELECT id FROM t FOR UPDATE');
	$dbh->do('PREPARE TRANSACTION ' . $dbh->quote($gid));
	$dbh->disconnect;
	wait_prepared_old();
	my ($f) = grep { $_->{code} eq 'CW121' } diagnose();
	ok($f, 'GID: CW121 found');
	ok(printable_ok($f->{$_}), "GID: $_ is printable") for qw(subject finding evidence);
	ok(printable_ok($f->{advice}, 1), 'GID: advice is printable');
	my $rows = $super->selectall_arrayref('SELECT holder FROM connwatch.xmin_horizon');
	ok(!grep({ !printable_ok($_->[0]) } @$rows), 'GID: xmin_horizon shows it printable')
	  or diag explain $rows;
	my @sql = grep { /^ROLLBACK PREPARED/ } statements($f->{advice});
	is(scalar(@sql), 1, 'GID: the advice has one ROLLBACK PREPARED') or diag $f->{advice};
	ok(eval { $super->do($sql[0]); 1 }, "GID: the advice runs as written: $sql[0]") or diag $@;
	is($super->selectrow_array('SELECT count(*) FROM pg_prepared_xacts'), 0,
		'GID: the advice rolled back that transaction');
	is($super->selectrow_array(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_bob'}),
		0, 'GID: nothing was granted');
}

#
# 4. A reused pid: the identity-pinned advice of an ended session touches
#    the session that has its pid now.
#
{
	my $s = leak('regress_app', 'pid-owner');
	my $other = leak('regress_alice', 'bystander');
	wait_leaked($s, $other);
	my ($f) = grep { $_->{code} eq 'CW101' && $_->{subject} eq 'application "pid-owner"' } diagnose();
	my ($stmt) = grep { /terminate_backend/ } statements($f->{advice});
	ok($stmt =~ /\(VALUES \($s->{pid}, /, 'pid reuse: the advice names the session by pid and start');
	$s->{dbh}->disconnect;
	ok(wait_gone($s->{pid}), 'pid reuse: the session ended');
	# the same advice, with the pid now of another session (as a reused pid)
	(my $reused = $stmt) =~ s/\(VALUES \($s->{pid}, /(VALUES ($other->{pid}, /;
	my $result = $super->selectcol_arrayref($reused);
	is_deeply($result, [0], 'pid reuse: terminate_backend refuses another session start');
	ok(alive_pids()->{ $other->{pid} }, 'pid reuse: the session that has the pid lives on');

	# for real: the next backend gets the old pid, through
	# /proc/sys/kernel/ns_last_pid, which only root may write: directly, or
	# through scripts/test_major.sh's helper (CONNWATCH_PID_CHOOSER)
  SKIP:
	{
		my $chooser = $ENV{CONNWATCH_PID_CHOOSER};
		my $direct  = -w '/proc/sys/kernel/ns_last_pid';
		skip 'pid reuse for real: nobody here may choose the next pid', 2
		  unless $direct || (defined $chooser && -p "$chooser/ask");
		my $new;
		for my $attempt (1 .. 10)
		{
			# the old backend must have exited and been reaped: the pid is
			# free only then (kill 0 finds a zombie too)
			for (1 .. 100)
			{
				last unless kill(0, $s->{pid});
				usleep(50_000);
			}
			if ($direct)
			{
				open(my $fh, '>', '/proc/sys/kernel/ns_last_pid') or last;
				print $fh ($s->{pid} - 1);
				close $fh;
			}
			else
			{
				open(my $ask, '>', "$chooser/ask") or last;
				print $ask ($s->{pid} - 1) . "\n";
				close $ask;
				open(my $done, '<', "$chooser/done") or last;
				my $answer = <$done>;
				close $done;
			}
			$new = leak('regress_alice', 'reuser');
			last if $new->{pid} == $s->{pid};
			note "pid reuse for real: wanted $s->{pid}, got $new->{pid} (attempt $attempt)";
			$new->{dbh}->disconnect;
			undef $new;
		}
		skip 'pid reuse for real: another process took the pid ten times', 2 unless $new;
		note "pid $s->{pid} reused by a session of regress_alice";
		is_deeply($super->selectcol_arrayref($stmt), [0],
			'pid reuse for real: the old advice does not terminate the new session');
		ok(alive_pids()->{ $new->{pid} }, 'pid reuse for real: the new session lives on');
		$new->{dbh}->disconnect;
	}
	$other->{dbh}->disconnect;
}

#
# 5. Startup packets nobody authenticated, claiming hostile names.
#
sub startup_packet
{
	my ($user, $database) = @_;
	my $sock = IO::Socket::UNIX->new(Peer => "$socket/.s.PGSQL.$port") or die "socket: $!";
	my $params = "user\0$user\0database\0$database\0application_name\0hostile\0\0";
	print $sock pack('NN', 8 + length($params), 196608) . $params;
	# the server's messages up to its error (trust sends AuthenticationOk first)
	my $last = '';
	for (;;)
	{
		my $header;
		last unless read($sock, $header, 5) == 5;
		my ($type, $len) = unpack('aN', $header);
		my $body;
		read($sock, $body, $len - 4) if $len > 4;
		$last = $type;
		last if $type eq 'E' || $type eq 'Z';
	}
	close $sock;
	return $last;
}

{
	my @hostile = (
		"u\e]0;pwned\a", "cr\rlf\nADVICE: run this", "esc\e[2J\e[H", "del\x7f",
		encode('UTF-8', "ls\x{2028}ps\x{2029}"), encode('UTF-8', "emoji\x{1F600}"),
		"bad\xff\xfe", "pct%_\\");
	for my $name (@hostile)
	{
		is(startup_packet($name, $name), 'E', 'startup packet: refused with an error');
	}
	startup_packet(encode('UTF-8', "\x{1F600}"), 'postgres') for 1 .. 10;
	$node->poll_query_until('postgres',
		q{SELECT sum(count) >= 18 FROM connwatch.refused_connections
		  WHERE cause = 'role does not exist'})
	  or die 'refusals not counted';

	my $rows = $super->selectall_arrayref(
		q{SELECT cause, datname, usename, application_name, host(client_addr)
		  FROM connwatch.refused_connections});
	my @bad = grep { my $r = $_; grep { !printable_ok($_) } @$r } @$rows;
	is(scalar(@bad), 0, 'refused_connections: every claimed name printable')
	  or diag explain \@bad;
	my @claimed = map { $_->[2] // '' } @$rows;
	ok((grep { $_ eq 'u\x1b]0;pwned\x07' } @claimed), 'refused_connections: ESC and BEL shown as \x1b, \x07')
	  or diag explain \@claimed;

	my @f = diagnose();
	ok(scalar(grep { $_->{code} eq 'CW114' } @f) >= 1, 'startup packets: CW114 found');
	my @unprintable = grep {
		my $f = $_;
		grep({ !printable_ok($f->{$_}) } qw(severity code subject finding evidence))
		  || !printable_ok($f->{client_symptom}, 1) || !printable_ok($f->{advice}, 1)
	} @f;
	is(scalar(@unprintable), 0, 'diagnose(): no raw control character in any finding')
	  or diag explain \@unprintable;

	for my $encoding (qw(WIN1252 LATIN1))
	{
		my $dbh = connect_as('postgres');
		$dbh->do("SET client_encoding = '$encoding'");
		my $n = eval { scalar(diagnose($dbh)) };
		ok(defined $n && $n > 0, "diagnose() with client_encoding $encoding") or diag $@;
		my $view = eval {
			$dbh->selectall_arrayref('SELECT * FROM connwatch.refused_connections');
		};
		ok(defined $view, "refused_connections with client_encoding $encoding") or diag $@;
		$dbh->disconnect;
	}
}

#
# 6. Every advice, pasted whole into a superuser's psql, runs its own
#    statements and nothing a name carried: applications and a GID named to
#    break out of a quote or a comment, or to run a psql meta-command.
#
{
	my $canary = $node->basedir . '/pwned';
	my @apps = (qq{x"; CREATE ROLE canary1; --}, qq{x'; CREATE ROLE canary2; --},
		'x; CREATE ROLE canary3; --', "x \\! touch $canary", "x \\gexec");
	my @sessions = map { leak('regress_app', $_) } @apps;
	my $dbh = connect_as('regress_app', 'two-phase-2');
	$dbh->begin_work;
	$dbh->selectrow_array('SELECT id FROM t FOR UPDATE');
	$dbh->do('PREPARE TRANSACTION ' . $dbh->quote(qq{g"; CREATE ROLE canary4; -- '; CREATE ROLE canary5; --}));
	$dbh->disconnect;
	wait_leaked(@sessions);
	wait_prepared_old();
	my @f = diagnose();
	ok(scalar(grep { $_->{code} eq 'CW101' } @f) >= scalar(@apps), 'paste: the leaks are found');
	for my $f (@f)
	{
		# the advice's lines: comments, or statements of their own
		my @bad = grep { !/^-- / && !/^(SELECT connwatch\.|SELECT \* FROM connwatch\.)[^\n]*;$/ } split /\n/, $f->{advice};
		is(scalar(@bad), 0, "paste: $f->{code} $f->{subject}: every line a comment or a statement")
		  or diag explain \@bad;
		# as a DBA's psql runs it: on after an error (ON_ERROR_STOP off)
		my ($ret, $out, $err) = $node->psql('postgres', $f->{advice}, on_error_stop => 0);
		unlike($err, qr/ERROR/, "paste: $f->{code} $f->{subject}: the whole advice runs in psql without an error");
	}
	is($super->selectrow_array(q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'canary%'}),
		0, 'paste: no statement a name carried ran');
	ok(!-e $canary, 'paste: no psql meta-command a name carried ran');
	ok(wait_gone(map { $_->{pid} } @sessions), 'paste: the leaked sessions were ended by their advice');
	is($super->selectrow_array('SELECT count(*) FROM pg_prepared_xacts'), 1,
		'paste: the prepared transaction is left to the DBA (its advice runs nothing)');
	$super->do('ROLLBACK PREPARED ' . $super->quote(qq{g"; CREATE ROLE canary4; -- '; CREATE ROLE canary5; --}));
	eval { $_->{dbh}->disconnect } for @sessions;
}

#
# 7. Nothing pg_connwatch remembers or reports carries a raw control
#    character: the remember layer's views, xmin_horizon, diagnose(),
#    metrics().
#
{
	my $s = leak('regress_app', "metrics\e[2J");
	sleep 1;
	for my $view (qw(refused_connections session_endings peaks history xmin_horizon))
	{
		my $rows = $super->selectall_arrayref("SELECT * FROM connwatch.$view");
		my @bad = grep { my $r = $_; grep { !printable_ok($_) } @$r } @$rows;
		is(scalar(@bad), 0, "connwatch.$view: no raw control character") or diag explain $bad[0];
	}
	# the live views: query text (any client's) and application names (the
	# server cleans them) are printable; role and database names are shown
	# as pg_stat_activity shows them
	my $q = connect_as('regress_app', 'live-query');
	$q->begin_work;
	$q->do("SELECT 1 /* \e]0;title\a\n */");
	for my $view (qw(sessions idle_in_transaction long_transactions))
	{
		my $rows = $super->selectall_arrayref("SELECT application_name, query FROM connwatch.$view");
		my @bad = grep { my $r = $_; grep { !printable_ok($_) } @$r } @$rows;
		is(scalar(@bad), 0, "connwatch.$view: application_name and query printable")
		  or diag explain $bad[0];
	}
	$q->rollback;
	$q->disconnect;
	my ($metrics) = $super->selectrow_array('SELECT connwatch.metrics()');
	ok(printable_ok($metrics, 1), 'metrics(): no raw control character');
	my %series;
	my @dups = grep { /^[a-z]/ && $series{ s/ [^ ]+$//r }++ } split /\n/, $metrics;
	is(scalar(@dups), 0, 'metrics(): no duplicate series') or diag explain \@dups;
	$s->{dbh}->disconnect;
}

$super->disconnect;
$node->stop;
done_testing();
