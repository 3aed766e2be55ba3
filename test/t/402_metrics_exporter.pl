# 402_metrics_exporter.pl - pg_connwatch's metrics for Prometheus, end to end.
#
# A cluster with pg_connwatch preloaded gets known state: three sessions of
# application "leaky" idle in a transaction that wrote, a role at its
# CONNECTION LIMIT, three connections refused by that limit.  Then the REAL
# prometheus-postgres-exporter runs with the shipped query file
# (prometheus/pg_connwatch_queries.yaml) against it, as a pg_monitor role,
# and /metrics is scraped over loopback: every metric of the file is there,
# with the values the state implies, and passes promtool's lint.  Then
# connwatch.metrics() (built from the same query file: see
# sql_src/metrics/metrics.function.sql) is linted (promtool check
# metrics) and parsed by python3-prometheus-client's strict OpenMetrics
# parser, and must report the same series with the same values as the
# exporter did.  Last, the server restarts without shared_preload_libraries:
# the exporter still exports the observe metrics, without a scrape error,
# and neither it nor metrics() exports the remember layer's.
#
# Skipped where the exporter, promtool or python3-prometheus-client is
# missing (the roots of the other majors lack them).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use ConnwatchTest;
use File::Temp qw(tempfile);
use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $EXPORTER = $ENV{CONNWATCH_EXPORTER} // '/usr/bin/prometheus-postgres-exporter';
my $PROMTOOL = $ENV{CONNWATCH_PROMTOOL} // '/usr/bin/promtool';
my $PYTHON   = '/usr/bin/python3';
my $top      = "$FindBin::Bin/../..";
my $queries  = "$top/prometheus/pg_connwatch_queries.yaml";

plan skip_all => "prometheus-postgres-exporter is not installed ($EXPORTER)"
  unless -x $EXPORTER;
plan skip_all => "promtool is not installed ($PROMTOOL; Debian package prometheus)"
  unless -x $PROMTOOL;
plan skip_all => "python3-prometheus-client is not installed for $PYTHON"
  unless -x $PYTHON
  && system($PYTHON, '-c', 'import prometheus_client.openmetrics.parser') == 0;

#
# The query file, read as the exporter reads it: top-level keys are the
# queries, each with "query: |" and its metrics (column: usage).
#
my (%query, %columns, @order);
{
	open my $fh, '<', $queries or die "$queries: $!";
	my ($q, $in_query, $col);
	while (my $line = <$fh>)
	{
		next if $line =~ /^\s*#/ && !$in_query;
		if ($line =~ /^(pg_connwatch\w*):\s*$/)
		{
			$q = $1;
			push @order, $q;
			$in_query = 0;
			next;
		}
		if ($line =~ /^  query: \|\s*$/) { $in_query = 1; $query{$q} = ''; next }
		if ($in_query)
		{
			if ($line =~ /^    (.*)$/ || $line =~ /^()\s*$/) { $query{$q} .= "$1\n"; next }
			$in_query = 0;
		}
		if ($line =~ /^    - (\w+):\s*$/) { $col = $1; next }
		if ($line =~ /^        usage: "(\w+)"/) { push @{ $columns{$q} }, [ $col, $1 ]; next }
	}
}
my %family;    # metric name => usage, as the exporter names it
for my $q (@order)
{
	for my $c (@{ $columns{$q} })
	{
		$family{"${q}_$c->[0]"} = $c->[1] unless $c->[1] eq 'LABEL';
	}
}
ok(scalar(keys %family) >= 10,
	'query file read: ' . scalar(@order) . ' queries, ' . scalar(keys %family) . ' metrics');

#
# The cluster
#
my $node = PostgreSQL::Test::Cluster->new('metrics');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
max_connections = 20
superuser_reserved_connections = 3
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_exporter LOGIN IN ROLE pg_monitor;
CREATE ROLE regress_app LOGIN CONNECTION LIMIT 2;
});

