# 305_ledger_hardening.pl - ledgers an attacker cannot blind, and that
# outlive the incident (issue 14, items 7, 14, 16).
#
# 1. A burst of 1,000 refused logins under invented role names fills the
#    refusal ledger (connwatch.max_ledger_keys = 16); the real refusal that
#    follows still gets a key of its own, and every attempt is counted,
#    under its key or its cause's overflow key.  The same for the endings
#    ledger: 200 short sessions under distinct application names, then a
#    real one.
# 2. history(since, until) returns exactly the samples of its range, and a
#    call costs the backend no more memory than its rows, with a ring of
#    20,000 samples of 100 applications (146 MB: the old code allocated it
#    whole at every call).
# 3. Hostile ledger files: timestamps out of range, a cause out of range,
#    more keys than the cap, overflow entries with names (which used to
#    bypass the cap and fill the endings table): each is reported by a
#    WARNING, diagnose() and metrics() work, totals that can be kept are
#    kept, and the endings ledger still counts new sessions.
# 4. A crash-restart (a backend killed with SIGKILL during a refusal storm)
#    keeps what the worker saved (connwatch.ledger_persist_interval = 1s).

use strict;
use warnings;

use DBI;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('ledgers');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
autovacuum = off
connwatch.max_ledger_keys = 16
connwatch.ledger_persist_interval = 1s
connwatch.history_size = 20000
connwatch.history_applications = 100
connwatch.sample_interval = 100ms
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_connwatch;
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_billing LOGIN CONNECTION LIMIT 0;
});

sub attempt
{
	my ($user, $app) = @_;
	my $dbh = DBI->connect(
		'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port
		  . ";application_name=$app",
		$user, undef, { RaiseError => 0, PrintError => 0, AutoCommit => 1 });
	return $dbh if $dbh;
	return $DBI::errstr;
}

# ---- 1. a burst cannot keep a real cause unnamed ---------------------------

# four clients at once, 250 names each
sub in_parallel
{
	my ($n, $each) = @_;
	my @pids;
	for my $c (0 .. $n - 1)
	{
		my $pid = fork() // die "fork: $!";
		if ($pid == 0)
		{
			$each->($c);
			POSIX::_exit(0);
		}
		push @pids, $pid;
	}
	waitpid($_, 0) for @pids;
	return;
}
in_parallel(4, sub { my $c = shift; attempt('regress_invented_' . ($c * 250 + $_), 'burst') for 1 .. 250 });
my $real = attempt('regress_billing', 'billing-api');
like($real, qr/too many connections for role/, 'the real refusal happened');

is( $node->safe_psql('postgres', q{
SELECT count, overflow FROM connwatch.refused_connections
WHERE cause = 'role limit' AND usename = 'regress_billing'
  AND application_name = 'billing-api'}),
	'1|f', 'after 1,000 invented names, the real refusal has its own key');
is( $node->safe_psql('postgres', q{
SELECT sum(count), count(*) FILTER (WHERE NOT overflow) <= 16,
       sum(count) FILTER (WHERE overflow) >= 1000 - 16
FROM connwatch.refused_connections WHERE cause = 'role does not exist'}),
	'1000|t|t',
	'every invented attempt is counted: evicted keys are added to the overflow row');
is( $node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE NOT overflow) <= 16 FROM connwatch.refused_connections}),
	't', 'the refusal ledger keeps at most max_ledger_keys keys');

in_parallel(4, sub {
	my $c = shift;
	for my $i (1 .. 50)
	{
		my $dbh = attempt('regress_app', 'short_' . ($c * 50 + $i));
		$dbh->disconnect if ref $dbh;
	}
});
$node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'short\_%'})
  or die 'the short sessions did not end';
my $billing_session = attempt('regress_app', 'billing-real');
$billing_session->disconnect;
$node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'billing-real'})
  or die 'the session did not end';
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM connwatch.session_endings WHERE application_name = 'billing-real'})
  or die 'the ending was not counted';
is( $node->safe_psql('postgres', q{
SELECT reason, count, overflow FROM connwatch.session_endings
WHERE application_name = 'billing-real'}),
	'client closed|1|f', 'after 200 short sessions, a real ending has its own key');
is( $node->safe_psql('postgres', q{
SELECT sum(count) >= 201, count(*) FILTER (WHERE NOT overflow) <= 16,
       sum(count) FILTER (WHERE application_name LIKE 'short\_%' OR overflow) >= 200
FROM connwatch.session_endings}),
	't|t|t', 'every short session is counted, at most 16 keys kept');

