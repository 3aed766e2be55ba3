# 203_hostile_install.pl - CREATE EXTENSION, ALTER EXTENSION UPDATE and every
# call of the extension in a hostile database (CVE-2023-39417 /
# CVE-2022-2625 class).
#
# The attacker, regress_attacker, is an ordinary LOGIN role with CREATE on
# the database and on schema public (PG15 needs the explicit GRANT).  It
# plants, everywhere a careless name lookup could land:
#   - in public and in the schema named after the superuser ("$user"):
#     operators (= <> < > <= >= on text, integer, bigint, interval,
#     timestamptz, name, numeric, oid, boolean, float8; mixed-type ones
#     that beat pg_catalog's by an exact match; + - || ~~), functions named
#     like those scripts and C use (now, format, current_setting,
#     pg_extension_config_dump, lower, length, textlike, float8, numeric,
#     ...), aggregates (count(*), string_agg, max), views named like the
#     catalogs, a view "policies" and a table "terminations" with a
#     trigger, a collation "C" that sorts differently, and domains named
#     like catalog types;
#   - in the superuser's own session (SET ROLE regress_attacker, then
#     pg_temp): the same, among them CREATE DOMAIN pg_temp.float8 AS text.
# Every planted object, when it runs, RAISEs a WARNING
# "TROJAN_FIRED: <what>", records itself in public.trojan_trace and tries
# ALTER ROLE regress_attacker SUPERUSER.  After every step the test checks
# the server log, the trace table and rolsuper.
#
#  1. A squatted schema: CREATE SCHEMA connwatch by the attacker makes
#     CREATE EXTENSION fail with 42P06 and install nothing; once the
#     squatter is gone it installs, and DROP EXTENSION removes the schema.
#     Version 1.0 still installs into a squat (planted full, with CREATE
#     granted to PUBLIC); then the C functions refuse (55000) the
#     squatter's schema, and its fake connwatch.policies and
#     connwatch.terminations after the rename trick; ALTER EXTENSION UPDATE
#     refuses while the squatter owns the schema (42501) or has objects in
#     it (55000).  Once a superuser has taken the schema over and removed
#     the squatter's objects, the update must either refuse or leave
#     nobody but the owner able to create in connwatch: an overload
#     planted there captures the documented terminate_backend(pid,
#     'literal') call.  A clean 1.0 updates to exactly a fresh install of
#     the default version (members, definitions, privileges).
#  2. Trojans: as superuser, with attacker-friendly search_paths
#     ('public, pg_catalog' and '"$user", public') and the pg_temp plants
#     present: CREATE EXTENSION, CREATE ... VERSION '1.0' + UPDATE, every
#     view, enforce(true/false) with a policy gated at min_pct_used = 99,
#     the rule functions' dry runs, terminate_backend(), and
#     schedule_enforcement() when pg_cron is available, and the command of
#     the pg_cron job it creates, run as pg_cron would run it for a role
#     with that search_path.  Nothing of the attacker runs, no member
#     object is attacker-owned or depends on an object outside connwatch
#     and pg_catalog, the policies keep their C order, the gated policy
#     does not fire and the results are right.
#  3. Fake tables: a non-superuser cannot create in schema connwatch; if a
#     superuser replaces connwatch.policies / connwatch.terminations by a
#     view or a table that is not a member of the extension (or takes the
#     schema out of a 1.0.1 install), enforce() and terminate_backend()
#     refuse with 55000 before they read, write or signal anything.
#
# Majors 13 to 18, with the same checks on each.  Whether pg_cron is there
# comes from pg_config --pkglibdir of the major under test ($node->
# config_data() is 15+ only); 13 has pg_cron 1.3, whose job the extension
# makes with cron.schedule().  Before PostgreSQL 15, pg_depend also holds
# initdb's pin entries (deptype 'p', classid 0), which pg_identify_object()
# rejects: the check for foreign dependencies leaves them out, which loses
# nothing, since a pin entry depends on nothing.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use IPC::Run;

use FindBin;
use lib "$FindBin::Bin/lib";
use ConnwatchTest;

my $started = time;

my $node = PostgreSQL::Test::Cluster->new('hostile');
# UTF8, so that the attacker can create an ICU collation
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
# pg_config of this major (the TAP harness puts its bindir first on PATH;
# $node->config_data() is 15+ only)
sub pg_config_value
{
	my ($option) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pg_config', $option ], '<', \undef, '>', \$out, '2>', \$err)
	  or die "pg_config $option failed: $err";
	chomp $out;
	return $out;
}
my $have_cron = -e pg_config_value('--pkglibdir') . '/pg_cron.so';
$node->append_conf(
	'postgresql.conf', qq{
max_connections = 100
autovacuum = off
});
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '@{[ $node->host ]}'
}) if $have_cron;
$node->start;

my $su = $node->safe_psql('postgres', 'SELECT current_user');
# what CREATE EXTENSION installs, and every update ends at
my $DEFAULT_VERSION = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'pg_connwatch'});
my $have_icu = $node->safe_psql('postgres',
	q{SELECT count(*) > 0 FROM pg_catalog.pg_collation WHERE collprovider = 'i'}) eq 't';
my $ATTACKER = 'regress_attacker';
{
	my $pins = $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_catalog.pg_depend WHERE deptype = 'p'});
	note("pg_depend has $pins pin entries (before PostgreSQL 15): "
		  . 'the foreign-dependency check leaves them out')
	  if $pins > 0;
}

#
# Helpers (session, run_sql and close_session come from ConnwatchTest)
#

