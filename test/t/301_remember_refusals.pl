# 301_remember_refusals.pl - with pg_connwatch preloaded, every refusal
# cause that can be provoked on a running server is provoked for real, and
# connwatch.refused_connections counts each exactly once, attributed to the
# database, role, application name and address the client claimed.
#
# The server speaks German (lc_messages = 'de_DE.UTF-8'), logs at debug5
# and logs disconnections: the causes are told from SQLSTATEs and the
# untranslated message ids, so none of that may change a count.
#
# The causes reported while a server stops or starts are provoked in
# 303_remember_restart.pl.

use strict;
use warnings;

use DBI;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $MAX_CONNECTIONS = 8;
my $RESERVED        = 2;

my $node = PostgreSQL::Test::Cluster->new('refusals');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_connwatch'
max_connections = $MAX_CONNECTIONS
superuser_reserved_connections = $RESERVED
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
autovacuum = off
lc_messages = 'de_DE.UTF-8'
log_min_messages = debug5
log_disconnections = on
});
# first match wins: the reject and password lines come before trust
my $hba = $node->data_dir . '/pg_hba.conf';
open my $fh, '>', $hba or die "could not write $hba: $!";
print $fh <<'HBA';
local all all trust
host all regress_rejected 127.0.0.1/32 reject
host all regress_pw 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA
close $fh;
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_app LOGIN CONNECTION LIMIT 2;
CREATE ROLE regress_other LOGIN;
CREATE ROLE regress_filler LOGIN;
CREATE ROLE regress_nologin NOLOGIN;
CREATE ROLE regress_rejected LOGIN;
CREATE ROLE regress_pw LOGIN PASSWORD 'right';
CREATE ROLE regress_observer LOGIN;
GRANT EXECUTE ON FUNCTION connwatch.refused_connections() TO regress_observer;
GRANT SELECT ON connwatch.refused_connections TO regress_observer;
CREATE DATABASE regress_limited CONNECTION LIMIT 1;
CREATE DATABASE regress_closed ALLOW_CONNECTIONS false;
CREATE DATABASE regress_private;
REVOKE CONNECT ON DATABASE regress_private FROM PUBLIC;
});

my $socket = $node->host;
my $port   = $node->port;
local $ENV{PGPASSFILE} = '/nonexistent';
delete $ENV{PGPASSWORD};

# Connect; returns the handle, or the error text of a refusal.
sub attempt
{
	my (%a) = @_;
	my $host = $a{tcp} ? '127.0.0.1' : $socket;
	my $dbh = DBI->connect(
		"dbi:Pg:dbname=$a{db};host=$host;port=$port;application_name=$a{app}",
		$a{user}, $a{password},
		{ RaiseError => 0, PrintError => 0, AutoCommit => 1 });
	return $dbh if $dbh;
	return $DBI::errstr;
}

sub hold
{
	my $dbh = attempt(@_);
	die "could not connect: $dbh" unless ref $dbh;
	return $dbh;
}

# Each expected refusal: what it is called, how it is provoked, what the
# client is told.
my @expect;

sub refused
{
	my ($cause, $message, %a) = @_;
	my $r = attempt(%a);
	ok(!ref $r && $r =~ $message, "$cause: refused (" . ($r =~ s/\s+$//r) . ')')
	  or diag(ref $r ? 'connected' : $r);
	push @expect, join('|',
		$cause, $a{db}, $a{user}, $a{app}, $a{tcp} ? '127.0.0.1' : '-', 1);
	$r->disconnect if ref $r;
}

# the role's CONNECTION LIMIT 2: the third session is refused
my @held = map { hold(db => 'postgres', user => 'regress_app', app => 'held') } 1 .. 2;
refused('role limit', qr/zu viele Verbindungen/,
	db => 'postgres', user => 'regress_app', app => 'refuse_rolelimit');
$_->disconnect for @held;

# the database's CONNECTION LIMIT 1
@held = (hold(db => 'regress_limited', user => 'regress_other', app => 'held'));
refused('database limit', qr/zu viele Verbindungen/,
	db => 'regress_limited', user => 'regress_other', app => 'refuse_dblimit');
$_->disconnect for @held;

refused('role does not exist', qr/regress_ghost.*existiert nicht/,
	db => 'postgres', user => 'regress_ghost', app => 'refuse_ghost');
refused('role not permitted to log in', qr/regress_nologin/,
	db => 'postgres', user => 'regress_nologin', app => 'refuse_nologin');
refused('database does not exist', qr/regress_nodb.*existiert nicht/,
	db => 'regress_nodb', user => 'regress_other', app => 'refuse_nodb');
refused('database not accepting connections', qr/regress_closed/,
	db => 'regress_closed', user => 'regress_other', app => 'refuse_closed');
refused('no CONNECT privilege', qr/regress_private/,
	db => 'regress_private', user => 'regress_other', app => 'refuse_noconnect');
refused('rejected by pg_hba.conf', qr/pg_hba.conf/,
	db => 'postgres', user => 'regress_rejected', app => 'refuse_hba', tcp => 1);
refused('authentication failed', qr/Passwort-Authentifizierung/,
	db => 'postgres', user => 'regress_pw', app => 'refuse_authfail',
	tcp => 1, password => 'wrong');
# libpq has no password to give: it hangs up at the prompt, as psql does
# before it asks the user for one
refused('authentication abandoned', qr/no password supplied/,
	db => 'postgres', user => 'regress_pw', app => 'refuse_abandoned', tcp => 1);

# Every slot a role may take, then one more; then the reserved slots, as a
# superuser, then one more.
my $ordinary = $MAX_CONNECTIONS - $RESERVED;
@held = map { hold(db => 'postgres', user => 'regress_filler', app => 'filler') } 1 .. $ordinary;
refused('reserved slots', qr/reserviert/,
	db => 'postgres', user => 'regress_filler', app => 'refuse_reserved');
push @held, map { hold(db => 'postgres', user => 'postgres', app => 'filler') } 1 .. $RESERVED;
refused('too many clients', qr/schon zu viele Verbindungen/,
	db => 'postgres', user => 'postgres', app => 'refuse_toomany');
$_->disconnect for @held;

# An established session that is terminated is not a refusal.
my $victim = hold(db => 'postgres', user => 'regress_other', app => 'victim');
$node->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'});

my $rows = $node->safe_psql(
	'postgres', q{
SELECT r FROM (
    SELECT cause || '|' || datname || '|' || usename || '|' || application_name
           || '|' || coalesce(host(client_addr), '-') || '|' || count AS r
    FROM connwatch.refused_connections) AS rows
ORDER BY r COLLATE "C"});
is($rows, join("\n", sort @expect),
	'every refusal counted once, under its cause and what the client claimed');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE first_at IS NULL OR last_at < first_at OR overflow)
FROM connwatch.refused_connections}),
	'0',
	'first_at and last_at are set and ordered, nothing overflowed');

# A role without pg_read_all_stats sees every refusal counted, but not the
# application name or address of attempts that claimed other roles.
is( $node->safe_psql(
		'postgres', q{
SET ROLE regress_observer;
SELECT count(*) || '|' || sum(count) || '|' || count(application_name)
       || '|' || count(client_addr)
FROM connwatch.refused_connections}),
	scalar(@expect) . '|' . scalar(@expect) . '|0|0',
	'a role without pg_read_all_stats: counted, names and addresses hidden');

$node->safe_psql('postgres', 'SELECT connwatch.reset_ledgers()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM connwatch.refused_connections'),
	'0', 'reset_ledgers() empties the ledger');

$victim->disconnect if $victim->ping;
$node->stop;
done_testing();
