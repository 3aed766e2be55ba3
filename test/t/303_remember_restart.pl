# 303_remember_restart.pl - the ledgers survive a clean restart, and the
# refusals and endings that only happen while a server stops or starts are
# counted: attempts during a smart shutdown ("server shutting down"), a
# session cut by a fast shutdown ("server shutdown"), attempts on a standby
# that does not accept connections ("server not yet accepting"; 13 says
# "starting up" there).  Peaks keep their high-water marks, with current 0.

use strict;
use warnings;

use DBI;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restart');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
autovacuum = off
});
$node->start;
my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_app LOGIN;
});

sub attempt
{
	my ($n, $user, $app) = @_;
	my $dbh = DBI->connect(
		'dbi:Pg:dbname=postgres;host=' . $n->host . ';port=' . $n->port
		  . ";application_name=$app",
		$user, undef, { RaiseError => 0, PrintError => 0, AutoCommit => 1 });
	return $dbh if $dbh;
	return $DBI::errstr;
}

# Before the restart: two refusals, an ending, a burst of five sessions.
attempt($node, 'regress_ghost', 'restart_ghost') for 1 .. 2;
attempt($node, 'regress_app', 'restart_closed')->disconnect;
my @burst = map { attempt($node, 'regress_app', 'restart_burst') } 1 .. 5;
$_->disconnect for @burst;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'restart_burst'})
  or die 'the burst did not end';

my $refusals_sql = q{
SELECT string_agg(cause || '|' || usename || '|' || application_name || '|' || count
                  || '|' || first_at || '|' || last_at, ',' ORDER BY cause, application_name)
FROM connwatch.refused_connections};
my $peaks_sql = q{
SELECT string_agg(scope || '|' || current || '|' || peak || '|' || peak_at, ',' ORDER BY scope)
FROM connwatch.peaks WHERE name = 'restart_burst' OR (scope = 'role' AND name = 'regress_app')};
my $refusals_before = $node->safe_psql('postgres', $refusals_sql);
my $peaks_before    = $node->safe_psql('postgres', $peaks_sql);
my $closed_before   = $node->safe_psql('postgres',
	q{SELECT count || '|' || last_at FROM connwatch.session_endings
	  WHERE application_name = 'restart_closed'});
is($closed_before =~ /^1\|/ ? 1 : 0, 1, 'one session ended before the restart');

# A smart shutdown waits for the held session; meanwhile logins are refused.
my $held = attempt($node, 'regress_app', 'restart_held');
ref $held or die "could not connect: $held";
command_ok([ 'pg_ctl', '-D', $node->data_dir, '-m', 'smart', '--no-wait', 'stop' ],
	'smart shutdown requested');
my $refused_while_stopping = 0;
for (my $i = 0; $i < 300 && $refused_while_stopping < 3; $i++)
{
	my $r = attempt($node, 'regress_app', 'restart_refused');
	if (ref $r)
	{
		$r->disconnect;
		select(undef, undef, undef, 0.1);
		next;
	}
	$refused_while_stopping++ if $r =~ /shutting down/;
}
is($refused_while_stopping, 3, 'three logins refused while the server shuts down');

# A fast shutdown ends the held session, then the server.
$node->stop('fast');
$node->start;

is($node->safe_psql('postgres', q{
SELECT count FROM connwatch.refused_connections
WHERE cause = 'server shutting down' AND application_name = 'restart_refused'}),
	'3', 'the refusals while shutting down were counted, and kept');
is($node->safe_psql('postgres', q{
SELECT reason || '|' || count FROM connwatch.session_endings
WHERE application_name = 'restart_held'}),
	'server shutdown|1', 'the session cut by the fast shutdown ended by "server shutdown"');

# Everything from before is there, unchanged.
is($node->safe_psql('postgres', $refusals_sql . q{ WHERE cause <> 'server shutting down'}),
	$refusals_before, 'refusals survive the restart, counts and times');
is($node->safe_psql('postgres',
	q{SELECT count || '|' || last_at FROM connwatch.session_endings
	  WHERE application_name = 'restart_closed'}),
	$closed_before, 'endings survive the restart');
my $peaks_expected = $peaks_before;
$peaks_expected =~ s/\|(\d+)\|(\d+)\|/|0|$2|/g;
is($node->safe_psql('postgres', $peaks_sql), $peaks_expected,
	'peaks survive with their peak and peak_at, current 0');

# A standby that does not accept connections refuses them for as long as
# it runs; the ledger, created at its start, has them after promotion.
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "hot_standby = off\n");
$standby->start;
my ($refused_standby, $message) = (0, '');
for (1 .. 4)
{
	my $r = attempt($standby, 'regress_app', 'restart_standby');
	if (ref $r) { $r->disconnect; next; }
	$message = $r;
	$refused_standby++;
}
is($refused_standby, 4, 'the standby refused every login');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
my $expected_cause = $major >= 14 ? 'server not yet accepting' : 'server starting up';
is($standby->safe_psql('postgres', q{
SELECT cause || '|' || count FROM connwatch.refused_connections
WHERE application_name = 'restart_standby'}),
	"$expected_cause|4",
	"counted as '$expected_cause' (" . ($message =~ s/\n.*//sr) . ')');

$standby->stop;

# Full ledgers degrade to an overflow key and count everything: with room
# for 16 keys, 100 distinct refused roles and 30 distinct applications'
# sessions.
$node->append_conf('postgresql.conf', "connwatch.max_ledger_keys = 16\n");
$node->restart;
$node->safe_psql('postgres', 'SELECT connwatch.reset_ledgers()');
attempt($node, "regress_ghost$_", 'restart_overflow') for 1 .. 100;
attempt($node, 'regress_app', "restart_app$_")->disconnect for 1 .. 30;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'restart\_app%'})
  or die 'the sessions did not end';
is( $node->safe_psql('postgres', q{
SELECT sum(count) || '|' || count(*) FILTER (WHERE NOT overflow) || '|'
       || sum(count) FILTER (WHERE overflow)
FROM connwatch.refused_connections WHERE cause = 'role does not exist'}),
	'100|16|84', 'refusals: 16 keys kept, the other 84 attempts counted in the overflow key');
is( $node->safe_psql('postgres', q{
SELECT sum(count) FILTER (WHERE application_name LIKE 'restart\_app%' OR overflow)
       >= 30,
       bool_or(overflow), count(*) FILTER (WHERE NOT overflow) <= 16
FROM connwatch.session_endings}),
	't|t|t', 'endings: at most 16 keys, every session counted, the rest in the overflow key');
is( $node->safe_psql('postgres', q{
SELECT count(*) <= 16 + 4 FROM connwatch.peaks}),
	't', 'peaks: the table stays within its keys (idle entries evicted)');

$node->stop;
done_testing();