# Run $sql as $user in a new psql, search_path pinned to pg_catalog, pg_temp
# unless keep_path; returns (stdout, stderr, SQLSTATE or '').
sub sql_as
{
	my ($user, $sql, %opt) = @_;
	my $pre = "\\set VERBOSITY verbose\n";
	$pre .= "SET search_path = pg_catalog, pg_temp;\n" unless $opt{keep_path};
	my ($ret, $out, $err) = $node->psql('postgres', $pre . $sql,
		extra_params => [ '-U', $user ]);
	my ($state) = $err =~ /(?:ERROR|FATAL):  ([0-9A-Z]{5}):/;
	$state = 'psql' if !defined $state && $ret != 0;
	return ($out, $err, $state // '');
}

# A superuser query that must work; its result, or "ERROR <state>".
sub q_su
{
	my ($sql) = @_;
	my ($out, $err, $state) = sql_as($su, $sql);
	if ($state ne '')
	{
		diag("query failed ($state): $sql\n$err");
		return "ERROR $state";
	}
	return $out;
}

# Set-up that must work, or the test itself is broken.
sub setup_as
{
	my ($user, $sql, $what) = @_;
	my ($out, $err, $state) = sql_as($user, $sql);
	die "set-up failed ($what): $state\n$err" if $state ne '';
	return $out;
}

# A statement whose outcome the test checks: its SQLSTATE must be $expected
# ('' for success).
sub expect_state
{
	my ($user, $sql, $expected, $name) = @_;
	my ($out, $err, $state) = sql_as($user, $sql);
	is($state, $expected, $name) or diag("statement: $sql\n$err");
	return $state;
}

# A statement in a background session: (stdout, stderr, SQLSTATE or '').
sub hrun
{
	my ($s, $sql) = @_;
	my ($out, $err) = run_sql($s, $sql);
	my ($state) = $err =~ /(?:ERROR|FATAL):  ([0-9A-Z]{5}):/;
	$state = 'psql exited' if !defined $state && $err =~ /psql exited/;
	return ($out, $err, $state // '');
}

sub hrun_ok
{
	my ($s, $sql, $name) = @_;
	my ($out, $err, $state) = hrun($s, $sql);
	is($state, '', $name) or diag("statement: $sql\n$err");
	return $out;
}

# Is this very session (pid, backend_start) connected?
sub alive
{
	my ($s) = @_;
	return q_su(
		"SELECT count(*) FROM pg_stat_activity
		 WHERE pid = $s->{pid} AND backend_start = '$s->{start}'") eq '1';
}

sub wait_gone
{
	my ($s) = @_;
	my $deadline = time + 30;    # a signalled backend exits at once
	while (time < $deadline)
	{
		return 1 unless alive($s);
		usleep(20_000);
	}
	return 0;
}

# No attacker code ran since the last call: no TROJAN_FIRED line in the
# server log, no row in the trace table, the attacker is no superuser.
# Then clear the traces so that the next check sees only what follows.
my $log_offset = 0;
sub no_trojan
{
	my ($when) = @_;
	my $log = slurp_file($node->logfile, $log_offset);
	$log_offset += length($log);
	my @fired = $log =~ /TROJAN_FIRED: ([^\n]*)/g;
	my %seen;
	@fired = grep { !$seen{$_}++ } @fired;
	is(scalar(@fired), 0, "$when: no attacker code ran (server log)")
	  or diag(join("\n", 'fired:', @fired[ 0 .. ($#fired < 19 ? $#fired : 19) ]));
	is(q_su(q{SELECT count(*) FROM public.trojan_trace}), '0',
		"$when: no attacker code ran (trace table)")
	  or diag(q_su(q{SELECT string_agg(DISTINCT what || ' as ' || run_as, E'\n') FROM public.trojan_trace}));
	is(q_su("SELECT rolsuper FROM pg_roles WHERE rolname = '$ATTACKER'"), 'f',
		"$when: the attacker is not a superuser");
	q_su("DELETE FROM public.trojan_trace; ALTER ROLE $ATTACKER NOSUPERUSER");
	return;
}

# Back to a database without the extension (and without squats).
sub reset_db
{
	setup_as($su, q{
DROP EXTENSION IF EXISTS pg_connwatch CASCADE;
DROP SCHEMA IF EXISTS connwatch CASCADE;
DROP SCHEMA IF EXISTS connwatch_squatted CASCADE;
}, 'reset');
	return;
}

my $EXT = q{(SELECT oid FROM pg_extension WHERE extname = 'pg_connwatch')};

# members|unknown owner|attacker-owned|not superuser-owned
my $MEMBER_OWNERS = qq{
WITH m AS (
    SELECT d.classid, d.objid FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = $EXT),
o AS (
    SELECT CASE m.classid
        WHEN 'pg_class'::regclass THEN (SELECT relowner FROM pg_class WHERE oid = m.objid)
        WHEN 'pg_proc'::regclass THEN (SELECT proowner FROM pg_proc WHERE oid = m.objid)
        WHEN 'pg_type'::regclass THEN (SELECT typowner FROM pg_type WHERE oid = m.objid)
        WHEN 'pg_namespace'::regclass THEN (SELECT nspowner FROM pg_namespace WHERE oid = m.objid)
        WHEN 'pg_operator'::regclass THEN (SELECT oprowner FROM pg_operator WHERE oid = m.objid)
        WHEN 'pg_opclass'::regclass THEN (SELECT opcowner FROM pg_opclass WHERE oid = m.objid)
        WHEN 'pg_opfamily'::regclass THEN (SELECT opfowner FROM pg_opfamily WHERE oid = m.objid)
        WHEN 'pg_collation'::regclass THEN (SELECT collowner FROM pg_collation WHERE oid = m.objid)
        WHEN 'pg_conversion'::regclass THEN (SELECT conowner FROM pg_conversion WHERE oid = m.objid)
        WHEN 'pg_event_trigger'::regclass THEN (SELECT evtowner FROM pg_event_trigger WHERE oid = m.objid)
        WHEN 'pg_language'::regclass THEN (SELECT lanowner FROM pg_language WHERE oid = m.objid)
        WHEN 'pg_ts_config'::regclass THEN (SELECT cfgowner FROM pg_ts_config WHERE oid = m.objid)
        WHEN 'pg_ts_dict'::regclass THEN (SELECT dictowner FROM pg_ts_dict WHERE oid = m.objid)
        WHEN 'pg_statistic_ext'::regclass THEN (SELECT stxowner FROM pg_statistic_ext WHERE oid = m.objid)
        WHEN 'pg_foreign_server'::regclass THEN (SELECT srvowner FROM pg_foreign_server WHERE oid = m.objid)
        WHEN 'pg_foreign_data_wrapper'::regclass THEN (SELECT fdwowner FROM pg_foreign_data_wrapper WHERE oid = m.objid)
    END AS owner FROM m)
SELECT count(*) || '|' || count(*) FILTER (WHERE owner IS NULL) || '|'
    || count(*) FILTER (WHERE owner = (SELECT oid FROM pg_roles WHERE rolname = '$ATTACKER')) || '|'
    || count(*) FILTER (WHERE NOT coalesce((SELECT rolsuper FROM pg_roles r WHERE r.oid = o.owner), false))
FROM o};

# Objects in schema connwatch (and the schema) that the attacker owns.
my $ATTACKER_OWNED = qq{
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid AND relowner = a.oid)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = n.oid AND proowner = a.oid)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = n.oid AND typowner = a.oid)
     + (SELECT count(*) FROM pg_operator WHERE oprnamespace = n.oid AND oprowner = a.oid)
     + (SELECT count(*) FROM pg_collation WHERE collnamespace = n.oid AND collowner = a.oid)
     + (SELECT count(*) FROM pg_conversion WHERE connamespace = n.oid AND conowner = a.oid)
     + (SELECT count(*) FROM pg_opclass WHERE opcnamespace = n.oid AND opcowner = a.oid)
     + (SELECT count(*) FROM pg_opfamily WHERE opfnamespace = n.oid AND opfowner = a.oid)
     + (SELECT count(*) FROM pg_ts_config WHERE cfgnamespace = n.oid AND cfgowner = a.oid)
     + (SELECT count(*) FROM pg_ts_dict WHERE dictnamespace = n.oid AND dictowner = a.oid)
     + (SELECT count(*) FROM pg_statistic_ext WHERE stxnamespace = n.oid AND stxowner = a.oid)
     + CASE WHEN n.nspowner = a.oid THEN 1 ELSE 0 END
FROM pg_namespace n, pg_roles a
WHERE n.nspname = 'connwatch' AND a.rolname = '$ATTACKER'};

# Dependencies of anything in schema connwatch on objects outside
# connwatch and pg_catalog (a planted type, operator or function that an
# install or update script resolved).  Before PostgreSQL 15, pg_depend also
# holds the pin entries of initdb's objects (deptype 'p', classid 0), which
# pg_identify_object() rejects as XX000 "unrecognized object class: 0";
# they depend on nothing, so leaving them out loses no dependency (15 and
# later have none).
my $FOREIGN_DEPS = q{
SELECT coalesce(string_agg(DISTINCT
           pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> '
           || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), E'\n'), '')
FROM pg_depend d,
     LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) AS a,
     LATERAL pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) AS r
WHERE d.deptype <> 'p' AND d.classid <> 0
  AND a.schema = 'connwatch'
  AND r.schema IS NOT NULL AND r.schema NOT IN ('connwatch', 'pg_catalog')};

# What the extension is made of: every member with its definition's key
# facts and privileges, plus the dumped configuration tables.
my $FINGERPRINT = qq{
WITH m AS (
    SELECT d.classid, d.objid FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = $EXT)
SELECT string_agg(line, E'\\n' ORDER BY line COLLATE "C") FROM (
    SELECT pg_describe_object(m.classid, m.objid, 0) || ' | ' || coalesce(CASE m.classid
        WHEN 'pg_class'::regclass THEN (
            SELECT c.relkind::text || ' acl=' || coalesce(c.relacl::text, '-')
                || ' cols=' || coalesce((SELECT string_agg(a.attname || ' '
                        || format_type(a.atttypid, a.atttypmod)
                        || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY a.attnum)
                    FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                || ' cons=' || coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), '; '
                        ORDER BY pg_get_constraintdef(k.oid) COLLATE "C")
                    FROM pg_constraint k WHERE k.conrelid = c.oid), '')
                || ' idx=' || coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), '; '
                        ORDER BY pg_get_indexdef(i.indexrelid) COLLATE "C")
                    FROM pg_index i WHERE i.indrelid = c.oid), '')
                || CASE WHEN c.relkind = 'v' THEN ' def=' || md5(pg_get_viewdef(c.oid)) ELSE '' END
            FROM pg_class c WHERE c.oid = m.objid)
        WHEN 'pg_proc'::regclass THEN (
            SELECT 'acl=' || coalesce(p.proacl::text, '-') || ' returns ' || pg_get_function_result(p.oid)
                || ' vol=' || p.provolatile::text || ' par=' || p.proparallel::text || ' secdef=' || p.prosecdef
                || ' config=' || coalesce(p.proconfig::text, '-') || ' src=' || md5(p.prosrc)
            FROM pg_proc p WHERE p.oid = m.objid)
        WHEN 'pg_type'::regclass THEN (
            SELECT 'acl=' || coalesce(t.typacl::text, '-') FROM pg_type t WHERE t.oid = m.objid)
        WHEN 'pg_namespace'::regclass THEN (
            SELECT 'acl=' || coalesce(n.nspacl::text, '-') FROM pg_namespace n WHERE n.oid = m.objid)
        END, '?') AS line
    FROM m
    UNION ALL
    SELECT 'extconfig ' || coalesce((SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text COLLATE "C")
                                     FROM unnest(e.extconfig) AS c), '-')
    FROM pg_extension e WHERE e.extname = 'pg_connwatch') s};

