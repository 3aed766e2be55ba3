#!/usr/bin/env bash
# scripts/test_release.sh - the PGXN release of pg_connwatch, as a user
# takes it: META.json, "make dist", "pgxn install" from the zip.
#
#   bash scripts/test_release.sh
#
# Run as root on Debian 12 from the top of a work tree (PostgreSQL 15 and
# pgxnclient installed: scripts/setup.sh).  One test each:
#
#   1. META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/spec/):
#      the required keys, semantic versions for the release, every
#      extension it provides and every prerequisite, a license and release
#      status the spec knows, no key outside the spec but x_*, and the
#      version it releases is the control file's default_version in three
#      numbers (1.1 -> 1.1.0), as debian/changelog's is;
#   2. "make dist" builds pg_connwatch-<version>.zip with git archive, from
#      a clean clone of the last commit;
#   3. the zip holds one top directory pg_connwatch-<version>/ with the
#      LICENSE, META.json, the control file, every file META.json names
#      (the install script of provides, the docfile) and every script the
#      build generates, and no .git or .ci;
#   4. "pgxn install ./pg_connwatch-<version>.zip" builds and installs it for
#      15 (its own pg_config);
#   5. in a throwaway cluster started with nothing but a port and a socket
#      directory, CREATE EXTENSION pg_connwatch gives the version of the
#      control file, and connwatch.sessions answers;
#   6. "pgxn check" on the zip, against that stock cluster: the user's
#      "make installcheck" (doc/testing.md) passes there, with every regress
#      file of the zip run.
#
# The cluster is stopped on every way out and its log read for a crash.
# It prints "ok N - ..." / "not ok N - ..." lines, then
# "PGXN release: N passed, N failed" and last the closing line
# "N passed, N failed"; the exit status is non-zero when anything failed or
# nothing ran.
#
# Environment:
#   CONNWATCH_RELEASE_PORT  first port to try for the cluster (default 55400)
#   CONNWATCH_KEEP_TMP=1    keep the scratch directory
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$MAJOR/bin/pg_config
PGBIN=$($PG_CONFIG --bindir)
STEP_TIMEOUT=300

n=1
passed=0
failed=0
work=
cluster=

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
	trap - EXIT INT TERM
	if [ -n "$cluster" ]; then
		PGBIN=$PGBIN bash "$root/scripts/pgcluster.sh" stop "$cluster" || true
		if crash_in_logs "$cluster/server.log"; then
			not_ok "the stock cluster's log shows no crash"
		fi
	fi
	echo "PGXN release: $passed passed, $failed failed"
	echo "$passed passed, $failed failed"
	if [ -n "$work" ] && [ "$failed" -eq 0 ] && [ -z "${CONNWATCH_KEEP_TMP:-}" ]; then
		rm -rf "$work"
	elif [ -n "$work" ]; then
		echo "scratch directory kept: $work"
	fi
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && exit 0
	exit 1
}
trap finish EXIT
trap 'echo "!!! interrupted"; failed=$((failed + 1)); exit 130' INT TERM

work=$(mktemp -d /tmp/pg_connwatch_release.XXXXXX)
chmod 755 "$work"

#
# 1. META.json against the spec
#
control_version=$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" pg_connwatch.control)
deb_version=$(dpkg-parsechangelog -S Version 2>/dev/null)
if out=$(python3 - "$control_version" "${deb_version%-*}" <<'EOF' 2>&1
import json, re, sys

control_version, deb_upstream = sys.argv[1], sys.argv[2]
errors = []
with open("META.json") as f:
    meta = json.load(f)

# SemVer as the spec uses it: three numbers, an optional alphanumeric tail.
semver = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)([A-Za-z][0-9A-Za-z-]*)?$")
# A prerequisite's version: a version, or a range of operator-version terms.
prereq = re.compile(r"^\s*((>=|<=|==|!=|>|<)?\s*[0-9][0-9A-Za-z.-]*)(\s*,\s*(>=|<=|==|!=|>|<)?\s*[0-9][0-9A-Za-z.-]*)*\s*$")

known = {"name", "abstract", "description", "version", "maintainer", "license",
         "provides", "prereqs", "resources", "no_index", "generated_by",
         "release_status", "tags", "meta-spec"}
for key in ("name", "abstract", "maintainer", "version", "license", "provides", "meta-spec"):
    if key not in meta:
        errors.append("required key missing: " + key)
for key in meta:
    if key not in known and not key.startswith(("x_", "X_")):
        errors.append("key outside the spec: " + key)

