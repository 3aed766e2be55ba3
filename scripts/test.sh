#!/usr/bin/env bash
# scripts/test.sh - every pg_connwatch test suite on every PostgreSQL major
# of the test matrix (the README's test command; .ci/run runs it).
#
#   bash scripts/test.sh              # every major of the matrix
#   bash scripts/test.sh --major 17   # one major
#
# Run as root on Debian 12 from the top of the work tree.  It installs what
# the host needs (scripts/setup.sh), then runs scripts/test_major.sh --
# build, pg_regress, isolation, TAP, crash detector -- once per major: 15 on
# the host, the others inside their Debian root file system, built or
# reused by scripts/pgroot.sh.  A major whose root cannot be built (no
# archive, say) counts as failed, never as skipped.
#
# Last, when the whole matrix runs, scripts/test_packages.sh builds the
# Debian packages (debian/, pg_buildext) for 15 and 17, installs them and
# uses them in a fresh cluster; scripts/test_release.sh checks META.json,
# builds the PGXN zip and installs and checks it with pgxnclient on a stock
# cluster; and scripts/test_prometheus.sh checks the Prometheus alerting
# rules and runs their unit tests.
#
# It prints a line per major, "PostgreSQL NN: N passed, N failed", one for
# the packages, one for the release, one for the rules, and last the closing line "N passed, N failed" over all of
# them; the exit status is
# non-zero when anything failed or nothing ran.  The roots' mounts are taken
# down on every way out.
#
# Environment: see scripts/test_major.sh (passed through to every major).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The matrix: the majors whose server and headers Debian's archive has (19
# from experimental, without pg_cron yet: its pg_cron tests count as
# skipped).  15 is the host's own.
MATRIX=(15 13 17 18 19)
HOST_MAJOR=15

majors=("${MATRIX[@]}")
run_packages=1
while [ $# -gt 0 ]; do
	case "$1" in
	--major)
		[ -n "${2:-}" ] || { echo "usage: test.sh [--major NN]" >&2; exit 2; }
		majors=("$2")
		run_packages=0
		shift 2
		;;
	*)
		echo "usage: test.sh [--major NN]" >&2
		exit 2
		;;
	esac
done

passed=0
failed=0
skipped=0
summaries=()
used_roots=()
logdir=$(mktemp -d /tmp/pg_connwatch_matrix.XXXXXX)

finish() {
	local rc=$? m
	trap - EXIT INT TERM
	for m in "${used_roots[@]}"; do
		bash "$root/scripts/pgroot.sh" umount "$m" >/dev/null 2>&1 || true
	done
	echo
	for m in "${summaries[@]}"; do
		echo "$m"
	done
	local line="$passed passed, $failed failed"
	[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
	echo "$line"
	if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ] || [ "$rc" -ne 0 ]; then
		exit 1
	fi
	rm -rf "$logdir"
	exit 0
}
trap finish EXIT
trap 'echo "!!! interrupted"; failed=$((failed + 1)); exit 130' INT TERM

# Add one run's closing line (the last "N passed, N failed" of its log) to
# the totals; a run that printed none failed as a whole.
#   count_major MAJOR LOG STATUS     (count_run LABEL LOG STATUS)
count_major() {
	count_run "PostgreSQL $1" "$2" "$3"
}
count_run() {
	local label=$1 out=$2 status=$3 line p f s
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [ -z "$line" ]; then
		echo "!!! $label: the suite printed no closing line (status $status)"
		p=0 f=1 s=0
	else
		p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
		s=$(sed -nE 's/.*, ([0-9]+) skipped.*/\1/p' <<<"$line")
		s=${s:-0}
		if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "!!! $label: the suite exited with status $status"
			f=1
		fi
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	summaries+=("$label: $p passed, $f failed$([ "$s" -gt 0 ] && echo ", $s skipped")")
	echo "=== $label: $p passed, $f failed"
}

if ! bash "$root/scripts/setup.sh"; then
	echo "!!! scripts/setup.sh failed"
	failed=$((failed + 1))
	exit 1
fi

for major in "${majors[@]}"; do
	out="$logdir/pg$major.log"
	echo "=================== PostgreSQL $major ==================="
	if [ "$major" = "$HOST_MAJOR" ]; then
		PG_CONFIG=/usr/lib/postgresql/$major/bin/pg_config \
			bash "$root/scripts/test_major.sh" 2>&1 | tee "$out"
		count_major "$major" "$out" "${PIPESTATUS[0]}"
		continue
	fi

	# The tree goes into the root; the suite runs there as the root's own.
	if ! major_root=$(bash "$root/scripts/pgroot.sh" ensure "$major"); then
		echo "!!! PostgreSQL $major: its root file system could not be built" | tee "$out"
		count_major "$major" "$out" 1
		continue
	fi
	used_roots+=("$major")
	inside=/tmp/pg_connwatch_src
	rm -rf "${major_root:?}$inside"
	mkdir -p "$major_root$inside"
	tar -C "$root" --exclude=./.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=./results --exclude=./output_iso \
		--exclude=./tmp_check --exclude=./log -cf - . |
		tar -C "$major_root$inside" -xf -
	env_args=(PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config")
	for v in CONNWATCH_TEST_PORT CONNWATCH_KEEP_TMP CONNWATCH_TEST_BUDGET \
		CONNWATCH_CHURN_SECONDS CONNWATCH_FUZZ_SECONDS CONNWATCH_FUZZ_SEED \
		CONNWATCH_TAP_JOBS CI; do
		[ -n "${!v:-}" ] && env_args+=("$v=${!v}")
	done
	bash "$root/scripts/pgroot.sh" run "$major" \
		env "${env_args[@]}" bash "$inside/scripts/test_major.sh" 2>&1 |
		tee "$out"
	count_major "$major" "$out" "${PIPESTATUS[0]}"
done

# The Debian packages, as a user installs them (15 on the host, 17 in its
# root).
if [ "$run_packages" = 1 ]; then
	out="$logdir/packages.log"
	echo "=================== Debian packages ==================="
	used_roots+=(17)
	bash "$root/scripts/test_packages.sh" 2>&1 | tee "$out"
	count_run "Debian packages" "$out" "${PIPESTATUS[0]}"
fi

# The PGXN release: META.json, make dist, pgxn install and pgxn check from
# the zip on a stock cluster (15, on the host).
if [ "$run_packages" = 1 ]; then
	out="$logdir/release.log"
	echo "=================== PGXN release ==================="
	bash "$root/scripts/test_release.sh" 2>&1 | tee "$out"
	count_run "PGXN release" "$out" "${PIPESTATUS[0]}"
fi

# The Prometheus alerting rules: promtool check rules and their unit tests
# (no server needed; the query file and metrics() are tested by test/t/402).
if [ "$run_packages" = 1 ]; then
	out="$logdir/prometheus.log"
	echo "=================== Prometheus rules ==================="
	bash "$root/scripts/test_prometheus.sh" 2>&1 | tee "$out"
	count_run "Prometheus rules" "$out" "${PIPESTATUS[0]}"
fi
