# 401_diagnose_scenarios.pl - connwatch.diagnose() against real clients.
#
# test/scenarios/scenarios.py reproduces, with SQLAlchemy and psycopg2
# (Debian's, for /usr/bin/python3), the patterns that bring people to
# pg_connwatch, each until the client raises its real error: a Flask-style
# app that never closes its Sessions (QueuePool exhausted), a pool larger
# than its role's CONNECTION LIMIT, max_connections used up, a connection
# per request, a pooled connection the server closed (idle_session_timeout;
# idle_in_transaction_session_timeout on 13), a lock chain headed by an
# idle transaction, a prepared transaction left by a crashed app, one
# pooled connection shared by forked workers, and a healthy pooled app.
# While the pattern is alive it runs connwatch.diagnose() and prints one
# JSON line.  For each scenario this test checks that the client really
# got its error, that the expected finding is there and names the right
# application (or role, pid, prepared transaction), and that the client's
# error text appears in the finding's client_symptom: the first line of the
# error, cut to the part after libpq's "connection to server ... failed: "
# (connection errors; libpq 13 has no such prefix: from "FATAL:") or after
# SQLAlchemy's "(psycopg2.X) " wrapper, quotemeta'd, with every number and
# every quoted name a wildcard (\S+).  The healthy app: no finding at all.
#
# Skipped when /usr/bin/python3 cannot import sqlalchemy and psycopg2.

use strict;
use warnings;

use FindBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $PYTHON = '/usr/bin/python3';
my $SCRIPT = "$FindBin::Bin/../scenarios/scenarios.py";

{
	my ($out, $err) = ('', '');
	plan skip_all =>
	  "python3-sqlalchemy and python3-psycopg2 are not installed for $PYTHON"
	  unless -x $PYTHON
	  && eval {
		IPC::Run::run([ $PYTHON, '-c', 'import sqlalchemy, psycopg2' ],
			'<', \undef, '>', \$out, '2>', \$err);
	  };
}

my $started = time;

my $node = PostgreSQL::Test::Cluster->new('scenarios');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
max_connections = 25
superuser_reserved_connections = 3
max_prepared_transactions = 5
autovacuum = off
connwatch.sample_interval = '200ms'
connwatch.diagnose_window = '3s'
connwatch.diagnose_idle_in_transaction = '1s'
connwatch.diagnose_horizon_age = '1s'
connwatch.diagnose_churn_rate = 5
});
# The scenarios hold each pattern as long as these thresholds ask (see
# scenarios.py), so they are as short as the settings allow: whole seconds,
# and a window that a leaked pool, timing out every 2 s, spans.  The churn
# threshold is what this VM's 30-45 forks a second reach twice over even
# under load; CW140's rule is the same at any rate.
$node->start;

my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
note "PostgreSQL $major";
note 'SQLAlchemy '
  . `$PYTHON -c 'import sqlalchemy, psycopg2; print(sqlalchemy.__version__, "/ psycopg2", psycopg2.__version__)'`;

# The roles the scenarios use (the script creates what is missing, and
# gives cw_idle its timeout for the major).
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE cw_app LOGIN;
CREATE ROLE cw_limited LOGIN CONNECTION LIMIT 3;
CREATE ROLE cw_idle LOGIN;
});

my $json = JSON::PP->new->canonical;