# ---- 2. history() reads only its range -------------------------------------

$node->poll_query_until('postgres', q{
SELECT count(*) >= 10 FROM connwatch.history('-infinity', 'infinity')})
  or die 'no samples';
my $all = $node->safe_psql('postgres', q{
SELECT string_agg(sampled_at::text, ',' ORDER BY sampled_at)
FROM connwatch.history('-infinity', 'infinity')});
my @stamps = split /,/, $all;
my ($from, $to) = ($stamps[2], $stamps[6]);
is( $node->safe_psql('postgres', qq{
SELECT count(*) || '|' || min(sampled_at) || '|' || max(sampled_at)
FROM connwatch.history('$from', '$to')}),
	"5|$from|$to", 'history(since, until) returns exactly the samples in the range');

{
	my $s = $node->background_psql('postgres');
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	my $vm_peak = sub {
		my $status = slurp_file("/proc/$pid/status");
		return $status =~ /^VmPeak:\s+(\d+) kB/m ? $1 : die "no VmPeak for $pid";
	};
	$s->query_safe(q{SELECT count(*) FROM connwatch.history(now(), now())});
	my $before = $vm_peak->();
	my $rows = $s->query_safe(q{
SELECT count(*) FROM connwatch.history('-infinity', '2000-01-01')});
	$s->query_safe(q{SELECT count(*) FROM connwatch.history('-infinity', 'infinity')})
	  for 1 .. 3;
	my $grown = $vm_peak->() - $before;
	$s->quit;
	is($rows, '0', 'an empty range returns nothing');
	cmp_ok($grown, '<', 20 * 1024,
		"history() calls grew the backend's VmPeak by $grown kB, not by the ring's 146 MB");
}

# ---- 3. hostile ledger files -----------------------------------------------

my $file = $node->data_dir . '/pg_stat/pg_connwatch.ledgers';

# Header: 8 uint32, 2 timestamps, 2 int64, 1 uint64, 3 int32, padded to 88.
my $header_format = 'L8 q q q q Q l l l x4';
my $header_size   = 88;
my $trailer_size  = 24;

sub read_ledger
{
	my $bytes = slurp_file($file);
	my @h = unpack($header_format, $bytes);
	my ($key_size, $ending_size, $peak_size) = @h[ 2 .. 4 ];
	my $refusal_size = (($key_size + 7) & ~7) + 24;
	my ($nref, $nend, $npeak) = @h[ 13 .. 15 ];
	my $entries = $header_size + $nref * $refusal_size + $nend * $ending_size
	  + $npeak * $peak_size;
	# then a trailer: magic, padding, the data directory's device and inode
	die "unexpected ledger layout"
	  unless length($bytes) == $entries + $trailer_size
	  && $ending_size == 392 && $key_size == 214;
	my $pos = $header_size;
	my (@ref, @end, @peak);
	push @ref, substr($bytes, $pos + $_ * $refusal_size, $refusal_size) for 0 .. $nref - 1;
	$pos += $nref * $refusal_size;
	push @end, substr($bytes, $pos + $_ * $ending_size, $ending_size) for 0 .. $nend - 1;
	$pos += $nend * $ending_size;
	push @peak, substr($bytes, $pos + $_ * $peak_size, $peak_size) for 0 .. $npeak - 1;
	return {
		header  => [@h],
		ref     => \@ref,
		end     => \@end,
		peak    => \@peak,
		trailer => substr($bytes, $entries)
	};
}

# the application names of the saved copy's refusals
sub saved_apps
{
	return () unless -e $file;
	my $l = eval { read_ledger() } or return ();
	return map { (unpack('x6 x16 x64 x64 Z64', $_))[0] } @{ $l->{ref} };
}

sub write_ledger
{
	my ($l) = @_;
	my @h = @{ $l->{header} };
	@h[ 13 .. 15 ] = (scalar @{ $l->{ref} }, scalar @{ $l->{end} }, scalar @{ $l->{peak} });
	open my $fh, '>:raw', $file or die "$file: $!";
	print $fh pack($header_format, @h), @{ $l->{ref} }, @{ $l->{end} }, @{ $l->{peak} },
	  $l->{trailer};
	close $fh;
	return;
}

