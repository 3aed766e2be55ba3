# ConnwatchTest - helpers shared by the TAP tests: sessions around
# PostgreSQL::Test::BackgroundPsql, and a hand-made protocol violation.
# Not a test itself (prove runs test/t/*.pl only).  Load it with
#
#   use FindBin;
#   use lib "$FindBin::Bin/lib";
#   use ConnwatchTest;

package ConnwatchTest;

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::UNIX;
our @EXPORT = qw(session send_sql wait_sql run_sql close_session protocol_violation
  wait_app_gone wait_in_state);

my $seq = 0;

# A background psql session on $node as $user (default: the bootstrap
# superuser) with application_name $app.  Errors do not end it.
sub session
{
	my ($node, $app, $user) = @_;
	local %ENV = %ENV;
	$ENV{PGAPPNAME} = $app;
	$ENV{PGUSER}    = $user if defined $user;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->set_query_timer_restart;
	my $row = $s->query_safe(
		q{SELECT pg_backend_pid() || '|' || backend_start
		  FROM pg_catalog.pg_stat_activity WHERE pid = pg_backend_pid()});
	my ($pid, $start) = split /\|/, $row;
	return { psql => $s, pid => $pid, start => $start, app => $app };
}

# Send SQL without waiting for its result.
sub send_sql
{
	my ($s, $sql) = @_;
	my $psql = $s->{psql};
	my $tag  = 'async_done_' . ++$seq;
	$s->{tag} = $tag;
	$psql->{stdout} = '';
	$psql->{stderr} = '';
	$psql->{timeout}->start;
	$psql->{stdin} .= "$sql\n;\n\\echo '$tag'\n\\warn '$tag'\n";
	eval { $psql->{run}->pump_nb; 1 };    # a dead psql shows in wait_sql
	return;
}

# Wait for what send_sql sent; returns (stdout, stderr).
sub wait_sql
{
	my ($s) = @_;
	my $psql = $s->{psql};
	my $tag  = $s->{tag};
	my $ended = 0;
	until (($psql->{stdout} =~ /$tag\r?\n/ && $psql->{stderr} =~ /$tag\r?\n/)
		  || $psql->{timeout}->is_expired)
	{
		# psql exits when its backend was terminated: report, do not die
		if (!eval { $psql->{run}->pump; 1 })
		{
			$ended = 1;
			last;
		}
	}
	die "timed out waiting for the result of an asynchronous statement"
	  if !$ended && $psql->{timeout}->is_expired;
	my ($out, $err) = ($psql->{stdout}, $psql->{stderr});
	$err .= "\n(psql exited)" if $ended;
	$out =~ s/\r?\n?$tag\r?\n//;
	$err =~ s/\r?\n?$tag\r?\n//;
	$psql->{stdout} = '';
	$psql->{stderr} = '';
	return ($out, $err);
}

# Send SQL and wait for it; returns (stdout, stderr).
sub run_sql
{
	my ($s, $sql) = @_;
	send_sql($s, $sql);
	return wait_sql($s);
}

# End a session whose backend may be gone already.
sub close_session
{
	my ($s) = @_;
	my $run = $s->{psql}{run};
	eval {
		$run->pump_nb;
		if ($run->pumpable)
		{
			$s->{psql}{stdin} .= "\\q\n";
			$run->finish;
		}
		else
		{
			$run->kill_kill;
		}
		1;
	} or eval { $run->kill_kill };
	return;
}

# Log in over the Unix socket by hand as $user with application_name $app,
# then send a message type the server does not know: the session ends in a
# protocol violation (08P01), as when two processes write to one connection.
# Returns the type of the server's answer ('E' for its error).
sub protocol_violation
{
	my ($node, $user, $app) = @_;
	my $sock = IO::Socket::UNIX->new(Peer => $node->host . '/.s.PGSQL.' . $node->port)
	  or die "socket: $!";
	my $params = "user\0$user\0database\0postgres\0application_name\0$app\0\0";
	print $sock pack('NN', 8 + length($params), 196608) . $params;
	# read up to ReadyForQuery
	for (;;)
	{
		my $header;
		read($sock, $header, 5) == 5 or die "no ReadyForQuery";
		my ($type, $len) = unpack('aN', $header);
		my $body;
		read($sock, $body, $len - 4) if $len > 4;
		last if $type eq 'Z';
	}
	print $sock 'Y' . pack('N', 4);
	my $reply = '';
	read($sock, $reply, 1);
	close $sock;
	return $reply;
}

# Wait until no session of application $app is left on $node; dies after
# poll_query_until's timeout.
sub wait_app_gone
{
	my ($node, $app) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$app'")
	  or die "sessions of $app did not end";
	return;
}

# Wait until at least $count sessions whose pg_stat_activity row matches
# $where (SQL) have been in their current state for $seconds, by the
# server's clock: what a fixed sleep past a threshold waited for, without
# its margin.  Dies after poll_query_until's timeout.
sub wait_in_state
{
	my ($node, $where, $count, $seconds) = @_;
	$node->poll_query_until('postgres', qq{
SELECT count(*) >= $count FROM pg_catalog.pg_stat_activity
WHERE ($where) AND state_change <= clock_timestamp() - interval '$seconds s'})
	  or die "no $count sessions ($where) in their state for $seconds s";
	return;
}

1;