# metrics() runs the very same queries as the query file (whitespace aside)
{
	my $sql = $node->safe_psql('postgres',
		q{SELECT prosrc FROM pg_proc WHERE oid = 'connwatch.metrics()'::regprocedure})
	  =~ s/\s+/ /gr;
	my @missing = grep { index($sql, $query{$_} =~ s/\s+/ /gr =~ s/^ | $//gr) < 0 } @order;
	is("@missing", '', 'connwatch.metrics() runs every query of the query file word for word');
}

my $socket = $node->host;
my $port   = $node->port;
my $APP    = 'pg_connwatch_exporter';

# Known state: 3 sessions of "leaky" idle in a transaction that wrote, the
# role regress_app at its CONNECTION LIMIT 2 (idle), 3 attempts it refused.
my @leaky = map { session($node, 'leaky') } 1 .. 3;
run_sql($_, 'BEGIN; SELECT pg_catalog.txid_current();') for @leaky;
my @held = map { session($node, 'held', 'regress_app') } 1 .. 2;
for my $i (1 .. 3)
{
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT 1',
		connstr => "host=$socket port=$port dbname=postgres user=regress_app application_name=refused");
	like($err, qr/too many connections for role "regress_app"/, "refused attempt $i");
}

#
# The exporter
#
my $exporter;
my $http_port;

sub start_exporter
{
	$http_port = PostgreSQL::Test::Cluster::get_free_port();
	local $ENV{DATA_SOURCE_NAME} =
	  "host=$socket port=$port dbname=postgres user=regress_exporter sslmode=disable application_name=$APP";
	my ($out, $err) = ('', '');
	$exporter = IPC::Run::start(
		[
			$EXPORTER, "--extend.query-path=$queries",
			'--disable-default-metrics', '--disable-settings-metrics',
			'--no-collector.database',   '--no-collector.bgwriter',
			"--web.listen-address=127.0.0.1:$http_port", '--log.level=warn'
		],
		'>', \$out, '2>', \$err);
	return;
}

sub stop_exporter
{
	return unless $exporter;
	eval { $exporter->signal('TERM'); 1 };
	eval { $exporter->finish; 1 } or eval { $exporter->kill_kill; 1 };
	$exporter = undef;
	# its backend goes with it
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_catalog.pg_stat_activity WHERE application_name = '$APP'");
	return;
}

# Stop the exporter whatever happens (die, failed assertion, end).
END { eval { $exporter->kill_kill if $exporter; 1 }; }

# GET /metrics; the body, once the exporter answers (30 s at most).
sub scrape
{
	my $http = HTTP::Tiny->new(timeout => 10);
	for (1 .. 300)
	{
		my $r = $http->get("http://127.0.0.1:$http_port/metrics");
		return $r->{content} if $r->{success};
		usleep(100_000);
	}
	return undef;
}

# Classic or OpenMetrics text => { 'name{l="v",...}' => value }, labels
# sorted, the exporter's server label left out.
sub samples
{
	my ($text) = @_;
	my %s;
	for my $line (split /\n/, $text)
	{
		next if $line =~ /^#/ || $line !~ /\S/;
		my ($name, $labels, $value) = $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
		  or next;
		my @l;
		while (defined $labels && $labels =~ /\G,?([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/gc)
		{
			push @l, qq{$1="$2"} unless $1 eq 'server';
		}
		$s{ $name . (@l ? '{' . join(',', sort @l) . '}' : '') } = $value;
	}
	return \%s;
}

# The text of the pg_connwatch families only.
sub connwatch_only
{
	my ($text) = @_;
	return join '', grep { /^(# (HELP|TYPE) )?pg_connwatch_/ } split /^/m, $text;
}

sub lint
{
	my ($text, $what) = @_;
	my ($fh, $file) = tempfile(UNLINK => 1);
	print $fh $text;
	close $fh;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $PROMTOOL, 'check', 'metrics' ], '<', $file, '>', \$out, '2>', \$err);
	is($? >> 8, 0, "promtool check metrics accepts $what") or diag("$out$err");
}

start_exporter();
# the leaks idle in their transactions for 2 s (checked below), while the
# exporter started
wait_in_state($node, q{application_name = 'leaky' AND state = 'idle in transaction'}, 3, 2);
my $body = scrape();
ok(defined $body, "the exporter answers on 127.0.0.1:$http_port/metrics")
  or BAIL_OUT('no exporter');
my $exp = samples($body);

is($exp->{pg_up}, 1, 'pg_up 1');
my ($load) = grep { /^pg_exporter_user_queries_load_error/ } keys %$exp;
is($exp->{$load // ''}, 0, 'the exporter loaded the query file');
is($exp->{pg_exporter_last_scrape_error}, 0, 'the scrape had no error');

my %seen = map { /^(\w+)/ ? ($1 => 1) : () } keys %$exp;
my @absent = grep { !$seen{$_} } sort keys %family;
is("@absent", '', 'every metric of the query file is exported');

my %want = (
	'pg_connwatch_idle_in_transaction_sessions{application="leaky"}' => 3,
	'pg_connwatch_application_sessions{application="leaky",state="idle_in_transaction"}' => 3,
	'pg_connwatch_application_sessions{application="leaky",state="active"}' => 0,
	'pg_connwatch_application_sessions{application="held",state="idle"}' => 2,
	'pg_connwatch_application_sessions{application="pg_connwatch_exporter",state="active"}' => 1,
	'pg_connwatch_connection_limit_used{name="regress_app",scope="role"}'     => 2,
	'pg_connwatch_connection_limit_max{name="regress_app",scope="role"}'      => 2,
	'pg_connwatch_connection_limit_headroom{name="regress_app",scope="role"}' => 0,
	'pg_connwatch_connection_limit_used{name="",scope="server"}'   => 6,
	'pg_connwatch_connection_limit_max{name="",scope="server"}'    => 17,
	'pg_connwatch_connection_limit_max{name="",scope="reserved"}'  => 3,
	'pg_connwatch_connection_limit_used{name="",scope="reserved"}' => 0,
	'pg_connwatch_refused_connections_total{cause="role limit"}'   => 3,
	'pg_connwatch_refused_connections_total{cause="too many clients"}' => 0,
	'pg_connwatch_xmin_horizon_holders{holder_type="backend"}'     => 3,
	'pg_connwatch_xmin_horizon_holders{holder_type="prepared_transaction"}' => 0,
	'pg_connwatch_server_sessions_current' => 6,
	'pg_connwatch_remember_enabled'        => 1);
for my $k (sort keys %want)
{
	is($exp->{$k}, $want{$k}, "exporter: $k = $want{$k}");
}
cmp_ok($exp->{'pg_connwatch_idle_in_transaction_longest_seconds{application="leaky"}'} // 0,
	'>=', 2, 'exporter: leaky has been idle in transaction for 2 s or more');
cmp_ok($exp->{'pg_connwatch_oldest_transaction_age_seconds'} // 0,
	'>=', 2, 'exporter: the oldest transaction is 2 s old or more');
cmp_ok($exp->{'pg_connwatch_xmin_horizon_age_xids{holder_type="backend"}'} // 0,
	'>=', 2, 'exporter: the backends hold the horizon 2 xids back or more');
cmp_ok($exp->{'pg_connwatch_server_sessions_peak'} // 0, '>=', 6, 'exporter: peak 6 or more');
cmp_ok($exp->{'pg_connwatch_session_endings_total{reason="client closed"}'} // 0,
	'>=', 1, 'exporter: sessions that ended, client closed');
# diagnose(): the role at its limit (CW105) and the refusals it caused (CW112)
for my $code (qw(CW105 CW112))
{
	my @f = grep { /^pg_connwatch_findings\{code="$code",severity="(critical|warning)"\}$/ } keys %$exp;
	is(scalar(@f), 1, "exporter: pg_connwatch_findings has $code (@f)");
}
my @app_labels = grep { /^pg_connwatch_idle_in_transaction_sessions\{/ } keys %$exp;
is(scalar(@app_labels), 3, 'exporter: 3 applications (leaky, held, the exporter)');
like($body, qr/^# TYPE pg_connwatch_refused_connections_total counter$/m,
	'exporter: refusals are a counter');
lint(connwatch_only($body), "the exporter's pg_connwatch metrics");

# The exporter goes; the same role under the same application_name calls
# metrics(), so that the server sees exactly what it saw.
stop_exporter();
my $om = $node->safe_psql('postgres', 'SELECT connwatch.metrics()',
	connstr => "host=$socket port=$port dbname=postgres user=regress_exporter application_name=$APP");
$om =~ s/\n*\z/\n/;    # psql adds a newline of its own
is($node->safe_psql('postgres', q{SELECT pg_catalog.right(connwatch.metrics(), 7) = E'\n# EOF\n'}),
	't', 'metrics() ends with a line # EOF');

# promtool 2.42 lints the classic text format, where a counter's family is
# named as its sample (x_total), not as in OpenMetrics (x): rename it, drop
# the EOF, and lint.
{
	my %counter = map { $_ => 1 } $om =~ /^# TYPE (\S+) counter$/mg;
	my $classic = join '', map {
		s/^# (HELP|TYPE) (\S+)/"# $1 " . ($counter{$2} ? "$2_total" : $2)/e;
		$_
	} grep { !/^# EOF$/ } split /^/m, $om;
	lint($classic, 'metrics() (counters renamed for the classic format)');
}

# python3-prometheus-client's strict OpenMetrics parser; prints each sample.
my $PARSE = <<'PY';
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join('%s="%s"' % (k, esc(v)) for k, v in sorted(s.labels.items()))
        print("%s%s %r" % (s.name, "{%s}" % labels if labels else "", float(s.value)))
PY
sub openmetrics_parse
{
	my ($text, $what) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $PYTHON, '-c', $PARSE ], '<', \$text, '>', \$out, '2>', \$err);
	is($? >> 8, 0, "the strict OpenMetrics parser accepts $what") or diag($err);
	return samples($out);
}
my $mine = openmetrics_parse($om, 'metrics()');

# The same series, the same values (ages and cumulative counts may have
# grown in between).
my @only_exp  = grep { /^pg_connwatch_/ && !exists $mine->{$_} } sort keys %$exp;
my @only_mine = grep { !exists $exp->{$_} } sort keys %$mine;
is("@only_exp",  '', 'no pg_connwatch series the exporter has and metrics() has not');
is("@only_mine", '', 'no series metrics() has and the exporter has not');
my @differ;
for my $k (sort grep { exists $exp->{$_} } keys %$mine)
{
	my ($e, $m) = ($exp->{$k}, $mine->{$k});
	if ($k =~ /_seconds/)
	{
		push @differ, "$k: $e vs $m" unless $m >= $e && $m - $e < 60;
	}
	elsif ($k =~ /^pg_connwatch_session_endings_total|^pg_connwatch_server_sessions_peak/)
	{
		push @differ, "$k: $e vs $m" unless $m >= $e;
	}
	else
	{
		push @differ, "$k: $e vs $m" unless $m == $e;
	}
}
is(join('; ', @differ), '', 'metrics() and the exporter report the same values (' . scalar(keys %$mine) . ' series)');

# Label values are escaped: an application name with a quote, a backslash
# and a newline.
{
	my $odd = session($node, qq{odd"app\\x});
	my $text = $node->safe_psql('postgres', 'SELECT connwatch.metrics()') =~ s/\n*\z/\n/r;
	my $p = openmetrics_parse($text, 'metrics() with an application name to escape');
	# connwatch.printable() doubles the backslash, the exposition format
	# escapes the quote and both backslashes
	cmp_ok($p->{'pg_connwatch_application_sessions{application="odd\\"app\\\\\\\\x",state="idle"}'} // -1, '==', 1,
		'an application name with a quote and a backslash comes back as connwatch.printable() shows it');
	close_session($odd);
}

# Names that are not valid UTF-8: a role with only CREATEDB creates, from a
# LATIN1 database, a database whose name has the byte 0xe9, with a CONNECTION
# LIMIT; roles "caf<0xe9>" and "caf" have one too.  The exporter keeps
# scraping (0.11 panicked on such a label), every label is valid UTF-8 and
# no series is there twice.
{
	$node->safe_psql('postgres', q{
CREATE ROLE regress_creator LOGIN CREATEDB;
CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
CREATE ROLE caf LOGIN CONNECTION LIMIT 3;
});
	local $ENV{PGCLIENTENCODING} = 'LATIN1';
	my ($ret, $out, $err) = $node->psql('latin',
		qq{CREATE DATABASE "caf\xe9db" CONNECTION LIMIT 5 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';},
		connstr => "host=$socket port=$port dbname=latin user=regress_creator");
	is($ret, 0, 'a CREATEDB role names a database with a LATIN1 byte') or diag $err;
	$node->safe_psql('latin', qq{CREATE ROLE "caf\xe9" LOGIN CONNECTION LIMIT 4;});
	delete $ENV{PGCLIENTENCODING};

	start_exporter();
	my $scraped = scrape();
	ok(defined $scraped, 'invalid UTF-8 names: the exporter answers');
	my $e = samples($scraped // '');
	is($e->{pg_exporter_last_scrape_error}, 0, 'invalid UTF-8 names: the scrape had no error');
	is($e->{'pg_connwatch_connection_limit_max{name="caf\\\\xe9db",scope="database"}'}, 5,
		'invalid UTF-8 names: the database is labelled with its byte escaped');
	is($e->{'pg_connwatch_connection_limit_max{name="caf",scope="role"}'}, 3,
		'invalid UTF-8 names: role caf keeps its own series');
	is($e->{'pg_connwatch_connection_limit_max{name="caf\\\\xe9",scope="role"}'}, 4,
		'invalid UTF-8 names: and role caf<0xe9> its own');
	stop_exporter();

	my $text = $node->safe_psql('postgres', 'SELECT connwatch.metrics()') =~ s/\n*\z/\n/r;
	my %counter = map { $_ => 1 } $text =~ /^# TYPE (\S+) counter$/mg;
	lint(join('', map {
			s/^# (HELP|TYPE) (\S+)/"# $1 " . ($counter{$2} ? "$2_total" : $2)/e;
			$_
		} grep { !/^# EOF$/ } split /^/m, $text),
		'metrics() with names that are not valid UTF-8 (classic format)');
	my $p = openmetrics_parse($text, 'metrics() with names that are not valid UTF-8');
	my %seen;
	my @dups = grep { /^[a-z]/ && $seen{ s/ [^ ]+$//r }++ } split /\n/, $text;
	is("@dups", '', 'metrics(): no series twice');
	$node->safe_psql('postgres', q{DROP ROLE caf; DROP DATABASE latin;});
}

#
# Without shared_preload_libraries
#
close_session($_) for @leaky, @held;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
start_exporter();
$body = scrape();
ok(defined $body, 'without preload: the exporter answers');
$exp = samples($body);
is($exp->{pg_exporter_last_scrape_error}, 0, 'without preload: the scrape had no error');
is($exp->{pg_connwatch_remember_enabled}, 0, 'without preload: pg_connwatch_remember_enabled 0');
is($exp->{'pg_connwatch_connection_limit_used{name="",scope="server"}'}, 1,
	'without preload: the observe metrics are there (the server counts the exporter)');
my @ledger = grep { /^pg_connwatch_(refused_connections|session_endings|server_sessions)_/ } keys %$exp;
is("@ledger", '', 'without preload: no remember-layer series');
stop_exporter();
$om = $node->safe_psql('postgres', 'SELECT connwatch.metrics()') =~ s/\n*\z/\n/r;
$mine = openmetrics_parse($om, 'metrics() without preload');
cmp_ok($mine->{pg_connwatch_remember_enabled} // -1, '==', 0, 'without preload: metrics() says remember is off');
@ledger = grep { /^pg_connwatch_(refused_connections|session_endings|server_sessions)_/ } keys %$mine;
is("@ledger", '', 'without preload: metrics() has no remember-layer series');

$node->stop;
done_testing();