# Run one scenario with fresh ledgers and peaks; returns its JSON result.
sub scenario
{
	my ($name, @args) = @_;
	$node->safe_psql('postgres',
		'SELECT connwatch.reset_ledgers(); SELECT connwatch.reset_peaks();');
	local %ENV = %ENV;
	$ENV{PGHOST}     = $node->host;
	$ENV{PGPORT}     = $node->port;
	$ENV{PGUSER}     = $superuser;
	$ENV{PGDATABASE} = 'postgres';
	delete $ENV{PGAPPNAME};
	delete $ENV{PGOPTIONS};
	my ($out, $err) = ('', '');
	my $t0 = time;
	IPC::Run::run([ $PYTHON, $SCRIPT, $name, '--evidence', @args ],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(170));
	my $rc = $? >> 8;
	note sprintf('%s: %.1fs, exit %d', $name, time - $t0, $rc);
	note "  $_" for grep { /\S/ } split /\n/, $err;
	my ($line) = grep { /^\{/ } reverse split /\n/, $out;
	my $res = defined $line ? eval { $json->decode($line) } : undef;
	ok($res, "$name: the scenario printed its JSON line")
	  or diag "stdout: $out\nstderr: $err";
	$res //= { findings => undef };
	$res->{exit} = $rc;
	is($rc, 0, "$name: the scenario reproduced its pattern")
	  or diag "stderr: $err";
	ok(defined $res->{findings}, "$name: connwatch.diagnose() ran")
	  or diag 'diagnose_error: ' . ($res->{diagnose_error} // '(none)');
	$res->{findings} //= [];
	note "  client error: "
	  . ($res->{error_type} // '-') . ': '
	  . ($res->{client_error} // '-');
	note "  finding: $_->{severity} $_->{code} $_->{subject}"
	  for @{ $res->{findings} };
	return $res;
}

# The client's error as a pattern: see the head of the file.
sub symptom_regex
{
	my ($error) = @_;
	my $at = index($error, ' failed: ');
	if ($at >= 0)
	{
		$error = substr($error, $at + length(' failed: '));
	}
	elsif ($error =~ /^\([\w.]+\) (.*)$/s)
	{
		$error = $1;
	}
	my $re = '';
	for my $piece (split /("[^"]*"|'[^']*'|\d+(?:\.\d+)?)/, $error)
	{
		next if $piece eq '';
		$re .= ($piece =~ /^(?:"[^"]*"|'[^']*'|\d+(?:\.\d+)?)$/)
		  ? '\S+'
		  : quotemeta($piece);
	}
	return qr/$re/;
}

# Does the finding name it?  Its subject (application "x", role "x", ...),
# or its evidence (application, role, gid).
sub names
{
	my ($f, $kind, $name) = @_;
	return 1 if ($f->{subject} // '') eq qq{$kind "$name"};
	my $ev = $f->{evidence};
	return 0 unless ref $ev eq 'HASH';
	return 1 if defined $ev->{$kind} && $ev->{$kind} eq $name;
	return 0;
}

sub show_evidence
{
	my ($res) = @_;
	diag 'findings: ' . $json->encode($res->{findings});
	diag 'server evidence: ' . $json->encode($res->{evidence} // []);
}

# The finding $code naming $kind "$name", and with $error (the client's
# error, when given) in its client_symptom.
sub expect_finding
{
	my ($res, $code, $kind, $name, $error) = @_;
	my $scn = $res->{scenario} // '?';
	my @coded = grep { $_->{code} eq $code } @{ $res->{findings} };
	ok(@coded, "$scn: $code is among the findings")
	  or diag 'codes: ' . join(' ', map { $_->{code} } @{ $res->{findings} });
	my ($f) = grep { names($_, $kind, $name) } @coded;
	if (!ok($f, qq{$scn: $code names $kind "$name"}))
	{
		diag 'subjects: ' . join(', ', map { $_->{subject} } @coded);
		show_evidence($res);
	}
	return unless defined $error;
	$f //= $coded[0];
	my $re = symptom_regex($error);
	like($f ? ($f->{client_symptom} // '') : '',
		$re, "$scn: ${code}'s client_symptom has the client's error")
	  or diag "client error: $error\npattern: $re";
	return;
}

sub expect_error
{
	my ($res, $type, $pattern) = @_;
	my $scn = $res->{scenario} // '?';
	if (ref $type)
	{
		like($res->{error_type} // '', $type, "$scn: the client raised $type");
	}
	else
	{
		is($res->{error_type}, $type, "$scn: the client raised $type");
	}
	like($res->{client_error} // '', $pattern, "$scn: ... with its real error");
	return;
}

#
# healthy first, while the history holds nothing of the other scenarios
#
{
	my $res = scenario('healthy');
	is($res->{client_error}, undef, 'healthy: no client error');
	is_deeply($res->{findings}, [], 'healthy: no finding while the app runs')
	  or show_evidence($res);
	is_deeply($res->{findings_after_close} // [ 'missing' ], [],
		'healthy: no finding once its pool is closed');
}

#
# leaked Sessions exhaust the QueuePool; the pattern is held for the
# diagnose window (the script reads connwatch.diagnose_window), so that
# the plateau spans it
#
{
	my $res = scenario('leaked_sessions');
	expect_error($res, 'sqlalchemy.exc.TimeoutError',
		qr/^QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 2/);
	expect_finding($res, 'CW101', 'application', 'flask-orders', $res->{client_error});
	expect_finding($res, 'CW102', 'application', 'flask-orders', $res->{client_error});
}

#
# a pool larger than its role's CONNECTION LIMIT
#
{
	my $res = scenario('role_limit');
	expect_error($res, 'sqlalchemy.exc.OperationalError',
		qr/FATAL:  too many connections for role "cw_limited"$/);
	expect_finding($res, 'CW112', 'application', 'billing-api', $res->{client_error});
	expect_finding($res, 'CW105', 'role', 'cw_limited');
}

#
# max_connections: an ordinary role fills the ordinary slots, the
# superuser the reserved ones
#
{
	my $res = scenario('max_connections');
	expect_error($res, 'sqlalchemy.exc.OperationalError',
		qr/FATAL:  sorry, too many clients already$/);
	my ($reserved) =
	  grep { $_->{application} eq 'report-fanout' } @{ $res->{client_errors} // [] };
	like($reserved ? $reserved->{client_error} : '',
		qr/FATAL:  remaining connection slots are reserved for /,
		'max_connections: the ordinary role was refused a reserved slot');
	expect_finding($res, 'CW110', 'application', 'etl-admin', $res->{client_error});
	expect_finding($res, 'CW111', 'application', 'report-fanout',
		$reserved ? $reserved->{client_error} : undef);
	ok((grep { $_->{code} eq 'CW103' } @{ $res->{findings} }),
		'max_connections: CW103 (server at max_connections)');
	ok((grep { $_->{code} eq 'CW104' } @{ $res->{findings} }),
		'max_connections: CW104 (reserved slots in use)');
}

#
# a connection per request: churn
#
{
	my $res = scenario('connect_per_request');
	cmp_ok($res->{sessions_per_second} // 0, '>=', 2 * ($res->{churn_rate_setting} // 50),
		'connect_per_request: sessions a second at twice connwatch.diagnose_churn_rate');
	expect_finding($res, 'CW140', 'application', 'flask-nullpool');
}

#
# a pooled connection the server closed.  psycopg2 2.9 with libpq 15 to 18
# says only "server closed the connection unexpectedly"; Debian 11's
# psycopg2 2.8 with libpq 13 passes the server's FATAL on, as
# InternalError (psycopg2.errors.IdleInTransactionSessionTimeout).
#
{
	my $res = scenario('idle_session_timeout');
	expect_error($res, qr/^sqlalchemy\.exc\.(?:OperationalError|InternalError)$/,
		qr/server closed the connection unexpectedly|terminating connection due to idle-(?:session|in-transaction) timeout/);
	expect_finding($res, 'CW150', 'application', 'inventory-api', $res->{client_error});
}

#
# a lock chain headed by an idle transaction
#
{
	my $res = scenario('lock_chain');
	expect_error($res, 'sqlalchemy.exc.OperationalError',
		qr/canceling statement due to lock timeout/);
	is($res->{waiting}, 3, 'lock_chain: three workers wait on the row');
	expect_finding($res, 'CW130', 'application', 'admin-console', $res->{client_error});
}

#
# a prepared transaction left behind by a crashed app
#
{
	my $res = scenario('prepared_xact');
	expect_finding($res, 'CW121', 'prepared transaction', 'cw_scenario_payment_42');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
		'0', 'prepared_xact: the scenario rolled its transaction back');
}

#
# forked workers share one pooled connection
#
{
	my $res = scenario('fork_shared_pool');
	ok(defined $res->{client_error}, 'fork_shared_pool: a worker got an error')
	  and note '  every worker error: '
	  . join(' | ', map { "$_->{error_type}: $_->{client_error}" }
		  @{ $res->{client_errors} // [] });
	expect_finding($res, 'CW160', 'application', 'gunicorn-app', $res->{client_error});
}

is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity
		  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()}),
	'0', 'every scenario closed its connections');

note sprintf('401: %.0fs', time - $started);
$node->stop;
done_testing();
