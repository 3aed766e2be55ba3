#!/usr/bin/env bash
# scripts/test_packages.sh - build the Debian packages of pg_connwatch
# (debian/, pg_buildext) and prove that they work, as a user installs them.
#
#   bash scripts/test_packages.sh              # 15 on the host, 17 in its root
#   bash scripts/test_packages.sh --major 17   # one major (15, or 13/17/18 in its root)
#
# Run as root on Debian 12 from the top of a work tree.  First it checks
# that META.json, pg_connwatch.control and debian/changelog agree on the
# version and that debian/control is what "pg_buildext updatecontrol"
# writes from debian/control.in on this host.  Then, once per major -- on
# the host for 15, inside the major's Debian root file system for the others
# (scripts/pgroot.sh; the tree is copied in, as scripts/test.sh does) -- it:
#
#   1. installs what the package build needs when it is missing
#      (postgresql-server-dev-all, debhelper, dpkg-dev, fakeroot; apt-get
#      update first only when the install fails without it);
#   2. copies the tree to a scratch directory and regenerates debian/control
#      there for that one major (PG_SUPPORTED_VERSIONS=NN pg_buildext
#      updatecontrol; debian/pgversions stays 13+), so that only
#      postgresql-NN-connwatch is built;
#   3. builds it with dpkg-buildpackage -us -uc -b, with CONNWATCH_WERROR=1
#      in the environment, and checks that no compiler call had -Werror
#      (debian/rules keeps -Werror out of the package build);
#   4. installs it with dpkg -i and checks with dpkg -L that the control
#      files, the shared library and every SQL script are in the package;
#   5. starts a throwaway cluster as the postgres OS user on a private socket
#      directory and port (scripts/pgcluster.sh), runs CREATE EXTENSION
#      pg_connwatch, checks the version, SELECT count(*) > 0 FROM
#      connwatch.sessions, DROP EXTENSION, stops the cluster (on every way
#      out) and reads its log for a crash.
#
# The package stays installed afterwards: removing it would delete the
# extension files that other runs (scripts/test.sh) install with make install
# into the same directories.  The package's files are built from the same
# tree, so they replace those files with equivalent ones.
#
# It prints "ok N - ..." / "not ok N - ..." lines, per major a line
# "PostgreSQL NN: N passed, N failed (N s)", and last the closing line
# "N passed, N failed"; the exit status is non-zero when anything failed or
# nothing ran.  With the packages installed, a run of both majors takes well
# under a minute; every step has its own time limit.
#
# Environment:
#   CONNWATCH_PKG_PORT      first port to try for the clusters (default 55300)
#   CONNWATCH_KEEP_TMP=1    keep the scratch directories even when everything passed
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

MATRIX=(15 17)
HOST_MAJOR=15
BUILD_DEPS=(postgresql-server-dev-all debhelper dpkg-dev fakeroot)

# Time limits (seconds).
APT_TIMEOUT=900      # installing the build dependencies (first run only)
BUILD_TIMEOUT=300    # dpkg-buildpackage
SQL_TIMEOUT=60       # one psql call
MAJOR_TIMEOUT=1500   # one major as a whole (includes APT_TIMEOUT); timeout
                     # --foreground, so that Ctrl-C reaches every step

n=${CONNWATCH_PKG_FIRST:-1}
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

# check DESCRIPTION COMMAND...: one test, ok when COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# show_tail, free_port and CRASH_PATTERN come from scripts/lib.sh.
. "$root/scripts/lib.sh"

