# 105_limit_counting.pl - connection_limits and connection_headroom count
# what the running server counts against a CONNECTION LIMIT.
#
# Minor releases 13.19, 14.16, 15.11, 16.7 and 17.3 changed what a role's
# and a database's CONNECTION LIMIT count: client backends only, where
# older minors also counted walsenders.  A database-connected walsender is
# held open as a role with CONNECTION LIMIT 1 on a database with CONNECTION
# LIMIT 1; then the views' verdict is compared with what the server does to
# the next login: refused exactly when the view says the limit is used up.
# Which of the two rules applies is also checked against the server's
# version, so that a wrong guess about the running minor cannot pass.

use strict;
use warnings;

use DBI;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('limits');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_rep LOGIN REPLICATION CONNECTION LIMIT 1;
CREATE ROLE regress_other LOGIN;
CREATE DATABASE regress_limited CONNECTION LIMIT 1;
CREATE EXTENSION pg_connwatch;
});

my $version = $node->safe_psql('postgres', 'SHOW server_version_num');
my %first_client_only = (13 => 130019, 14 => 140016, 15 => 150011,
	16 => 160007, 17 => 170003);
my $major = int($version / 10000);
my $clients_only =
  $major >= 18 || $version >= $first_client_only{$major} ? 1 : 0;
note "server_version_num $version: "
  . ($clients_only ? 'client backends only' : 'walsenders count too');

# A walsender connected to regress_limited as regress_rep.
my $host = $node->host;
my $port = $node->port;
my $walsender = DBI->connect(
	"dbi:Pg:dbname=regress_limited;host=$host;port=$port;replication=database;application_name=regress_walsender",
	'regress_rep', undef, { RaiseError => 0, PrintError => 0, AutoCommit => 1 })
  or die "walsender connection failed: $DBI::errstr";
is( $node->safe_psql(
		'postgres',
		q{SELECT backend_type FROM pg_stat_activity
		  WHERE application_name = 'regress_walsender'}),
	'walsender',
	'the held connection is a walsender');

my $role_row = $node->safe_psql(
	'postgres',
	q{SELECT used || '|' || headroom || '|' || status
	  FROM connwatch.connection_limits
	  WHERE scope = 'role' AND name = 'regress_rep'});
my $db_row = $node->safe_psql(
	'postgres',
	q{SELECT used || '|' || headroom
	  FROM connwatch.connection_limits
	  WHERE scope = 'database' AND name = 'regress_limited'});
my $headroom = $node->safe_psql(
	'postgres',
	q{SELECT headroom || '|' || binding_limit
	  FROM connwatch.connection_headroom WHERE rolname = 'regress_rep'});

if ($clients_only)
{
	is($role_row, '0|1|ok', 'role limit: the walsender is not counted');
	is($db_row, '0|1', 'database limit: the walsender is not counted');
	like($headroom, qr/^1\|/, 'headroom: one more login for the role');
}
else
{
	is($role_row, '1|0|critical', 'role limit: the walsender is counted');
	is($db_row, '1|0', 'database limit: the walsender is counted');
	is($headroom, '0|role', 'headroom: none left, the role limit binds');
}

# What the server does to the next login, against what the views said.
sub try_login
{
	my ($db, $role) = @_;
	my $dbh = DBI->connect("dbi:Pg:dbname=$db;host=$host;port=$port",
		$role, undef, { RaiseError => 0, PrintError => 0 });
	return 'admitted' if $dbh && $dbh->disconnect;
	return $DBI::errstr =~ /too many connections for (role|database)/
	  ? "refused ($1)" : "failed: $DBI::errstr";
}

my ($role_used) = split /\|/, $role_row;
is(try_login('postgres', 'regress_rep'),
	$role_used >= 1 ? 'refused (role)' : 'admitted',
	'a login as the role is refused exactly when connection_limits says its limit is used up');
my ($db_used) = split /\|/, $db_row;
is(try_login('regress_limited', 'regress_other'),
	$db_used >= 1 ? 'refused (database)' : 'admitted',
	'a login to the database is refused exactly when connection_limits says its limit is used up');

$walsender->disconnect;
$node->stop;
done_testing();