# A refusal: key (cause, overflow, has_datname, has_usename, has_app,
# family, addr[16], 3 names), padding, count, first_at, last_at.
sub refusal_entry
{
	my (%a) = @_;
	return pack('C C C C C C x16 Z64 Z64 Z64 x2 q q q',
		$a{cause} // 4, $a{overflow} // 0, 1, 1, 1, 1,
		'postgres', $a{user}, $a{app}, $a{count} // 1, $a{first} // $a{at}, $a{at});
}

# An ending: 4 names, reason, overflow, padding, count, lifetime, 8
# buckets, in_transaction, transaction_warnings, 4 timestamps.
sub ending_entry
{
	my (%a) = @_;
	my $n = $a{count} // 1;
	return pack('Z64 Z64 Z64 Z64 C C x6 q q q8 q q q q q q',
		'postgres', 'regress_app', $a{app}, '', $a{reason} // 0, $a{overflow} // 0,
		$n, 1000 * $n, $n, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		$a{first} // $a{at}, $a{at}, 0, 0);
}

my $now_pg = $node->safe_psql('postgres',
	q{SELECT ((extract(epoch FROM now()) - 946684800) * 1000000)::bigint});
$node->stop;
my $ledger = read_ledger();
ok(scalar @{ $ledger->{ref} } > 0 && scalar @{ $ledger->{end} } > 0,
	'a clean stop wrote the ledger file');
my $out_of_range = 9223372036854775792;    # 0x7ffffffffffffff0
$ledger->{ref} = [
	(map { refusal_entry(user => "regress_flood_$_", app => 'flood', at => $now_pg) } 1 .. 40),
	refusal_entry(user => 'regress_x', app => 'hostile_time', at => $out_of_range,
		first => $now_pg),
	refusal_entry(user => 'regress_x', app => 'hostile_enum', at => $now_pg, cause => 200),
];
$ledger->{end} = [
	(map { ending_entry(app => "flood_$_", at => $now_pg) } 1 .. 40),
	(map { ending_entry(app => "named_overflow_$_", overflow => 1, at => $now_pg) } 1 .. 40),
	ending_entry(app => 'hostile_time', at => $now_pg, first => -$out_of_range),
	ending_entry(app => 'hostile_enum', at => $now_pg, reason => 99),
];
write_ledger($ledger);

my $log_offset = -s $node->logfile;
$node->start;
# the first session after the start: no other ending counted yet
is( $node->safe_psql('postgres', q{
SELECT sum(count), count(*) FILTER (WHERE NOT overflow) <= 16,
       count(*) FILTER (WHERE overflow),
       count(*) FILTER (WHERE application_name LIKE 'hostile%')
FROM connwatch.session_endings}),
	'80|t|1|0',
	'endings: 80 kept, named overflow entries merged into one, the hostile ones gone');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/WARNING:.*ignored 2 entries of "pg_stat\/pg_connwatch.ledgers" with a timestamp out of range/,
	'entries with timestamps out of range are ignored, with a WARNING');
like($log, qr/WARNING:.*ignored 2 entries of .* with a cause, reason or scope out of range/,
	'entries with a cause or reason out of range are ignored, with a WARNING');
like($log, qr/WARNING:.*counted \d+ entries of .* beyond connwatch.max_ledger_keys in the overflow keys/,
	'keys beyond the cap are folded into the overflow, with a WARNING');

is( $node->safe_psql('postgres', q{
SELECT sum(count), count(*) FILTER (WHERE NOT overflow) <= 16,
       count(*) FILTER (WHERE application_name LIKE 'hostile%')
FROM connwatch.refused_connections}),
	'40|t|0', 'refusals: 40 kept (16 keys, the rest in the overflow), the hostile ones gone');
my ($rc, $stdout, $stderr) = $node->psql('postgres', q{
SELECT count(*) > 0 FROM connwatch.metrics();
SELECT count(*) >= 0 FROM connwatch.diagnose();});
is($rc, 0, 'metrics() and diagnose() work after the hostile file') or diag($stderr);

my $after = attempt('regress_app', 'after_hostile');
$after->disconnect;
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM connwatch.session_endings WHERE application_name = 'after_hostile'})
  or die 'the ending after the hostile file was not counted';
is( $node->safe_psql('postgres', q{
SELECT count, overflow FROM connwatch.session_endings
WHERE application_name = 'after_hostile'}),
	'1|f', 'the endings ledger counts new sessions under their own key');