###########################################################################
# One major, on the machine (host or root) the script runs on:
#   test_packages.sh --inside MAJOR
# Numbers its tests from CONNWATCH_PKG_FIRST; its last line is a comment
# "# PostgreSQL NN: N passed, N failed".
###########################################################################
inside() {
	local major=$1
	local pgbin=/usr/lib/postgresql/$major/bin
	local pkg=postgresql-$major-connwatch
	local work="" cluster="" port="" completed=0 t0 status

	finish_inside() {
		local rc=$?
		trap - EXIT INT TERM
		if [ -n "$cluster" ]; then
			PGBIN="$pgbin" "$root/scripts/pgcluster.sh" stop "$cluster" >/dev/null 2>&1 || true
		fi
		if [ "$completed" != 1 ]; then
			not_ok "$major: the run stopped before the end (status $rc)"
		fi
		if [ -n "$work" ] && [ -d "$work" ]; then
			if [ "$failed" -eq 0 ] && [ "${CONNWATCH_KEEP_TMP:-0}" != 1 ]; then
				rm -rf "$work"
			else
				echo "# scratch directory kept: $work"
			fi
		fi
		echo "# PostgreSQL $major: $passed passed, $failed failed"
		[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && exit 0
		exit 1
	}
	trap finish_inside EXIT
	# Interrupted (Ctrl-C, or the whole run's time limit): stop the cluster
	# first.  The tee that shows this output may be gone by then: a write to
	# it must fail, not kill the script before it has stopped the cluster.
	trap '' PIPE
	trap 'exit 130' INT TERM

	# Stop here: finish_inside counts what is left as not run.
	give_up() {
		completed=1
		exit 1
	}

	if [ ! -x "$pgbin/pg_config" ] || [ ! -x "$pgbin/postgres" ]; then
		not_ok "$major: PostgreSQL $major is installed ($pgbin)"
		give_up
	fi
	echo "# $("$pgbin/pg_config" --version), $(. /etc/os-release && echo "$PRETTY_NAME")"

	#
	# 1. Build dependencies
	#
	t0=$SECONDS
	local missing=() p st
	for p in "${BUILD_DEPS[@]}"; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$st" = installed ] || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		local aptlog
		aptlog=$(mktemp)
		echo "# installing ${missing[*]}"
		apt_install() {
			DEBIAN_FRONTEND=noninteractive timeout -k 10 "$APT_TIMEOUT" \
				apt-get install -y -q --no-install-recommends \
				-o DPkg::Lock::Timeout=120 "${missing[@]}" >>"$aptlog" 2>&1
		}
		if ! apt_install; then
			echo "# apt-get install failed; apt-get update, then again"
			DEBIAN_FRONTEND=noninteractive timeout -k 10 "$APT_TIMEOUT" \
				apt-get update -q -o DPkg::Lock::Timeout=120 >>"$aptlog" 2>&1
			apt_install || show_tail "apt-get" "$aptlog" 30
		fi
		rm -f "$aptlog"
	fi
	missing=()
	for p in "${BUILD_DEPS[@]}"; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$st" = installed ] || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		not_ok "$major: build dependencies installed (missing: ${missing[*]})"
		give_up
	fi
	ok "$major: build dependencies installed: ${BUILD_DEPS[*]} ($((SECONDS - t0)) s)"

	#
	# 2. Scratch copy; debian/control for this one major
	#
	local version upstream arch src
	version=$(cd "$root" && dpkg-parsechangelog -S Version)
	upstream=${version%-*}
	# the extension's own version (the package is its release, 1.1 -> 1.1.0)
	local extversion
	extversion=$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" "$root/pg_connwatch.control")
	arch=$(dpkg --print-architecture)
	work=$(mktemp -d /tmp/pg_connwatch_pkg.XXXXXX)
	chmod 755 "$work" # the cluster below runs as postgres
	src=$work/pg-connwatch-$upstream
	mkdir -p "$src"
	# No build products, no leftovers of an in-tree package build.
	tar -C "$root" \
		--exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=./output_iso --exclude=./tmp_check --exclude=./log \
		--exclude=./regression.diffs --exclude=./regression.out \
		--exclude=./debian/.debhelper --exclude=./debian/files \
		--exclude='./debian/*.substvars' --exclude=./debian/debhelper-build-stamp \
		--exclude='./debian/postgresql-*-connwatch' --exclude=./debian/tmp \
		-cf - . | tar -C "$src" -xf -
	local packages
	if (cd "$src" && PG_SUPPORTED_VERSIONS=$major pg_buildext updatecontrol) >"$work/updatecontrol.log" 2>&1; then
		packages=$(sed -n 's/^Package: *//p' "$src/debian/control" | tr '\n' ' ')
	else
		show_tail "pg_buildext updatecontrol" "$work/updatecontrol.log"
		packages="(pg_buildext updatecontrol failed)"
	fi
	if [ "$packages" = "$pkg " ]; then
		ok "$major: pg_buildext updatecontrol with PG_SUPPORTED_VERSIONS=$major lists $pkg alone"
	else
		not_ok "$major: pg_buildext updatecontrol with PG_SUPPORTED_VERSIONS=$major lists $pkg alone (got: $packages)"
		give_up
	fi

	#
	# 3. dpkg-buildpackage
	#
	t0=$SECONDS
	local deb=$work/${pkg}_${version}_${arch}.deb
	(cd "$src" && CONNWATCH_WERROR=1 PG_SUPPORTED_VERSIONS=$major \
		timeout -k 10 "$BUILD_TIMEOUT" dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1
	status=$?
	if [ "$status" -eq 0 ] && [ -f "$deb" ]; then
		ok "$major: dpkg-buildpackage -us -uc -b built $(basename "$deb") ($((SECONDS - t0)) s)"
	else
		show_tail "dpkg-buildpackage" "$work/build.log" 60
		not_ok "$major: dpkg-buildpackage -us -uc -b built $(basename "$deb") (status $status)"
		give_up
	fi
	local f
	for f in "$work"/*.deb; do
		printf '#   %s  %s bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"
	done
	local others
	others=$(cd "$work" && ls -- *.deb | grep -vxF -e "$(basename "$deb")" \
		-e "${pkg}-dbgsym_${version}_${arch}.deb" | tr '\n' ' ')
	check "$major: no package for another major was built${others:+ (got: $others)}" \
		test -z "$others"

	# Every compiler call of the build, and none with -Werror (Debian's own
	# -Werror=format-security and PostgreSQL's -Werror=vla are not -Werror).
	local compiles werror
	compiles=$(grep -cE ' -c -o [^ ]+\.(o|bc) ' "$work/build.log")
	werror=$(grep -E ' -c -o [^ ]+\.(o|bc) ' "$work/build.log" | grep -cE -- '-Werror( |$)')
	check "$major: no -Werror in the package build although CONNWATCH_WERROR=1 was set ($compiles compiler calls, $werror with -Werror)" \
		test "$compiles" -gt 0 -a "$werror" -eq 0

	#
	# 4. dpkg -i, dpkg -L
	#
	t0=$SECONDS
	local try out
	for try in $(seq 1 24); do
		out=$(dpkg -i "$deb" 2>&1)
		status=$?
		# another dpkg or apt holds the lock: wait for it (2 minutes at most)
		if [ "$status" -ne 0 ] && grep -qiE 'lock' <<<"$out"; then
			sleep 5
			continue
		fi
		break
	done
	local installed
	installed=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
	if [ "$status" -eq 0 ] && [ "$installed" = "installed $version" ]; then
		ok "$major: dpkg -i $(basename "$deb") ($((SECONDS - t0)) s)"
	else
		echo "$out" | tail -n 30
		not_ok "$major: dpkg -i $(basename "$deb") (status $status, package state: ${installed:-none})"
		give_up
	fi
	echo "# Depends: $(dpkg-query -W -f='${Depends}' "$pkg")"

	local sharedir pkglibdir listing
	sharedir=$("$pgbin/pg_config" --sharedir)
	pkglibdir=$("$pgbin/pg_config" --pkglibdir)
	listing=$(dpkg -L "$pkg")
	local expected=("$sharedir/extension/pg_connwatch.control" "$pkglibdir/pg_connwatch.so")
	# the Prometheus query file and rules, with the package's docs
	for f in pg_connwatch_queries.yaml pg_connwatch_alerts.yml; do
		expected+=("/usr/share/doc/$pkg/prometheus/$f")
	done
	# the committed scripts, and the two the build makes from sql_src/ (the
	# Makefile's DATA_built: the install script of the extension's version and
	# its upgrade script from PREVIOUS_VERSION), which make clean may have
	# removed from the copy again
	local previous built
	previous=$(sed -n 's/^PREVIOUS_VERSION *= *//p' "$src/Makefile")
	built="pg_connwatch--$extversion.sql pg_connwatch--$previous--$extversion.sql"
	for f in "$src"/pg_connwatch--*.control "$src"/pg_connwatch--*.sql $built; do
		f=$(basename "$f")
		case " ${expected[*]} " in *" $sharedir/extension/$f "*) continue ;; esac
		expected+=("$sharedir/extension/$f")
	done
	for f in "${expected[@]}"; do
		if grep -qxF "$f" <<<"$listing" && [ -s "$f" ]; then
			ok "$major: dpkg -L $pkg lists $f"
		else
			not_ok "$major: dpkg -L $pkg lists $f (listed: $(grep -cxF "$f" <<<"$listing"), on disk: $([ -s "$f" ] && echo yes || echo no))"
		fi
	done

	#
	# 5. A throwaway cluster: CREATE EXTENSION, a view, DROP EXTENSION
	#
	t0=$SECONDS
	local next_port=${CONNWATCH_PKG_PORT:-55300} attempt dir
	for attempt in 1 2 3; do
		port=$(free_port "$next_port") || break
		next_port=$((port + 1))
		dir=$work/cluster$attempt
		if PGBIN="$pgbin" "$root/scripts/pgcluster.sh" start "$dir" "$port"; then
			cluster=$dir
			break
		fi
		show_tail "initdb log" "$dir/initdb.log" 20
		show_tail "server log" "$dir/server.log" 20
		PGBIN="$pgbin" "$root/scripts/pgcluster.sh" stop "$dir" >/dev/null 2>&1 || true
	done
	if [ -z "$cluster" ]; then
		not_ok "$major: throwaway cluster started"
		give_up
	fi
	ok "$major: throwaway cluster started on port $port, socket directory $cluster ($((SECONDS - t0)) s)"

	# psql SQL: prints the unaligned result, or the error, on one line.
	sql() {
		runuser -u postgres -- timeout -k 5 "$SQL_TIMEOUT" "$pgbin/psql" -X -q -A -t \
			-v ON_ERROR_STOP=1 -h "$cluster" -p "$port" -U postgres -d postgres -c "$1" 2>&1 |
			tr -s '\n' ' ' | sed 's/ *$//'
	}
	local res
	res=$(sql 'CREATE EXTENSION pg_connwatch')
	check "$major: CREATE EXTENSION pg_connwatch${res:+ ($res)}" test -z "$res"
	res=$(sql "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_connwatch'")
	check "$major: extension version is $extversion (got: $res)" test "$res" = "$extversion"
	res=$(sql 'SELECT count(*) > 0 FROM connwatch.sessions')
	check "$major: SELECT count(*) > 0 FROM connwatch.sessions is true (got: $res)" test "$res" = t
	res=$(sql "DROP EXTENSION pg_connwatch; SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = 'connwatch'")
	check "$major: DROP EXTENSION pg_connwatch removes schema connwatch (got: $res)" test "$res" = 0

	PGBIN="$pgbin" "$root/scripts/pgcluster.sh" stop "$cluster" >/dev/null 2>&1
	local crash
	crash=$(grep -nE "$CRASH_PATTERN" "$cluster/server.log" | head -n 5)
	[ -f "$cluster/data/postmaster.pid" ] && crash="${crash}still running after stop"
	cluster=""
	if [ -z "$crash" ]; then
		ok "$major: cluster stopped, its log shows no crash"
	else
		echo "$crash"
		not_ok "$major: cluster stopped, its log shows no crash"
	fi

	completed=1
	exit 0
}

###########################################################################
# The whole run
###########################################################################
if [ "${1:-}" = --inside ]; then
	[ -n "${2:-}" ] || { echo "usage: test_packages.sh --inside MAJOR" >&2; exit 2; }
	inside "$2"
fi

majors=("${MATRIX[@]}")
case "${1:-}" in
"") ;;
--major)
	[ -n "${2:-}" ] && [ $# -eq 2 ] || { echo "usage: test_packages.sh [--major NN]" >&2; exit 2; }
	majors=("$2")
	;;
*)
	echo "usage: test_packages.sh [--major NN]" >&2
	exit 2
	;;
