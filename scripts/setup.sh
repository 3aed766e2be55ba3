#!/usr/bin/env bash
# scripts/setup.sh - install what pg_connwatch needs to build and test on
# Debian 12.  Run as root.  Idempotent: apt is only called when a package is
# missing, so re-running it on a prepared machine costs a few dpkg-query calls.
set -euo pipefail

packages=(
	postgresql-15            # the server the extension runs in
	postgresql-server-dev-15 # PGXS, server headers, pg_regress, pg_isolation_regress, TAP modules
	postgresql-15-cron       # the scheduler the later layers build on
	libipc-run-perl          # needed by PostgreSQL::Test::Cluster
	libdbd-pg-perl           # the TAP tests hold hundreds of connections in one process
	libpq-dev
	libkrb5-dev              # libpq-be.h (the remember layer's hooks) includes gssapi.h
	libssl-dev               # ... and openssl/ssl.h
	locales                  # de_DE.UTF-8, for a server that speaks German (test/t/301)
	build-essential          # gcc, make
	sqlsmith                 # the fuzzing suite (test/t/202_fuzz.pl)
	debootstrap              # the root file systems of the other majors (scripts/pgroot.sh)
	python3-sqlalchemy       # diagnose() scenarios driven by real applications (test/t/401)
	python3-psycopg2
	prometheus               # promtool: the alert rules' unit tests, metrics() lint
	prometheus-postgres-exporter   # scraped with the shipped query file (test/t/402)
	python3-prometheus-client      # a strict OpenMetrics parser for metrics()
	pgxnclient               # installs the PGXN release zip (scripts/test_release.sh)
	unzip                    # reads the release zip
)

missing=()
for pkg in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: missing packages (${missing[*]}); run as root" >&2
		exit 1
	fi
	echo "setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	aptlog=$(mktemp)
	if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		rm -f "$aptlog"
		echo "setup.sh: apt-get failed" >&2
		exit 1
	fi
	rm -f "$aptlog"
fi

# A non-English locale for the server's messages: the refusal ledger must
# classify the same whatever language the server speaks.
if ! locale -a 2>/dev/null | grep -qix 'de_DE.utf8'; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: locale de_DE.UTF-8 missing; run as root" >&2
		exit 1
	fi
	localedef -i de_DE -f UTF-8 de_DE.UTF-8
fi

# The clusters run as the postgres OS user, which the server package creates.
if ! id postgres >/dev/null 2>&1; then
	echo "setup.sh: OS user postgres missing after install" >&2
	exit 1
fi