# A copy written by another data directory (a base backup of a running
# primary carries pg_stat/) is not read: the trailer names another inode.
$node->stop;
$ledger = read_ledger();
my ($magic, $pad, $dev, $ino) = unpack('L L Q Q', $ledger->{trailer});
$ledger->{trailer} = pack('L L Q Q', $magic, $pad, $dev, $ino + 1);
write_ledger($ledger);
$log_offset = -s $node->logfile;
$node->start;
like(slurp_file($node->logfile, $log_offset),
	qr/LOG:.*ignoring pg_connwatch's ledger file .* written by the server of another data directory/,
	'a ledger file from another data directory is ignored, with a LOG line');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM connwatch.refused_connections WHERE application_name = 'flood'}),
	'0', 'and none of its refusals are there');

# ---- 4. a crash-restart keeps the last saved copy --------------------------

attempt('regress_flood', 'flood');
for (my $i = 0; $i < 300 && !grep({ $_ eq 'flood' } saved_apps()); $i++)
{
	select(undef, undef, undef, 0.1);
}
$node->safe_psql('postgres', 'SELECT connwatch.reset_ledgers()');
is( join(',', grep { $_ eq 'flood' } saved_apps()), '',
	'after reset_ledgers(), no saved copy holds what was reset');
$node->stop;

# A node of its own: it crashes on purpose, and its log is checked here.
$node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_connwatch'
autovacuum = off
connwatch.ledger_persist_interval = 1s
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_connwatch');
$file = $node->data_dir . '/pg_stat/pg_connwatch.ledgers';

attempt('regress_ghost', 'crash_storm') for 1 .. 50;

# the count of (role does not exist, crash_storm) in the saved copy
sub saved_storm_count
{
	return 0 unless -e $file;
	my $l = eval { read_ledger() } or return 0;
	for my $r (@{ $l->{ref} })
	{
		my ($cause, $overflow, $app) = unpack('C C x4 x16 x64 x64 Z64', $r);
		next unless $cause == 4 && !$overflow && $app eq 'crash_storm';
		return unpack('x216 q', $r);
	}
	return 0;
}
my $saved = 0;
for (my $i = 0; $i < 300 && ($saved = saved_storm_count()) < 50; $i++)
{
	select(undef, undef, undef, 0.1);
}
is($saved, 50, 'the worker saved the 50 refusals');

# a storm of refusals, and a backend killed with SIGKILL in the middle
my $storm_pid = fork();
if ($storm_pid == 0)
{
	attempt('regress_ghost', 'crash_storm') for 1 .. 100000;
	POSIX::_exit(0);
}
my $victim = $node->background_psql('postgres');
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
for (my $i = 0; $i < 300 && saved_storm_count() < 100; $i++)
{
	select(undef, undef, undef, 0.1);
}
my $saved_before_kill = saved_storm_count();
my $crash_log_offset = -s $node->logfile;
# the storm ends with the crash, so that nothing is counted after it
kill 'KILL', $victim_pid;
kill 'KILL', $storm_pid;
waitpid($storm_pid, 0);
eval { $victim->quit };

$node->poll_query_until('postgres', 'SELECT true')
  or die 'the server did not come back after the crash';
my $crash_log = slurp_file($node->logfile, $crash_log_offset);
like($crash_log, qr/\(PID $victim_pid\) was terminated by signal 9/,
	'the server went through a crash-restart');
my $restored = $node->safe_psql('postgres', q{
SELECT coalesce(sum(count), 0) FROM connwatch.refused_connections
WHERE cause = 'role does not exist' AND application_name = 'crash_storm'});
cmp_ok($saved_before_kill, '>=', 100, "the storm was being saved ($saved_before_kill)");
cmp_ok($restored, '>=', $saved_before_kill,
	"after the crash-restart the ledger holds what was saved before it ($restored)");
is($restored, saved_storm_count(),
	'and exactly the last saved copy: nothing was counted after the crash');
$node->stop;

# The crash detector of scripts/test_major.sh reads every *.log: this one
# crashed on purpose.  Only that crash is allowed in it, checked here; the
# log is then renamed so that the detector does not count it.
my @crashes = grep { /terminated by signal|PANIC:/ } split /\n/, slurp_file($node->logfile);
is(scalar(@crashes), 1, 'the only crash in the log is the one caused here')
  or diag(join("\n", @crashes));
rename $node->logfile, $node->logfile . '.intended-crash' if @crashes == 1;

done_testing();