esac
[ "$(id -u)" = 0 ] || { echo "test_packages.sh: run as root" >&2; exit 2; }

summaries=()
mounted_by_us=()
copies=()
logdir=$(mktemp -d /tmp/pg_connwatch_pkgtest.XXXXXX)

finish() {
	local rc=$? m
	trap - EXIT INT TERM
	for m in "${copies[@]}"; do
		rm -rf -- "$m"
	done
	# Take down only the mounts this run made (another run may use the root).
	for m in "${mounted_by_us[@]}"; do
		bash "$root/scripts/pgroot.sh" umount "$m" >/dev/null 2>&1 || true
	done
	echo
	for m in "${summaries[@]}"; do
		echo "$m"
	done
	echo "$passed passed, $failed failed"
	rm -rf "$logdir"
	if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ] || [ "$rc" -ne 0 ]; then
		exit 1
	fi
	exit 0
}
trap finish EXIT
trap 'echo "!!! interrupted"; failed=$((failed + 1)); exit 130' INT TERM

#
# The tree's own metadata
#
meta=$(perl -MJSON::PP -e '
	local $/; open my $fh, "<", "META.json" or die "META.json: $!\n";
	my $m = decode_json(<$fh>);
	for my $k (qw(name abstract version maintainer license provides meta-spec)) {
		die "META.json: no $k\n" unless defined $m->{$k};
	}
	my $p = $m->{provides}{pg_connwatch} or die "META.json: provides no pg_connwatch\n";
	print join(" ", $m->{version}, $p->{version}, $p->{file},
		$m->{"meta-spec"}{version}, $m->{license},
		$m->{prereqs}{runtime}{requires}{PostgreSQL}), "\n";
' 2>&1)
read -r meta_version meta_pversion meta_file meta_spec meta_license meta_pg <<<"$meta"
control_version=$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" pg_connwatch.control)
# The release is the extension's version as three numbers: 1.1 -> 1.1.0.
release_version=$control_version
case "$release_version" in *.*.*) ;; *) release_version=$release_version.0 ;; esac
deb_version=$(dpkg-parsechangelog -S Version 2>/dev/null)
deb_upstream=${deb_version%-*}
if [ "$meta_version" = "$release_version" ] && [ "$meta_pversion" = "$release_version" ] &&
	[ "$deb_upstream" = "$release_version" ] && [ "$meta_file" = "pg_connwatch--$control_version.sql" ] &&
	[ "$meta_spec" = 1.0.0 ] && [ "$meta_license" = postgresql ] &&
	[ "$meta_pg" = 13.0.0 ] && [ "$(grep -v '^#' debian/pgversions)" = "13+" ]; then
	ok "META.json, pg_connwatch.control and debian/changelog agree on $control_version ($release_version, $deb_version); PostgreSQL 13.0.0 and 13+"
