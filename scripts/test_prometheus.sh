#!/usr/bin/env bash
# scripts/test_prometheus.sh - check pg_connwatch's Prometheus alerting rules
# (prometheus/pg_connwatch_alerts.yml) with promtool.
#
#   bash scripts/test_prometheus.sh
#
# Run from anywhere, as any user; needs promtool (Debian package prometheus,
# which scripts/setup.sh installs).  It checks, one test each:
#
#   1. promtool check rules accepts the rules file;
#   2. promtool test rules passes prometheus/pg_connwatch_alerts_test.yml;
#   3. per alert, the unit tests have a case where it fires and one where
#      it stays silent (exp_alerts: []);
#   4. every pg_connwatch_* metric the rules use is one that
#      prometheus/pg_connwatch_queries.yaml defines (<query>_<column>).
#
# The exporter and connwatch.metrics() themselves are tested against a real
# cluster by test/t/402_metrics_exporter.pl.
#
# It prints "ok N - ..." / "not ok N - ..." lines, then
# "Prometheus rules: N passed, N failed" and last the closing line
# "N passed, N failed" (which scripts/test.sh's count_run reads); the exit
# status is non-zero when anything failed or nothing ran.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$root/prometheus
rules=$dir/pg_connwatch_alerts.yml
tests=$dir/pg_connwatch_alerts_test.yml
queries=$dir/pg_connwatch_queries.yaml
PROMTOOL=${PROMTOOL:-promtool}
TIMEOUT=120

n=1
passed=0
failed=0

ok() {
	echo "ok $n - $*"
	n=$((n + 1))
	passed=$((passed + 1))
}
not_ok() {
	echo "not ok $n - $*"
	n=$((n + 1))
	failed=$((failed + 1))
}

finish() {
	trap - EXIT
	echo "Prometheus rules: $passed passed, $failed failed"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && exit 0
	exit 1
}
trap finish EXIT

if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
	not_ok "promtool is installed (apt-get install prometheus)"
	exit 1
fi
echo "# $("$PROMTOOL" --version 2>&1 | head -n 1)"

out=$(cd "$dir" && timeout -k 5 "$TIMEOUT" "$PROMTOOL" check rules "$rules" 2>&1)
status=$?
nrules=$(sed -nE 's/.*SUCCESS: ([0-9]+) rules found.*/\1/p' <<<"$out")
if [ "$status" -eq 0 ]; then
	ok "promtool check rules $(basename "$rules") ($nrules rules)"
else
	sed 's/^/# /' <<<"$out"
	not_ok "promtool check rules $(basename "$rules") (status $status)"
fi

# promtool resolves rule_files relative to the test file.
out=$(cd "$dir" && timeout -k 5 "$TIMEOUT" "$PROMTOOL" test rules "$tests" 2>&1)
status=$?
if [ "$status" -eq 0 ]; then
	ok "promtool test rules $(basename "$tests")"
else
	sed 's/^/# /' <<<"$out"
	not_ok "promtool test rules $(basename "$tests") (status $status)"
fi

# Each alert: a case that fires and a case that stays silent.
while IFS='|' read -r alert fires silent; do
	if [ "$fires" -gt 0 ] && [ "$silent" -gt 0 ]; then
		ok "$alert: tested firing ($fires) and silent ($silent)"
	else
		not_ok "$alert: tested firing ($fires) and silent ($silent)"
	fi
done < <(perl -e '
	my ($rules, $tests) = @ARGV;
	open my $r, "<", $rules or die "$rules: $!\n";
	my @alerts = map { /^\s*-\s*alert:\s*(\S+)/ ? $1 : () } <$r>;
	open my $t, "<", $tests or die "$tests: $!\n";
	my (%fires, %silent, $cur);
	while (<$t>) {
		if (/^\s*alertname:\s*(\S+)/) { $cur = $1; next }
		next unless defined $cur;
		if (/^\s*exp_alerts:\s*\[\]\s*$/) { $silent{$cur}++; undef $cur }
		elsif (/^\s*exp_alerts:\s*$/) { $fires{$cur}++; undef $cur }
	}
	die "no alerts in $rules\n" unless @alerts;
	print join("|", $_, $fires{$_} // 0, $silent{$_} // 0), "\n" for @alerts;
' "$rules" "$tests" 2>&1)

# The metrics the rules use exist in the query file.
defined=$(perl -ne '
	if (/^(pg_connwatch\w*):\s*$/) { $q = $1; next }
	if (/^\s+-\s+(\w+):\s*$/) { $c = $1; next }
	if (/^\s+usage:\s*"?(GAUGE|COUNTER)"?/ && $q && $c) { print "${q}_$c\n" }
' "$queries" | sort -u)
used=$(grep -v '^\s*#' "$rules" | grep -oE 'pg_connwatch_[a-z_]+' | sort -u)
missing=$(comm -23 <(echo "$used") <(echo "$defined") | tr '\n' ' ')
if [ -n "$defined" ] && [ -n "$used" ] && [ -z "$missing" ]; then
	ok "the rules use only metrics of $(basename "$queries") ($(wc -w <<<"$used") of $(wc -w <<<"$defined"))"
else
	not_ok "the rules use only metrics of $(basename "$queries") (not defined: ${missing:-none}; defined: $(wc -w <<<"$defined"))"
fi