sub same_lines
{
	my ($got, $expected, $name) = @_;
	my %g = map { $_ => 1 } split /\n/, $got // '';
	my %e = map { $_ => 1 } split /\n/, $expected // '';
	my @only_got = sort grep { !$e{$_} } keys %g;
	my @only_exp = sort grep { !$g{$_} } keys %e;
	ok(!@only_got && !@only_exp && %e && ($got // '') !~ /^ERROR/, $name)
	  or diag(join("\n", 'here but not in the reference:', @only_got,
			'in the reference but not here:', @only_exp));
	return;
}

sub check_install
{
	my ($label, $reference) = @_;
	is(q_su("SELECT extversion FROM pg_extension WHERE extname = 'pg_connwatch'"),
		$DEFAULT_VERSION, "$label: version $DEFAULT_VERSION is installed");
	is( q_su(
			"SELECT count(*) FROM pg_depend
			 WHERE classid = 'pg_namespace'::regclass
			   AND objid = (SELECT oid FROM pg_namespace WHERE nspname = 'connwatch')
			   AND refclassid = 'pg_extension'::regclass AND refobjid = $EXT
			   AND deptype = 'e'"),
		'1', "$label: schema connwatch is a member of the extension (deptype e)");
	is( q_su(
			"SELECT r.rolsuper FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
			 WHERE n.nspname = 'connwatch'"),
		't', "$label: schema connwatch is owned by a superuser");
	like(q_su($MEMBER_OWNERS), qr/^[1-9][0-9]*\|0\|0\|0$/,
		"$label: every member has a superuser owner (members|unknown|attacker|not superuser)");
	is(q_su($ATTACKER_OWNED), '0', "$label: nothing in schema connwatch is attacker-owned");
	is(q_su($FOREIGN_DEPS), '',
		"$label: nothing in connwatch depends on an object outside connwatch and pg_catalog");
	is(q_su("SELECT has_schema_privilege('$ATTACKER', 'connwatch', 'CREATE')"), 'f',
		"$label: the attacker has no CREATE on schema connwatch");
	note("$label: pg_extension.extnamespace = "
		  . q_su("SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_connwatch'"));
	same_lines(q_su($FINGERPRINT), $reference,
		"$label: members, definitions and privileges are those of a clean fresh install")
	  if defined $reference;
	return;
}

#
# The attacker's kit
#
# types are written pg_catalog-qualified: the plants include domains named
# text, float8, ...
my @fn_plants = (
	# name, argument types, result type, the genuine call
	[ 'now',                  [],                         'timestamptz', q{pg_catalog.now()} ],
	[ 'clock_timestamp',      [],                         'timestamptz', q{pg_catalog.clock_timestamp()} ],
	[ 'statement_timestamp',  [],                         'timestamptz', q{pg_catalog.statement_timestamp()} ],
	[ 'current_setting',      ['text'],                   'text', q{pg_catalog.current_setting($1)} ],
	[ 'current_setting',      [ 'text', 'bool' ],         'text', q{pg_catalog.current_setting($1, $2)} ],
	[ 'current_setting',      ['name'],                   'text', q{pg_catalog.current_setting($1)} ],
	[ 'set_config',           [ 'text', 'text', 'bool' ], 'text', q{pg_catalog.set_config($1, $2, $3)} ],
	[ 'format',               ['text'],                   'text', q{pg_catalog.format($1)} ],
	[ 'format',               [ 'text', 'text' ],         'text', q{pg_catalog.format($1, $2)} ],
	[ 'format',               [ 'text', 'name' ],         'text', q{pg_catalog.format($1, $2)} ],
	[ 'format',               [ 'text', 'int4' ],         'text', q{pg_catalog.format($1, $2)} ],
	[ 'format',               [ 'text', 'text', 'text' ], 'text', q{pg_catalog.format($1, $2, $3)} ],
	[ 'format',               [ 'text', 'name', 'text' ], 'text', q{pg_catalog.format($1, $2, $3)} ],
	[ 'pg_extension_config_dump', [ 'regclass', 'text' ], 'void', undef ],
	[ 'pg_extension_config_dump', [ 'text', 'text' ],     'void', undef ],
	[ 'lower',                ['text'],                   'text', q{pg_catalog.lower($1)} ],
	[ 'lower',                ['name'],                   'text', q{pg_catalog.lower($1)} ],
	[ 'upper',                ['text'],                   'text', q{pg_catalog.upper($1)} ],
	[ 'upper',                ['name'],                   'text', q{pg_catalog.upper($1)} ],
	[ 'length',               ['text'],                   'int4', q{pg_catalog.length($1)} ],
	[ 'length',               ['name'],                   'int4', q{pg_catalog.length($1)} ],
	[ 'textlike',             [ 'text', 'text' ],         'bool', q{pg_catalog.textlike($1, $2)} ],
	[ 'textlike',             [ 'name', 'text' ],         'bool', q{pg_catalog.namelike($1, $2)} ],
	[ 'float8',               ['numeric'],                'float8', q{pg_catalog.float8($1)} ],
	[ 'float8',               ['text'],                   'float8', q{$1::pg_catalog.float8} ],
	[ 'numeric',              ['float8'],                 'numeric', q{pg_catalog.numeric($1)} ],
	[ 'numeric',              ['text'],                   'numeric', q{$1::pg_catalog.numeric} ],
	[ 'text',                 ['name'],                   'text', q{pg_catalog.text($1)} ],
	[ 'text',                 ['int4'],                   'text', q{$1::pg_catalog.text} ],
	[ 'int4',                 ['numeric'],                'int4', q{pg_catalog.int4($1)} ],
	[ 'int8',                 ['int4'],                   'int8', q{pg_catalog.int8($1)} ],
	[ 'quote_ident',          ['text'],                   'text', q{pg_catalog.quote_ident($1)} ],
	[ 'quote_ident',          ['name'],                   'text', q{pg_catalog.quote_ident($1)} ],
	[ 'quote_literal',        ['text'],                   'text', q{pg_catalog.quote_literal($1)} ],
	[ 'pg_backend_pid',       [],                         'int4', q{pg_catalog.pg_backend_pid()} ],
	[ 'current_database',     [],                         'name', q{pg_catalog.current_database()} ],
	[ 'current_schema',       [],                         'name', q{pg_catalog.current_schema()} ],
	[ 'pg_terminate_backend', ['int4'],                   'bool', q{pg_catalog.pg_terminate_backend($1)} ],
	[ 'pg_terminate_backend', [ 'int4', 'int8' ],         'bool', q{pg_catalog.pg_terminate_backend($1, $2)} ],
	[ 'pg_cancel_backend',    ['int4'],                   'bool', q{pg_catalog.pg_cancel_backend($1)} ],
	[ 'pg_blocking_pids',     ['int4'],                   'int4[]', q{pg_catalog.pg_blocking_pids($1)} ],
	[ 'age',                  ['xid'],                    'int4', q{pg_catalog.age($1)} ],
	[ 'pg_sleep',             ['float8'],                 'void', q{pg_catalog.pg_sleep($1)} ],
	[ 'to_regclass',          ['text'],                   'regclass', q{pg_catalog.to_regclass($1)} ],
	[ 'to_regnamespace',      ['text'],                   'regnamespace', q{pg_catalog.to_regnamespace($1)} ],
	[ 'to_regrole',           ['text'],                   'regrole', q{pg_catalog.to_regrole($1)} ],
	[ 'has_table_privilege',  [ 'name', 'text', 'text' ], 'bool', q{pg_catalog.has_table_privilege($1, $2, $3)} ],
	[ 'has_schema_privilege', [ 'name', 'text', 'text' ], 'bool', q{pg_catalog.has_schema_privilege($1, $2, $3)} ],
	[ 'pg_has_role',          [ 'name', 'name', 'text' ], 'bool', q{pg_catalog.pg_has_role($1, $2, $3)} ],
	[ 'pg_get_userbyid',      ['oid'],                    'name', q{pg_catalog.pg_get_userbyid($1)} ],
	[ 'regexp_replace',       [ 'text', 'text', 'text' ], 'text', q{pg_catalog.regexp_replace($1, $2, $3)} ],
	[ 'nextval',              ['regclass'],               'int8', q{pg_catalog.nextval($1)} ],
	[ 'nextval',              ['text'],                   'int8', q{pg_catalog.nextval($1)} ],
	[ 'pg_advisory_xact_lock',        ['int8'],           'void', q{pg_catalog.pg_advisory_xact_lock($1)} ],
	[ 'pg_advisory_xact_lock_shared', ['int8'],           'void', q{pg_catalog.pg_advisory_xact_lock_shared($1)} ],
	[ 'pg_describe_object',   [ 'oid', 'oid', 'int4' ],   'text', q{pg_catalog.pg_describe_object($1, $2, $3)} ],
	[ 'schedule_in_database', [ 'text', 'text', 'text', 'text' ], 'int8', q{NULL} ],
	[ 'schedule',             [ 'text', 'text', 'text' ], 'int8', q{NULL} ],
	[ 'unschedule',           ['text'],                   'bool', q{false} ],);

my @op_plants;
for my $t (qw(text int4 int8 interval timestamptz name numeric oid bool float8))
{
	push @op_plants, [ $_, $t, $t, 'bool' ] for qw(= <> < > <= >=);
}
push @op_plants,
  # mixed types: an exact match beats pg_catalog's implicit casts
  [ '=',   'oid',          'int4',        'bool' ],
  [ '=',   'int4',         'oid',         'bool' ],
  [ '=',   'oid',          'regclass',    'bool' ],
  [ '=',   'regclass',     'oid',         'bool' ],
  [ '=',   'oid',          'regnamespace', 'bool' ],
  [ '=',   'regnamespace', 'oid',         'bool' ],
  [ '=',   'regrole',      'oid',         'bool' ],
  [ '=',   'name',         'varchar',     'bool' ],
  [ '=',   'text',         'varchar',     'bool' ],
  [ '>=',  'numeric',      'int4',        'bool' ],
  [ '<=',  'numeric',      'int4',        'bool' ],
  [ '>=',  'numeric',      'float8',      'bool' ],
  [ '>=',  'float8',       'numeric',     'bool' ],
  [ '<',   'timestamptz',  'timestamp',   'bool' ],
  [ '+',   'timestamptz',  'interval',    'timestamptz' ],
  [ '-',   'timestamptz',  'interval',    'timestamptz' ],
  [ '-',   'timestamptz',  'timestamptz', 'interval' ],
  [ '+',   'interval',     'interval',    'interval' ],
  [ '+',   'int4',         'int4',        'int4' ],
  [ '-',   'int4',         'int4',        'int4' ],
  [ '+',   'int8',         'int8',        'int8' ],
  [ '+',   'numeric',      'numeric',     'numeric' ],
  [ '||',  'text',         'text',        'text' ],
  [ '~~',  'text',         'text',        'bool' ],
  [ '~~',  'name',         'text',        'bool' ],
  [ '!~~', 'text',         'text',        'bool' ];

my @rel_plants = qw(pg_extension pg_depend pg_namespace pg_class pg_proc
  pg_type pg_constraint pg_index pg_trigger pg_rewrite
  pg_operator pg_roles pg_database pg_settings pg_stat_activity
  pg_prepared_xacts pg_replication_slots pg_locks);

# domains named like catalog types; float8 is text underneath
my @domain_plants = (
	[ float8      => 'pg_catalog.text' ],
	[ text        => 'pg_catalog.text' ],
	[ timestamptz => 'pg_catalog.timestamptz' ],
	[ interval    => 'pg_catalog.interval' ],
	[ numeric     => 'pg_catalog.numeric' ],
	[ name        => 'pg_catalog.name' ],
	[ int4        => 'pg_catalog.int4' ],
	[ int8        => 'pg_catalog.int8' ],
	[ oid         => 'pg_catalog.oid' ],
	[ bool        => 'pg_catalog.bool' ],
	[ regclass    => 'pg_catalog.regclass' ],
	[ inet        => 'pg_catalog.inet' ],
	[ xid         => 'pg_catalog.xid' ],);

my $TERMINATIONS_COLUMNS = q{(logged_at pg_catalog.timestamptz, policy pg_catalog.text,
    pid pg_catalog.int4, backend_start pg_catalog.timestamptz, datname pg_catalog.name,
    usename pg_catalog.name, application_name pg_catalog.text, client_addr pg_catalog.inet,
    state pg_catalog.text, state_age pg_catalog.interval, xact_age pg_catalog.interval,
    query pg_catalog.text, action pg_catalog.text, reason pg_catalog.text,
    invoked_by pg_catalog.name)};

# The plants for one schema ($schema: a quoted name, $tag: how the traces
# name it).  no_tables: without policies / terminations (they would clash
# with the extension's own in a squatted schema).
sub plant_sql
{
	my ($schema, $tag, %opt) = @_;
	my @sql = ('SET search_path = pg_catalog;');
	my $n = 0;
	for my $f (@fn_plants)
	{
		my ($name, $args, $ret, $call) = @$f;
		my $label = "function $tag.$name(" . join(',', @$args) . ')';
		my $sig   = join(', ', map { "pg_catalog.$_" } @$args);
		my $body =
		    $ret eq 'void'
		  ? "PERFORM public.trojan_fired('$label');"
		  . (defined $call ? " PERFORM $call;" : '')
		  : "PERFORM public.trojan_fired('$label'); RETURN $call;";
		push @sql,
		  qq{CREATE FUNCTION $schema."$name"($sig) RETURNS pg_catalog.$ret }
		  . qq{LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog }
		  . qq{AS \$f\$ BEGIN $body END \$f\$;};
	}
	for my $o (@op_plants)
	{
		my ($op, $l, $r, $ret) = @$o;
		$n++;
		my $label = "operator $tag.$op($l,$r)";
		push @sql,
		  qq{CREATE FUNCTION $schema.trojan_op_$n(a pg_catalog.$l, b pg_catalog.$r) }
		  . qq{RETURNS pg_catalog.$ret LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog }
		  . qq{AS \$f\$ BEGIN PERFORM public.trojan_fired('$label'); }
		  . qq{RETURN a OPERATOR(pg_catalog.$op) b; END \$f\$;},
		  qq{CREATE OPERATOR $schema.$op (LEFTARG = pg_catalog.$l, RIGHTARG = pg_catalog.$r, }
		  . qq{FUNCTION = $schema.trojan_op_$n);};
	}
	push @sql, map { (my $x = $_) =~ s/\bS\./$schema./g; $x =~ s/\bTAG\b/$tag/g; $x } (
		q{CREATE FUNCTION S.trojan_count_sf(pg_catalog.int8) RETURNS pg_catalog.int8
          LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog
          AS $f$ BEGIN PERFORM public.trojan_fired('aggregate TAG.count(*)'); RETURN $1 + 1; END $f$;},
		q{CREATE AGGREGATE S.count(*) (SFUNC = S.trojan_count_sf, STYPE = pg_catalog.int8, INITCOND = '0');},
		q{CREATE FUNCTION S.trojan_count_any_sf(pg_catalog.int8, anyelement) RETURNS pg_catalog.int8
          LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog
          AS $f$ BEGIN PERFORM public.trojan_fired('aggregate TAG.count(anyelement)'); RETURN $1 + 1; END $f$;},
		q{CREATE AGGREGATE S.count(anyelement) (SFUNC = S.trojan_count_any_sf, STYPE = pg_catalog.int8, INITCOND = '0');},
		q{CREATE FUNCTION S.trojan_string_agg_sf(pg_catalog.text, pg_catalog.text, pg_catalog.text)
          RETURNS pg_catalog.text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog
          AS $f$ BEGIN PERFORM public.trojan_fired('aggregate TAG.string_agg(text,text)');
          RETURN CASE WHEN $1 IS NULL THEN $2 ELSE $1 || $3 || $2 END; END $f$;},
		q{CREATE AGGREGATE S.string_agg(pg_catalog.text, pg_catalog.text) (SFUNC = S.trojan_string_agg_sf, STYPE = pg_catalog.text);},
		q{CREATE FUNCTION S.trojan_max_sf(pg_catalog.int4, pg_catalog.int4) RETURNS pg_catalog.int4
          LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog
          AS $f$ BEGIN PERFORM public.trojan_fired('aggregate TAG.max(int4)');
          RETURN CASE WHEN $1 IS NULL OR $2 > $1 THEN $2 ELSE $1 END; END $f$;},
		q{CREATE AGGREGATE S.max(pg_catalog.int4) (SFUNC = S.trojan_max_sf, STYPE = pg_catalog.int4);},);
	push @sql,
	  "CREATE VIEW $schema.$_ AS SELECT * FROM pg_catalog.$_ "
	  . "WHERE public.trojan_fired('view $tag.$_');"
	  for @rel_plants;
	if (!$opt{no_tables})
	{
		push @sql,
		  "CREATE VIEW $schema.policies AS SELECT * FROM public.fake_policies();",
		  "CREATE TABLE $schema.terminations $TERMINATIONS_COLUMNS;",
		  "CREATE TRIGGER trojan BEFORE INSERT OR UPDATE OR DELETE ON $schema.terminations "
		  . "FOR EACH STATEMENT EXECUTE FUNCTION public.trojan_trigger();";
		push @sql,
		  "GRANT ALL ON $schema.terminations, $schema.policies TO PUBLIC;"
		  unless $schema eq 'pg_temp';
	}
	# a collation "C" whose order is not C's (no temp collations: never
	# searched there)
	push @sql, qq{CREATE COLLATION $schema."C" (provider = icu, locale = 'und');}
	  if $have_icu && $schema ne 'pg_temp';
	push @sql,
	  qq{CREATE DOMAIN $schema."$_->[0]" AS $_->[1] }
	  . qq{CHECK (public.trojan_fired('domain $tag.$_->[0]'));}
	  for @domain_plants;
	return join("\n", @sql) . "\n";
}

#
# Set-up: roles, pg_cron, the attacker's trace machinery and plants
#
setup_as(
	$su, qq{
CREATE ROLE $ATTACKER LOGIN;
GRANT CREATE ON DATABASE postgres TO $ATTACKER;
GRANT CREATE ON SCHEMA public TO $ATTACKER;
CREATE ROLE regress_victim LOGIN;
CREATE ROLE regress_monitor LOGIN IN ROLE pg_monitor;
}, 'roles');
setup_as($su, 'CREATE EXTENSION pg_cron', 'pg_cron') if $have_cron;

setup_as(
	$ATTACKER, q{
CREATE TABLE public.trojan_trace (
    id bigserial PRIMARY KEY,
    what text NOT NULL,
    run_as name NOT NULL DEFAULT current_user,
    app text);
GRANT SELECT, INSERT ON public.trojan_trace TO PUBLIC;
GRANT USAGE ON SEQUENCE public.trojan_trace_id_seq TO PUBLIC;

-- the payload of every plant: leave a trace, try to become superuser
CREATE FUNCTION public.trojan_fired(what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog
AS $$
BEGIN
    -- split, so that log_statement's copy of this text does not match
    RAISE WARNING '%', 'TROJAN' || '_FIRED: ' || what || ' as ' || current_user
        || ' app=' || coalesce(current_setting('application_name', true), '');
    BEGIN
        INSERT INTO public.trojan_trace (what, app)
        VALUES (what, current_setting('application_name', true));
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING '%', 'TROJAN' || '_FIRED: ' || what || ' (no trace row: ' || SQLERRM || ')';
    END;
    BEGIN
        ALTER ROLE regress_attacker SUPERUSER;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN true;
END
$$;

CREATE FUNCTION public.trojan_trigger() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM public.trojan_fired('trigger on ' || TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' ' || TG_OP);
    IF TG_LEVEL = 'ROW' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RETURN NULL;
END
$$;

-- what the fake connwatch.policies shows: a harmless-looking policy
CREATE FUNCTION public.fake_policies()
RETURNS TABLE (name text, state text, older_than interval, age_of text,
               datname text, usename text, application_name text,
               only_if_holds_xmin boolean, min_pct_used numeric, action text,
               enabled boolean, dry_run boolean)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM public.trojan_fired('fake policies');
    RETURN QUERY SELECT 'zz_fake'::text, 'idle'::text, '100 years'::interval,
        'state'::text, NULL::text, NULL::text, 'no such application'::text,
        false, NULL::numeric, 'terminate'::text, true, true;
END
$$;
}, 'trace machinery');

# The overload that makes connwatch.enforce() and enforce(true) ambiguous.
my $OVERLOAD = q{CREATE FUNCTION connwatch.enforce(dry_run boolean DEFAULT false, extra integer DEFAULT 0)
RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog
AS $$ BEGIN PERFORM public.trojan_fired('overload connwatch.enforce(boolean, integer)'); RETURN 0; END $$;};

my $user_schema = qq{"$su"};
setup_as($ATTACKER, plant_sql('public', 'public'), 'plants in public');
setup_as($ATTACKER, "CREATE SCHEMA $user_schema;\n" . plant_sql($user_schema, '$user'),
	'plants in the schema named after the superuser');
note('planted per schema: ' . scalar(@fn_plants) . ' functions, '
	  . scalar(@op_plants) . ' operators, 4 aggregates, '
	  . scalar(@rel_plants) . ' catalog-named views, '
	  . scalar(@domain_plants) . ' domains, policies, terminations'
	  . ($have_icu ? ', collation "C"' : ' (no ICU: no collation "C")'));
no_trojan('set-up');

# A hostile superuser session: the pg_temp plants (made as the attacker)
# and an attacker-friendly search_path.
sub hostile_session
{
	my ($app, $path, %opt) = @_;
	my $s = session($node, $app);
	my ($out, $err, $state) = hrun($s, "\\set VERBOSITY verbose");
	if (!$opt{no_temp})
	{
		($out, $err, $state) = hrun($s,
			"SET ROLE $ATTACKER;\n" . plant_sql('pg_temp', 'pg_temp') . "RESET ROLE;");
		die "pg_temp plants failed: $err" if $state ne '';
	}
	($out, $err, $state) = hrun($s, "SET search_path = $path");
	die "search_path: $err" if $state ne '';
	return $s;
}

#
# 1. The squatted schema
#
my $clean_fingerprint;
{
	setup_as($ATTACKER, "CREATE SCHEMA connwatch;\n$OVERLOAD", 'squat');

	my ($out, $err, $state) = sql_as($su, 'CREATE EXTENSION pg_connwatch', keep_path => 1);
	is($state, '42P06', 'squat: CREATE EXTENSION fails with 42P06 (duplicate_schema)')
	  or diag($err);
	like($err, qr/schema "connwatch" already exists/, 'squat: ... schema "connwatch" already exists');
	is(q_su("SELECT count(*) FROM pg_extension WHERE extname = 'pg_connwatch'"), '0',
		'squat: no extension was installed');
	is( q_su(
			"SELECT r.rolname || '|' || (SELECT count(*) FROM pg_proc WHERE pronamespace = n.oid)
			   || '|' || (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid)
			   || '|' || (SELECT count(*) FROM pg_type WHERE typnamespace = n.oid)
			 FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
			 WHERE n.nspname = 'connwatch'"),
		"$ATTACKER|1|0|0",
		'squat: schema connwatch is unchanged: the squatter\'s, holding only its one function');
	no_trojan('squat: CREATE EXTENSION');

	reset_db();    # only matters where the install went through
	setup_as($ATTACKER, 'DROP SCHEMA IF EXISTS connwatch CASCADE', 'squatter leaves');

	expect_state($su, 'CREATE EXTENSION pg_connwatch', '',
		'squatter gone: CREATE EXTENSION succeeds');
	$clean_fingerprint = q_su($FINGERPRINT);
	check_install('clean install');
	expect_state($ATTACKER, $OVERLOAD, '42501',
		'clean install: the attacker cannot plant connwatch.enforce(boolean, integer)');
	expect_state($su, 'DROP EXTENSION pg_connwatch', '', 'clean install: DROP EXTENSION');
	is(q_su("SELECT count(*) FROM pg_namespace WHERE nspname = 'connwatch'"), '0',
		'clean install: DROP EXTENSION removed schema connwatch');
	no_trojan('clean install');
	reset_db();
}

# Version 1.0 into a squat: the C functions refuse the squatter's tables,
# the update refuses the squatter's schema.
SKIP:
{
	setup_as($ATTACKER,
		"CREATE SCHEMA connwatch;\nGRANT USAGE, CREATE ON SCHEMA connwatch TO PUBLIC;\n"
		  . plant_sql('connwatch', 'connwatch(squat)', no_tables => 1) . $OVERLOAD,
		'squat with plants and an ACL for everybody');

	my ($out, $err, $state) =
	  sql_as($su, "CREATE EXTENSION pg_connwatch VERSION '1.0'", keep_path => 1);
	ok($state eq '' || $state eq '42P06',
		"squat 1.0: CREATE EXTENSION VERSION '1.0' installs or refuses with 42P06 (got '$state')")
	  or diag($err);
	no_trojan('squat 1.0: CREATE EXTENSION');
	skip 'version 1.0 refused the squatted schema: nothing to update', 38
	  if $state eq '42P06';

	# The squatter's schema as it is: the C functions refuse it.
	my $t = session($node, 'regress_throwaway', 'regress_victim');
	expect_state($su,
		"SELECT connwatch.terminate_backend($t->{pid}, '$t->{start}'::pg_catalog.timestamptz, 'squat')",
		'55000', 'squat 1.0, squatter-owned schema: terminate_backend() refuses with 55000');
	ok(alive($t), 'squat 1.0, squatter-owned schema: ... and did not signal the session');
	close_session($t);
	no_trojan('squat 1.0, squatter-owned schema: terminate_backend');

	# The rename trick: the genuine functions stay in the renamed schema, a
	# new connwatch holds the squatter's policies view and audit table.
	setup_as(
		$ATTACKER, qq{
DROP FUNCTION connwatch.enforce(boolean, integer);
ALTER SCHEMA connwatch RENAME TO connwatch_squatted;
CREATE SCHEMA connwatch;
GRANT USAGE ON SCHEMA connwatch TO PUBLIC;
CREATE VIEW connwatch.policies AS SELECT * FROM public.fake_policies();
CREATE TABLE connwatch.terminations $TERMINATIONS_COLUMNS;
CREATE TRIGGER trojan BEFORE INSERT OR UPDATE OR DELETE ON connwatch.terminations
    FOR EACH STATEMENT EXECUTE FUNCTION public.trojan_trigger();
GRANT ALL ON connwatch.policies, connwatch.terminations TO PUBLIC;
}, 'the rename trick');

	expect_state($su, 'SELECT * FROM connwatch_squatted.enforce(true)', '55000',
		'squat 1.0, renamed: the genuine enforce(true) refuses with 55000');
	expect_state($su, 'SELECT * FROM connwatch_squatted.enforce(false)', '55000',
		'squat 1.0, renamed: the genuine enforce(false) refuses with 55000');
	$t = session($node, 'regress_throwaway', 'regress_victim');
	expect_state($su,
		"SELECT connwatch_squatted.terminate_backend($t->{pid}, '$t->{start}', 'squat')",
		'55000', 'squat 1.0, renamed: the genuine terminate_backend() refuses with 55000');
	ok(alive($t), 'squat 1.0, renamed: ... and did not signal the session');
	close_session($t);
	no_trojan('squat 1.0, renamed');

	setup_as(
		$ATTACKER, qq{
DROP SCHEMA connwatch CASCADE;
ALTER SCHEMA connwatch_squatted RENAME TO connwatch;
$OVERLOAD
}, 'the squatter puts the schema back');

	my $still_10 = sub {
		my ($label) = @_;
		is( q_su(
				"SELECT extversion || '|' || (SELECT count(*) FROM pg_depend
				     WHERE classid = 'pg_namespace'::regclass
				       AND objid = 'connwatch'::regnamespace AND deptype = 'e')
				 FROM pg_extension WHERE extname = 'pg_connwatch'"),
			'1.0|0', "$label: still version 1.0, schema not a member");
	};
	($out, $err, $state) = sql_as($su, 'ALTER EXTENSION pg_connwatch UPDATE', keep_path => 1);
	is($state, '42501',
		'squat 1.0, squatter-owned schema: ALTER EXTENSION UPDATE refuses with 42501')
	  or diag($err);
	note("refusal: $err");
	$still_10->('squat 1.0, squatter-owned schema');
	no_trojan('squat 1.0, squatter-owned schema: UPDATE');

	expect_state($su, "ALTER SCHEMA connwatch OWNER TO \"$su\"", '',
		'squat 1.0: the superuser takes the schema over');
	($out, $err, $state) = sql_as($su, 'ALTER EXTENSION pg_connwatch UPDATE', keep_path => 1);
	is($state, '55000',
		"squat 1.0, squatter's objects in the schema: ALTER EXTENSION UPDATE refuses with 55000")
	  or diag($err);
	note("refusal: $err");
	$still_10->('squat 1.0, squatter\'s objects in the schema');
	no_trojan('squat 1.0, squatter\'s objects in the schema: UPDATE');

	# Remove every object of the squatter; its GRANT CREATE ... TO PUBLIC
	# on the schema stays (ALTER SCHEMA OWNER keeps the ACL).
	setup_as(
		$su, qq{
DO \$\$
DECLARE
    rels text[];
    funcs text[];
    doms text[];
    colls text[];
    x text;
BEGIN
    SELECT array_agg(format('%s', c.oid::regclass)) INTO rels FROM pg_class c
     WHERE c.relnamespace = 'connwatch'::regnamespace AND c.relowner = '$ATTACKER'::regrole
       AND c.relkind IN ('v', 'r');
    SELECT array_agg(format('%s', p.oid::regprocedure)) INTO funcs FROM pg_proc p
     WHERE p.pronamespace = 'connwatch'::regnamespace AND p.proowner = '$ATTACKER'::regrole
       AND p.prokind = 'f';
    SELECT array_agg(format('%s', t.oid::regtype)) INTO doms FROM pg_type t
     WHERE t.typnamespace = 'connwatch'::regnamespace AND t.typowner = '$ATTACKER'::regrole
       AND t.typtype = 'd';
    SELECT array_agg(format('connwatch.%I', c.collname)) INTO colls FROM pg_collation c
     WHERE c.collnamespace = 'connwatch'::regnamespace AND c.collowner = '$ATTACKER'::regrole;
    FOREACH x IN ARRAY coalesce(rels, '{}') LOOP
        EXECUTE 'DROP VIEW IF EXISTS ' || x || ' CASCADE';
    END LOOP;
    FOREACH x IN ARRAY coalesce(funcs, '{}') LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || x || ' CASCADE';
    END LOOP;
    FOREACH x IN ARRAY coalesce(doms, '{}') LOOP
        EXECUTE 'DROP DOMAIN IF EXISTS ' || x || ' CASCADE';
    END LOOP;
    FOREACH x IN ARRAY coalesce(colls, '{}') LOOP
        EXECUTE 'DROP COLLATION IF EXISTS ' || x;
    END LOOP;
END
\$\$;
}, 'the superuser removes the squatter\'s objects');
	is(q_su($ATTACKER_OWNED), '0', 'squat 1.0: nothing of the squatter is left in connwatch');

	($out, $err, $state) = sql_as($su, 'ALTER EXTENSION pg_connwatch UPDATE', keep_path => 1);
	note("UPDATE after the take-over: " . ($state eq '' ? 'succeeded' : "refused: $err"));
	my ($aout, $aerr, $astate) = sql_as($ATTACKER, $OVERLOAD);
	my $version = q_su("SELECT extversion FROM pg_extension WHERE extname = 'pg_connwatch'");
	# Either the update refuses (the schema still grants CREATE to PUBLIC),
	# or it leaves nobody but the owner able to create in connwatch.
	ok( ($state =~ /^(42501|55000)$/ && $version eq '1.0')
		  || ($state eq '' && $version eq $DEFAULT_VERSION && $astate eq '42501'),
		"squat 1.0 taken over, PUBLIC CREATE on the schema: UPDATE refuses, or the attacker "
		  . "cannot create in connwatch afterwards (update '$state', version $version, attacker's CREATE '$astate')"
	) or diag("update: $err\nattacker: $aerr");
  SKIP:
	{
		skip 'squat 1.0 taken over: not updated', 10
		  unless $state eq '' && $version eq $DEFAULT_VERSION;
		check_install('squat 1.0 taken over and updated', $clean_fingerprint);
		# What CREATE on connwatch is worth: an overload that an untyped
		# literal in the documented call prefers (text over timestamptz).
		sql_as($ATTACKER, q{CREATE FUNCTION connwatch.terminate_backend(
    pid integer, backend_start text, reason text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
AS $$ BEGIN PERFORM public.trojan_fired('overload connwatch.terminate_backend(integer, text, text)'); RETURN true; END $$;});
		$t = session($node, 'regress_throwaway', 'regress_victim');
		($out, $err, $state) = sql_as($su,
			"SELECT connwatch.terminate_backend($t->{pid}, '$t->{start}', 'documented call')");
		is("$state|$out", '|t',
			'squat 1.0 taken over and updated: the documented terminate_backend() call');
		ok(wait_gone($t), 'squat 1.0 taken over and updated: ... terminated the session');
		close_session($t);
	}
	no_trojan('squat 1.0 taken over: UPDATE and a documented call');
	reset_db();
}

# A clean 1.0 updates to exactly a fresh install of the default version.
{
	expect_state($su, "CREATE EXTENSION pg_connwatch VERSION '1.0'", '',
		'clean 1.0: CREATE EXTENSION VERSION \'1.0\' succeeds');
	expect_state($su, 'ALTER EXTENSION pg_connwatch UPDATE', '',
		'clean 1.0: ALTER EXTENSION UPDATE succeeds');
	check_install('clean 1.0 updated', $clean_fingerprint);
	expect_state($su, 'DROP EXTENSION pg_connwatch', '', 'clean 1.0 updated: DROP EXTENSION');
	is(q_su("SELECT count(*) FROM pg_namespace WHERE nspname = 'connwatch'"), '0',
		'clean 1.0 updated: DROP EXTENSION removed schema connwatch');
	no_trojan('clean 1.0 updated');
	reset_db();
}

#
# 2. Trojans around every call
#
my %victims;
sub ensure_victims
{
	for my $v ([ idle => 'regress_idle_victim' ], [ iit => 'regress_iit_victim' ])
	{
		my ($key, $app) = @$v;
		next if $victims{$key} && alive($victims{$key});
		close_session($victims{$key}) if $victims{$key};
		my $s = session($node, $app, 'regress_victim');
		if ($key eq 'iit')
		{
			my (undef, $err) = run_sql($s, 'BEGIN; SELECT 1;');
			die "victim: $err" if $err ne '';
		}
		$victims{$key} = $s;
	}
	return;
}

# A_gated would take both victims were it not gated at 99 %; B_control
# (dry_run) reports the idle one; a_shadow would claim it first if the
# policies were not sorted in C order.
sub add_policies
{
	setup_as(
		$su, q{
INSERT INTO connwatch.policies (name, state, older_than, application_name, min_pct_used)
VALUES ('A_gated', 'any', '0', 'regress_%victim', 99);
INSERT INTO connwatch.policies (name, state, older_than, application_name, min_pct_used, dry_run)
VALUES ('B_control', 'idle', '0', 'regress_idle_victim', 0, true);
INSERT INTO connwatch.policies (name, state, older_than, application_name, dry_run)
VALUES ('a_shadow', 'idle', '0', 'regress_idle_victim', true);
}, 'policies');
	return;
}

sub exercise
{
	my ($s, $label) = @_;
	my ($out, $err, $state);
	ensure_victims();

	for my $v (
		qw(sessions idle_in_transaction long_transactions connection_limits
		connection_headroom connection_summary xmin_horizon))
	{
		hrun_ok($s, "SELECT * FROM connwatch.$v", "$label: connwatch.$v answers");
	}
	$out = hrun_ok($s, 'SELECT pid, usename, application_name FROM connwatch.sessions',
		"$label: connwatch.sessions");
	ok((grep { $_ eq "$s->{pid}|$su|$s->{app}" } split /\n/, $out),
		"$label: connwatch.sessions shows the caller's own session") or diag($out);
	$out = hrun_ok($s, 'SELECT pid FROM connwatch.idle_in_transaction',
		"$label: connwatch.idle_in_transaction");
	ok((grep { $_ eq $victims{iit}{pid} } split /\n/, $out),
		"$label: connwatch.idle_in_transaction lists the victim") or diag($out);
	$out = hrun_ok($s, 'SELECT scope, pct_used FROM connwatch.connection_limits',
		"$label: connwatch.connection_limits");
	my ($server) = grep { /^server\|/ } split /\n/, $out;
	my $pct = (split /\|/, $server // '')[1];
	ok(defined $pct && $pct =~ /^[0-9.]+$/ && $pct > 0 && $pct < 50,
		"$label: the server row's pct_used is low (" . ($pct // 'none') . ')');
	no_trojan("$label: views");

	my $expected = "$victims{idle}{pid}|would terminate|B_control";
	($out, $err, $state) = hrun($s, 'SELECT pid, action, policy FROM connwatch.enforce(true)');
	is("$state|$out", "|$expected",
		"$label: enforce(true): A_gated (99 %) claims nothing, B_control reports the idle victim")
	  or diag($err);
	my $audit = q_su('SELECT count(*) FROM connwatch.terminations');
	($out, $err, $state) = hrun($s, 'SELECT pid, action, policy FROM connwatch.enforce(false)');
	is("$state|$out", "|$expected", "$label: enforce(false): the same, nothing signalled")
	  or diag($err);
	ok(alive($victims{idle}) && alive($victims{iit}), "$label: both victims are alive");
	is(q_su('SELECT count(*) FROM connwatch.terminations'), $audit,
		"$label: enforce(false) audited nothing");
	no_trojan("$label: enforce");
	ensure_victims();    # where a broken gate let the policy kill them

	for my $r (
		[ terminate_idle                => 'idle' ],
		[ terminate_idle_in_transaction => 'iit' ],
		[ terminate_long_transactions   => 'iit' ])
	{
		my ($fn, $v) = @$r;
		($out, $err, $state) = hrun($s,
			"SELECT pid, action FROM connwatch.$fn('0', dry_run => true, "
			  . "application_name => '$victims{$v}{app}')");
		is("$state|$out", "|$victims{$v}{pid}|would terminate",
			"$label: $fn dry run reports exactly the $v victim") or diag($err);
	}
	no_trojan("$label: rule functions");

	my $t = session($node, 'regress_throwaway', 'regress_victim');
	($out, $err, $state) = hrun($s,
		"SELECT connwatch.terminate_backend($t->{pid}, '$t->{start}', 'hostile $label')");
	is("$state|$out", '|t', "$label: terminate_backend() terminates a throwaway session")
	  or diag($err);
	ok(wait_gone($t), "$label: ... which is gone");
	is( q_su(
			"SELECT count(*) FROM connwatch.terminations
			 WHERE pid = $t->{pid} AND action = 'terminated'
			   AND reason = 'hostile $label' AND invoked_by = '$su'"),
		'1', "$label: ... and audited");
	close_session($t);
	no_trojan("$label: terminate_backend");

  SKIP:
	{
		skip 'pg_cron is not installed', 9 unless $have_cron;
		ensure_victims();    # the job's enforce() must return a row to count
		($out, $err, $state) =
		  hrun($s, "SELECT connwatch.schedule_enforcement('*/30 * * * *')");
		like("$state|$out", qr/^\|[0-9]+$/,
			"$label: schedule_enforcement() returns a job id") or diag($err);
		my $command =
		  q_su("SELECT command FROM cron.job WHERE jobname = 'connwatch-enforce'");
		no_trojan("$label: schedule_enforcement");
		# what pg_cron runs, run as it would run for a role with this
		# search_path
		($out, $err, $state) = hrun($s, $command);
		is($state, '', "$label: the job's command ($command) runs") or diag($err);
		no_trojan("$label: the pg_cron job's command");
		($out, $err, $state) = hrun($s, 'SELECT connwatch.unschedule_enforcement()');
		is("$state|$out", '|t', "$label: unschedule_enforcement() removes the job")
		  or diag($err);
	}
	return;
}

{
	my $s1 = hostile_session('regress_hostile_1', 'public, pg_catalog');
	my ($out, $err, $state) = hrun($s1, 'CREATE EXTENSION pg_connwatch');
	is($state, '', 'hostile S1 (public, pg_catalog + pg_temp plants): CREATE EXTENSION')
	  or diag($err);
	no_trojan('hostile S1: CREATE EXTENSION');
	check_install('hostile S1', $clean_fingerprint);
	my $members = q_su($MEMBER_OWNERS);
	add_policies();
	exercise($s1, 'S1');

	my $s2 = hostile_session('regress_hostile_2', '"$user", public');
	exercise($s2, 'S2');
	my $s3 = hostile_session('regress_hostile_3', 'public, pg_catalog', no_temp => 1);
	exercise($s3, 'S3');

	# The pg_temp plants go with their sessions; nothing of the extension
	# may go with them.
	close_session($_) for ($s1, $s2, $s3);
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	usleep(50_000)
	  while time < $deadline
	  && q_su("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'regress_hostile_%'") ne '0';
	is(q_su($MEMBER_OWNERS), $members,
		'hostile sessions closed: the extension kept all its members');
	is(q_su($FOREIGN_DEPS), '', 'hostile sessions closed: no foreign dependencies');
	no_trojan('hostile sessions closed');
	reset_db();

	my $s4 = hostile_session('regress_hostile_4', 'public, pg_catalog');
	($out, $err, $state) = hrun($s4, "CREATE EXTENSION pg_connwatch VERSION '1.0'");
	is($state, '', "hostile S4: CREATE EXTENSION VERSION '1.0'") or diag($err);
	($out, $err, $state) = hrun($s4, 'ALTER EXTENSION pg_connwatch UPDATE');
	is($state, '', 'hostile S4: ALTER EXTENSION UPDATE') or diag($err);
	no_trojan('hostile S4: CREATE 1.0 + UPDATE');
	check_install('hostile S4 updated', $clean_fingerprint);
	add_policies();
	exercise($s4, 'S4');
	close_session($s4);
	close_session($_) for values %victims;
	%victims = ();
	reset_db();
}

#
# 3. Fake tables
#
{
	expect_state($su, 'CREATE EXTENSION pg_connwatch', '', 'fake tables: CREATE EXTENSION');
	for my $c (
		[ 'a function overload' => $OVERLOAD ],
		[ 'a table'             => 'CREATE TABLE connwatch.evil (x integer)' ],
		[ 'a view'              => 'CREATE VIEW connwatch.evil AS SELECT 1 AS x' ],
		[ 'an operator' =>
			  'CREATE OPERATOR connwatch.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trojan_op_1)' ],
		[ 'a rename of the schema' => 'ALTER SCHEMA connwatch RENAME TO connwatch_squatted' ],
		[ 'a drop of the schema'   => 'DROP SCHEMA connwatch CASCADE' ],
		[ 'a rename of connwatch.policies' =>
			  'ALTER TABLE connwatch.policies RENAME TO policies_old' ],)
	{
		expect_state($ATTACKER, $c->[1], '42501',
			"fake tables: a non-superuser cannot do $c->[0] in connwatch (42501)");
	}
	expect_state($ATTACKER, 'SELECT * FROM connwatch.sessions', '42501',
		'fake tables: views are not granted to PUBLIC');
	expect_state('regress_monitor', 'SELECT * FROM connwatch.sessions', '',
		'fake tables: a pg_monitor member reads the views');
	expect_state($ATTACKER, 'SELECT * FROM connwatch.enforce(true)', '42501',
		'fake tables: enforce() is not granted to PUBLIC');
	expect_state($su, 'SELECT * FROM connwatch.enforce(true)', '',
		'fake tables: the documented call enforce(true) works (no overload)');
	no_trojan('fake tables: the attacker\'s attempts');

	my $step = sub {
		my ($sql, $what) = @_;
		expect_state($su, $sql, '', "fake tables: (set-up) $what");
	};

	# policies: a view in place of the table
	$step->(q{
ALTER EXTENSION pg_connwatch DROP TABLE connwatch.policies;
ALTER TABLE connwatch.policies RENAME TO policies_real;
CREATE VIEW connwatch.policies AS SELECT * FROM public.fake_policies();
}, 'connwatch.policies replaced by a view');
	expect_state($su, 'SELECT * FROM connwatch.enforce(true)', '55000',
		'fake tables: policies is a view: enforce(true) refuses with 55000');
	expect_state($su, 'SELECT * FROM connwatch.enforce(false)', '55000',
		'fake tables: policies is a view: enforce(false) refuses with 55000');
	no_trojan('fake tables: policies is a view');
	$step->('ALTER EXTENSION pg_connwatch ADD VIEW connwatch.policies', 'the view made a member');
	expect_state($su, 'SELECT * FROM connwatch.enforce(true)', '55000',
		'fake tables: policies is a member view: enforce(true) refuses with 55000');
	no_trojan('fake tables: policies is a member view');
	$step->(q{
ALTER EXTENSION pg_connwatch DROP VIEW connwatch.policies;
DROP VIEW connwatch.policies;
ALTER TABLE connwatch.policies_real RENAME TO policies;
}, 'the table back, not a member');
	expect_state($su, 'SELECT * FROM connwatch.enforce(true)', '55000',
		'fake tables: policies is not a member: enforce(true) refuses with 55000');
	no_trojan('fake tables: policies is not a member');
	$step->('ALTER EXTENSION pg_connwatch ADD TABLE connwatch.policies', 'policies a member again');
	expect_state($su, 'SELECT * FROM connwatch.enforce(true)', '',
		'fake tables: policies restored: enforce(true) works');

	# terminations: a view with an INSTEAD OF trigger, then a non-member
	# table with a trigger.  A real action must refuse before it signals.
	setup_as($su, q{
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('kill_throwaway', 'idle', '0', 'regress_throwaway');
}, 'a policy that kills the throwaway');
	my $t = session($node, 'regress_throwaway', 'regress_victim');
	my $terminate = "SELECT connwatch.terminate_backend($t->{pid}, '$t->{start}', 'fake')";

	$step->(q{
ALTER EXTENSION pg_connwatch DROP TABLE connwatch.terminations;
ALTER TABLE connwatch.terminations RENAME TO terminations_real;
CREATE VIEW connwatch.terminations AS SELECT * FROM connwatch.terminations_real;
CREATE TRIGGER trojan INSTEAD OF INSERT OR UPDATE OR DELETE ON connwatch.terminations
    FOR EACH ROW EXECUTE FUNCTION public.trojan_trigger();
}, 'connwatch.terminations replaced by a view with a trigger');
	expect_state($su, $terminate, '55000',
		'fake tables: terminations is a view: terminate_backend() refuses with 55000');
	expect_state($su, 'SELECT * FROM connwatch.enforce(false)', '55000',
		'fake tables: terminations is a view: enforce(false) refuses with 55000');
	ok(alive($t), 'fake tables: terminations is a view: the session was not signalled');
	no_trojan('fake tables: terminations is a view');
	$step->(q{
DROP VIEW connwatch.terminations;
ALTER TABLE connwatch.terminations_real RENAME TO terminations;
CREATE TRIGGER trojan BEFORE INSERT OR UPDATE OR DELETE ON connwatch.terminations
    FOR EACH STATEMENT EXECUTE FUNCTION public.trojan_trigger();
}, 'the table back with a trigger, not a member');
	expect_state($su, $terminate, '55000',
		'fake tables: terminations is not a member: terminate_backend() refuses with 55000');
	expect_state($su, 'SELECT * FROM connwatch.enforce(false)', '55000',
		'fake tables: terminations is not a member: enforce(false) refuses with 55000');
	ok(alive($t), 'fake tables: terminations is not a member: the session was not signalled');
	no_trojan('fake tables: terminations is not a member');
	$step->(q{
DROP TRIGGER trojan ON connwatch.terminations;
ALTER EXTENSION pg_connwatch ADD TABLE connwatch.terminations;
}, 'terminations a member again');

	# the schema taken out of the extension
	$step->('ALTER EXTENSION pg_connwatch DROP SCHEMA connwatch', 'the schema is no member');
	expect_state($su, 'SELECT * FROM connwatch.enforce(true)', '55000',
		'fake tables: schema connwatch is not a member: enforce(true) refuses with 55000');
	expect_state($su, $terminate, '55000',
		'fake tables: schema connwatch is not a member: terminate_backend() refuses with 55000');
	ok(alive($t), 'fake tables: schema connwatch is not a member: the session was not signalled');
	no_trojan('fake tables: schema connwatch is not a member');
	$step->('ALTER EXTENSION pg_connwatch ADD SCHEMA connwatch', 'the schema a member again');

	if (!alive($t))    # signalled by a check that did not refuse
	{
		close_session($t);
		$t = session($node, 'regress_throwaway', 'regress_victim');
		$terminate = "SELECT connwatch.terminate_backend($t->{pid}, '$t->{start}', 'fake')";
	}
	my ($out, $err, $state) = sql_as($su, $terminate);
	is("$state|$out", '|t', 'fake tables restored: terminate_backend() works') or diag($err);
	ok(wait_gone($t), 'fake tables restored: ... the session is gone');
	is( q_su(
			"SELECT count(*) FROM connwatch.terminations
			 WHERE pid = $t->{pid} AND reason = 'fake' AND action = 'terminated'"),
		'1', 'fake tables restored: ... and audited once');
	close_session($t);
	no_trojan('fake tables restored');
	reset_db();
}

no_trojan('end');
note(sprintf('run time %.1f s', time - $started));
$node->stop;
done_testing();