else
	not_ok "META.json, pg_connwatch.control and debian/changelog agree (META.json: $meta; control: $control_version; changelog: $deb_version; pgversions: $(tr '\n' ' ' <debian/pgversions))"
fi

# META.json names the install script, which the build makes from sql_src/
if out=$(sh scripts/build_sql.sh check 2>&1); then
	ok "$meta_file, which META.json names, can be built: sql_src/manifest.txt is complete"
else
	echo "$out"
	not_ok "$meta_file, which META.json names, can be built: sql_src/manifest.txt is complete"
fi

# debian/control as "pg_buildext updatecontrol" writes it on this host: else
# a plain dpkg-buildpackage here stops in pg_buildext checkcontrol.
chk=$(mktemp -d /tmp/pg_connwatch_pkgchk.XXXXXX)
mkdir -p "$chk/debian"
cp debian/control debian/control.in debian/pgversions "$chk/debian/"
if out=$(cd "$chk" && env -u PG_SUPPORTED_VERSIONS pg_buildext updatecontrol 2>&1) &&
	diff -u debian/control "$chk/debian/control" >"$chk/diff" 2>&1; then
	ok "debian/control is up to date with debian/control.in for this host's majors ($(/usr/share/postgresql-common/supported-versions | tr '\n' ' ' | sed 's/ $//'))"