if meta.get("meta-spec", {}).get("version") != "1.0.0":
    errors.append("meta-spec.version is not 1.0.0")
name = meta.get("name", "")
if len(name) < 2 or re.search(r"[/\\\s\x00-\x1f]", name):
    errors.append("name is not a valid distribution name: %r" % name)
if not semver.match(meta.get("version", "")):
    errors.append("version is not a semantic version: %r" % meta.get("version"))

expected = control_version if control_version.count(".") == 2 else control_version + ".0"
if meta.get("version") != expected:
    errors.append("version %r is not the control file's %r as %r" % (meta.get("version"), control_version, expected))
if deb_upstream != expected:
    errors.append("debian/changelog's upstream version %r is not %r" % (deb_upstream, expected))

maint = meta.get("maintainer")
if not (isinstance(maint, str) or (isinstance(maint, list) and maint and all(isinstance(m, str) for m in maint))):
    errors.append("maintainer is neither a string nor a list of strings")

licenses = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
            "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
            "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
            "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
            "restricted", "unrestricted", "unknown"}
lic = meta.get("license")
if isinstance(lic, str):
    if lic not in licenses:
        errors.append("license %r is not one the spec names" % lic)
elif not isinstance(lic, (list, dict)):
    errors.append("license is neither a string, a list nor a map")

provides = meta.get("provides", {})
if not isinstance(provides, dict) or not provides:
    errors.append("provides is not a non-empty map")
else:
    for ext, p in provides.items():
        if "file" not in p or "version" not in p:
            errors.append("provides.%s lacks file or version" % ext)
        if not semver.match(p.get("version", "")):
            errors.append("provides.%s.version is not a semantic version" % ext)
        for k in p:
            if k not in ("file", "version", "abstract", "docfile") and not k.startswith(("x_", "X_")):
                errors.append("provides.%s has a key outside the spec: %s" % (ext, k))
        # the files must be in the release: the zip test checks that
        print("FILE " + p.get("file", ""))
        if "docfile" in p:
            print("FILE " + p["docfile"])

for phase, rels in meta.get("prereqs", {}).items():
    if phase not in ("configure", "build", "test", "runtime", "develop"):
        errors.append("prereqs has an unknown phase: " + phase)
        continue
    for rel, mods in rels.items():
        if rel not in ("requires", "recommends", "suggests", "conflicts"):
            errors.append("prereqs.%s has an unknown relationship: %s" % (phase, rel))
            continue
        for mod, ver in mods.items():
            if not (ver == 0 or (isinstance(ver, str) and prereq.match(ver))):
                errors.append("prereqs.%s.%s.%s: %r is not a version" % (phase, rel, mod, ver))

if meta.get("release_status", "stable") not in ("stable", "testing", "unstable"):
    errors.append("release_status is not stable, testing or unstable")
for k in meta.get("resources", {}):
    if k not in ("homepage", "bugtracker", "repository") and not k.startswith(("x_", "X_")):
        errors.append("resources has a key outside the spec: " + k)
for t in meta.get("tags", []):
    if not isinstance(t, str) or not t or len(t) > 255:
        errors.append("tag %r is not a string of 1 to 255 characters" % t)
for d in meta.get("no_index", {}).get("directory", []):
    print("DIR " + d)

for e in errors:
    print("ERROR " + e)
