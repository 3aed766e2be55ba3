#!/bin/sh
# scripts/check_sql_sources.sh - the SQL sources (sql_src/) are complete and
# nothing built from them is committed.  scripts/test_major.sh runs it
# first, in the work tree; run it by hand from anywhere:
#
#   sh scripts/check_sql_sources.sh
#
# Prints one "ok N - ..." or "not ok N - ..." line per check, and exits 1
# when one failed:
#   1. sql_src/manifest.txt lists every sql_src/**/*.sql exactly once and
#      nothing else (scripts/build_sql.sh check);
#   2. ... and that check fails on a copy with a file the manifest misses,
#      and on one whose manifest lists a file twice;
#   3. every object a source file creates has its COMMENT ON in that file;
#   4. the install and upgrade scripts of the version in development (the
#      Makefile's DATA_built) are not in git, where a stale copy would hide
#      what the sources say (skipped without .git, as in a tarball).
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
n=0
bad=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); bad=1; echo "not ok $n - $1"; }

# 1
if out=$(sh scripts/build_sql.sh check 2>&1); then
	ok "sql_src/manifest.txt lists every source file once"
else
	printf '%s\n' "$out" | sed 's/^/# /'
	not_ok "sql_src/manifest.txt lists every source file once"
fi

# 2: the check above can fail
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cw_sqlsrc.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
cp -R scripts sql_src "$tmp/" && : >"$tmp/sql_src/act/unlisted.function.sql"
if sh "$tmp/scripts/build_sql.sh" check >/dev/null 2>&1; then
	not_ok "build_sql.sh check refuses a source file the manifest does not list"
else
	ok "build_sql.sh check refuses a source file the manifest does not list"
fi
rm "$tmp/sql_src/act/unlisted.function.sql"
sed -n '/^common\/connwatch.schema.sql/p' sql_src/manifest.txt >>"$tmp/sql_src/manifest.txt"
if sh "$tmp/scripts/build_sql.sh" check >/dev/null 2>&1; then
	not_ok "build_sql.sh check refuses a manifest that lists a file twice"
else
	ok "build_sql.sh check refuses a manifest that lists a file twice"
fi

# 3: CREATE [OR REPLACE] kind connwatch.name needs COMMENT ON kind connwatch.name
missing=$(find sql_src -name '*.sql' | LC_ALL=C sort | while read -r f; do
	awk -v f="$f" '
		{ line = toupper($0) }
		match(line, /^CREATE (OR REPLACE )?(FUNCTION|VIEW|TABLE|TYPE|SCHEMA) +(CONNWATCH\.)?[A-Z0-9_]+/) {
			s = substr(line, RSTART, RLENGTH)
			sub(/^CREATE (OR REPLACE )?/, "", s)
			sub(/ +/, " ", s)
			made[s] = 1
		}
		match(line, /^COMMENT ON (FUNCTION|VIEW|TABLE|TYPE|SCHEMA) +(CONNWATCH\.)?[A-Z0-9_]+/) {
			s = substr(line, RSTART, RLENGTH)
			sub(/^COMMENT ON /, "", s)
			sub(/ +/, " ", s)
			commented[s] = 1
		}
		END { for (s in made) if (!(s in commented)) print f ": " tolower(s) }
	' "$f"
done)
if [ -z "$missing" ]; then
	ok "every object created under sql_src/ has its COMMENT ON in the same file"
else
	printf '%s\n' "$missing" | sed 's/^/# no COMMENT ON: /'
	not_ok "every object created under sql_src/ has its COMMENT ON in the same file"
fi

# 4, 5
extversion=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" pg_connwatch.control)
previous=$(sed -n 's/^PREVIOUS_VERSION *= *//p' Makefile)
built="pg_connwatch--$extversion.sql pg_connwatch--$previous--$extversion.sql"
if [ -z "$extversion" ] || [ -z "$previous" ]; then
	not_ok "the version in development and the one before it are known (control: '$extversion', Makefile PREVIOUS_VERSION: '$previous')"
elif ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "ok $((n + 1)) - # SKIP no git work tree: cannot tell what is committed"
	n=$((n + 1))
else
	committed=$(git ls-files -- $built)
	if [ -z "$committed" ]; then
		ok "the built scripts ($built) are not committed"
	else
		not_ok "the built scripts are not committed (committed: $(echo $committed))"
	fi
fi

exit $bad