else
	echo "$out"
	cat "$chk/diff"
	not_ok "debian/control is up to date with debian/control.in for this host's majors (run: pg_buildext updatecontrol)"
fi
rm -rf "$chk"

#
# The majors
#
for major in "${majors[@]}"; do
	out=$logdir/pg$major.log
	start=$SECONDS
	echo "=================== PostgreSQL $major ==================="
	if [ "$major" = "$HOST_MAJOR" ]; then
		CONNWATCH_PKG_FIRST=$n timeout --foreground -k 30 "$MAJOR_TIMEOUT" \
			bash "$root/scripts/test_packages.sh" --inside "$major" 2>&1 | tee "$out"
		status=${PIPESTATUS[0]}
	elif ! major_root=$(bash "$root/scripts/pgroot.sh" ensure "$major"); then
		echo "not ok $n - $major: its root file system could not be built" | tee "$out"
		status=1
	else
		mountpoint -q "$major_root/proc" || mounted_by_us+=("$major")
		copy=$(mktemp -d "$major_root/tmp/pg_connwatch_pkgsrc.XXXXXX")
		copies+=("$copy")
		chmod 755 "$copy"
		tar -C "$root" --exclude=./.git --exclude='*.o' --exclude='*.so' \
			--exclude='*.bc' --exclude=./results --exclude=./output_iso \
			--exclude=./tmp_check --exclude=./log -cf - . |
			tar -C "$copy" -xf -
		env_args=(CONNWATCH_PKG_FIRST="$n")
		for v in CONNWATCH_PKG_PORT CONNWATCH_KEEP_TMP; do
			[ -n "${!v:-}" ] && env_args+=("$v=${!v}")
		done
		timeout --foreground -k 30 "$MAJOR_TIMEOUT" bash "$root/scripts/pgroot.sh" run "$major" \
			env "${env_args[@]}" bash "${copy#"$major_root"}/scripts/test_packages.sh" \
			--inside "$major" 2>&1 | tee "$out"
		status=${PIPESTATUS[0]}
		rm -rf -- "$copy"
	fi
	p=$(grep -cE '^ok [0-9]+ ' "$out")
	f=$(grep -cE '^not ok [0-9]+ ' "$out")
	n=$((n + p + f))
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok $n - $major: the run exited with status $status without a failed test"
		n=$((n + 1))
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	summaries+=("PostgreSQL $major: $p passed, $f failed ($((SECONDS - start)) s)")
done