sys.exit(1 if errors else 0)
EOF
); then
	ok "META.json follows the PGXN Meta Spec 1.0.0 and releases $(grep -m1 -o '"version": "[^"]*"' META.json | cut -d'"' -f4) (control: $control_version, Debian: $deb_version)"
else
	not_ok "META.json follows the PGXN Meta Spec 1.0.0: $(grep '^ERROR\|Error\|error' <<<"$out" | tr '\n' ';')"
fi
meta_files=$(sed -n 's/^FILE //p' <<<"$out")
release=$(perl -MJSON::PP -e 'local $/; print decode_json(<STDIN>)->{version}' <META.json)
zipname=pg_connwatch-$release.zip

#
# 2. make dist, from a clean clone of the last commit
#
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1 &&
	git clone -q "$root" "$work/clone" >"$work/clone.log" 2>&1 &&
	timeout "$STEP_TIMEOUT" make -C "$work/clone" -s dist PG_CONFIG=$PG_CONFIG >"$work/dist.log" 2>&1 &&
	[ -f "$work/clone/$zipname" ]; then
	ok "make dist builds $zipname from a clean clone"
	cp "$work/clone/$zipname" "$work/"
else
	not_ok "make dist builds $zipname from a clean clone"
	show_file "clone/dist log" "$work/clone.log"
	show_file "make dist" "$work/dist.log"
	exit 1
fi

#
# 3. what the zip holds
#
listing=$(unzip -Z1 "$work/$zipname" 2>&1)
missing=()
built=$(make -s -C "$work/clone" --no-print-directory PG_CONFIG=$PG_CONFIG -f Makefile -f - print-built <<<'print-built: ; @echo $(DATA_built)' 2>/dev/null)
for f in LICENSE META.json pg_connwatch.control Makefile $meta_files $built; do
	grep -qxF "pg_connwatch-$release/$f" <<<"$listing" || missing+=("$f")
done
strays=$(grep -v "^pg_connwatch-$release/" <<<"$listing"; grep -E "^pg_connwatch-$release/(\.git/|\.ci/)" <<<"$listing")
if [ ${#missing[@]} -eq 0 ] && [ -z "$strays" ]; then
	ok "the zip has one top directory pg_connwatch-$release/ with LICENSE, META.json, the control file, the files META.json names and the built scripts ($built); no .git, no .ci ($(wc -l <<<"$listing") entries)"
else
	not_ok "the zip holds what a release needs (missing: ${missing[*]:-none}; outside the top directory or private: ${strays:-none})"
fi

#
# 4. pgxn install from the zip
#
if (cd "$work" && timeout "$STEP_TIMEOUT" pgxn install --pg_config "$PG_CONFIG" "./$zipname") >"$work/pgxn_install.log" 2>&1; then
	ok "pgxn install ./$zipname builds and installs it for $MAJOR"
else
	not_ok "pgxn install ./$zipname builds and installs it for $MAJOR"
	show_tail "pgxn install" "$work/pgxn_install.log"
	exit 1
fi

#
# 5. CREATE EXTENSION in a stock cluster
#
port=$(free_port "${CONNWATCH_RELEASE_PORT:-55400}") || { not_ok "a free port for the cluster"; exit 1; }
cluster=$work/cluster
mkdir -p "$cluster"
chown postgres: "$cluster"
if runuser -u postgres -- "$PGBIN/initdb" -D "$cluster/data" -U postgres --auth=trust \
		--no-sync >"$cluster/initdb.log" 2>&1 &&
	printf "port = %s\nunix_socket_directories = '%s'\n" "$port" "$cluster" >>"$cluster/data/postgresql.conf" &&
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 60 start >/dev/null 2>&1; then
	:
else
	not_ok "a stock cluster starts (initdb, a port and a socket directory, nothing else)"
	show_file "initdb" "$cluster/initdb.log"
	show_tail "server log" "$cluster/server.log"
	exit 1
fi
psql_stock() {
	timeout 60 runuser -u postgres -- "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$cluster" -p "$port" -d postgres "$@"
}
got=$(psql_stock -c 'CREATE EXTENSION pg_connwatch' \
	-c "SELECT extversion FROM pg_extension WHERE extname = 'pg_connwatch'" \
	-c 'SELECT count(*) > 0 FROM connwatch.sessions' 2>&1)
if [ "$got" = "$control_version"$'\n'"t" ]; then
	ok "CREATE EXTENSION pg_connwatch in a stock cluster gives version $control_version, and connwatch.sessions answers"
else
	not_ok "CREATE EXTENSION pg_connwatch in a stock cluster gives version $control_version (got: $got)"
fi
psql_stock -c 'DROP EXTENSION pg_connwatch' >/dev/null 2>&1

#
# 6. pgxn check: the user's make installcheck against that cluster
#
chown -R postgres "$work"
# every regress file of the release must have run and passed
n_sql=$(grep -c "^pg_connwatch-$release/sql/.*\.sql$" <<<"$listing")
if (cd "$work" && timeout "$STEP_TIMEOUT" runuser -u postgres -- env PGHOST="$cluster" PGPORT="$port" PGUSER=postgres \
		pgxn check --pg_config "$PG_CONFIG" "./$zipname") >"$work/pgxn_check.log" 2>&1 &&
	[ "$n_sql" -gt 0 ] && grep -qE "All $n_sql tests passed" "$work/pgxn_check.log"; then
	ok "pgxn check ./$zipname (make installcheck) passes against the stock cluster: all $n_sql regress files ran and passed"
else
	not_ok "pgxn check ./$zipname (make installcheck) passes against the stock cluster"
	show_tail "pgxn check" "$work/pgxn_check.log" 80
fi
