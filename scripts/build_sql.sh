#!/bin/sh
# scripts/build_sql.sh - pg_connwatch's install or upgrade script, put
# together from the per-object sources under sql_src/ in the order of
# sql_src/manifest.txt.  The Makefile runs it; so can you:
#
#   sh scripts/build_sql.sh install 1.1 >pg_connwatch--1.1.sql
#   sh scripts/build_sql.sh upgrade 1.0.1 1.1 >pg_connwatch--1.0.1--1.1.sql
#   sh scripts/build_sql.sh check       # the manifest only
#
# A script is a first line that names it, then each file it runs, after a
# blank line, with @VERSION@ replaced by the version it installs, and a
# line "--@ metrics from FILE" replaced by what scripts/metrics_from_yaml.awk
# makes of FILE (connwatch.metrics()'s queries, from the exporter's file).  The
# install script runs every file of the manifest but the "upgrade" ones;
# the upgrade script to TO runs the files introduced in TO (SINCE = TO),
# those marked +TO (changed in TO) and the "*" ones, but not the "install"
# ones.
#
# Before it writes anything it checks the manifest: every *.sql file under
# sql_src/ is listed exactly once, every listed file exists, every line is
# well formed.  Otherwise it says what is wrong and exits with status 1.
#
# POSIX sh, find, sort and awk: nothing a PGXS build does not need already.
set -eu

usage() {
	echo "usage: build_sql.sh install VERSION | upgrade FROM TO | check" >&2
	exit 2
}

top=$(cd "$(dirname "$0")/.." && pwd)
src=$top/sql_src
manifest=$src/manifest.txt
[ -f "$manifest" ] || { echo "build_sql.sh: $manifest not found" >&2; exit 1; }

mode=${1:-}
case "$mode" in
install) [ $# -eq 2 ] || usage; from=; to=$2; name="pg_connwatch--$to.sql" ;;
upgrade) [ $# -eq 3 ] || usage; from=$2; to=$3; name="pg_connwatch--$from--$to.sql" ;;
check) [ $# -eq 1 ] || usage; from=; to=; name= ;;
*) usage ;;
esac

LC_ALL=C
export LC_ALL

# The source files on disk, relative to sql_src/, one a line.
files=$(cd "$src" && find . -type f -name '*.sql' | sed 's|^\./||' | sort)

printf '%s\n' "$files" | awk -v mode="$mode" -v to="$to" -v name="$name" -v src="$src" -v top="$top" \
	-v manifest="$manifest" '
	function fail(msg) { print "build_sql.sh: " msg > "/dev/stderr"; bad = 1 }
	# the CTEs of connwatch.metrics(), from the exporter query file YAML
	function metrics(yaml,    cmd, l, st) {
		cmd = "awk -f \"" top "/scripts/metrics_from_yaml.awk\" \"" top "/" yaml "\""
		while ((st = (cmd | getline l)) > 0)
			print l
		if (st < 0 || close(cmd) != 0) {
			fail("scripts/metrics_from_yaml.awk " yaml " failed")
			exit 1
		}
	}
	# the files on disk (standard input)
	NR == FNR { if ($0 != "") on_disk[$0] = 1; next }
	/^[ \t]*(#|$)/ { next }
	{
		where = "sql_src/manifest.txt:" FNR ": "
		file = $1; since = $2; only = ""; again = " "
		if (NF < 2) { fail(where "no version after " file); next }
		if (since !~ /^([0-9]+(\.[0-9]+)*|\*)$/)
			fail(where "version \"" since "\" is neither a version nor *")
		for (i = 3; i <= NF; i++) {
			if ($i == "install" || $i == "upgrade") {
				if (only != "") fail(where "both install and upgrade")
				only = $i
			} else if ($i ~ /^\+[0-9]+(\.[0-9]+)*$/)
				again = again substr($i, 2) " "
			else
				fail(where "unknown field \"" $i "\"")
		}
		if (since == "*" && only != "upgrade")
			fail(where "* is for upgrade-only files")
		if (file in listed)
			fail(where file " is listed twice (first on line " listed[file] ")")
		listed[file] = FNR
		if (!(file in on_disk))
			fail(where file " does not exist under sql_src/")
		if (mode == "install")
			take = only != "upgrade"
		else if (mode == "upgrade")
			take = only != "install" && \
				(since == to || since == "*" || index(again, " " to " ") > 0)
		else
			take = 0
		if (take) order[++n] = file
	}
	END {
		for (f in on_disk)
			if (!(f in listed))
				fail("sql_src/" f " is not in sql_src/manifest.txt")
		if (bad) exit 1
		if (mode == "check") exit 0
		if (n == 0) { fail("no file to put in " name); exit 1 }
		print "/* " name " */"
		for (i = 1; i <= n; i++) {
			print ""
			path = src "/" order[i]
			while ((status = (getline line < path)) > 0) {
				if (line ~ /^--@ metrics from [^ ]+$/) {
					metrics(substr(line, 18))
					continue
				}
				gsub(/@VERSION@/, to, line)
				print line
			}
			if (status < 0) { fail("cannot read " path); exit 1 }
			close(path)
		}
	}
' - "$manifest"
