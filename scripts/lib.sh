# scripts/lib.sh - shell helpers shared by the test scripts
# (scripts/test_major.sh, scripts/test_packages.sh).  Sourced, not run.

show_file() {
	local title=$1 file=$2 lines=${3:-200}
	[ -s "$file" ] || return 0
	echo "----- $title ($file, first $lines lines)"
	head -n "$lines" "$file"
	echo "-----"
}

show_tail() {
	local title=$1 file=$2 lines=${3:-60}
	[ -s "$file" ] || return 0
	echo "----- $title ($file, last $lines lines)"
	tail -n "$lines" "$file"
	echo "-----"
}

# The first port from $1 on that nobody has bound at 127.0.0.1 (the cluster
# listens there too).
free_port() {
	local port=$1 last=$(($1 + 99))
	while [ "$port" -le "$last" ]; do
		if perl -MSocket -e '
			socket(my $s, PF_INET, SOCK_STREAM, 0) or exit 1;
			setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
			bind($s, sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) or exit 1;
			exit 0' "$port" 2>/dev/null; then
			echo "$port"
			return 0
		fi
		port=$((port + 1))
	done
	return 1
}

# The crash detector.  The patterns are matched right after the log line
# prefix's "[pid] application " and a severity tag, so that statement text
# quoted in a log (a fuzzed query, say) cannot trip it.
CRASH_PATTERN='\[[0-9]+\] ([^ ]* )?((LOG|WARNING|ERROR|FATAL): +.*(terminated by signal|was terminated|terminating any other active server processes|all server processes terminated; reinitializing)|PANIC: )'

# Print each log among the arguments that shows a crash, with the lines
# around its first one; false when none does.
crash_in_logs() {
	local f first found=1
	for f in "$@"; do
		[ -s "$f" ] || continue
		first=$(grep -nE "$CRASH_PATTERN" "$f" | head -n 1 | cut -d: -f1)
		[ -n "$first" ] || continue
		echo "!!! server crash in $f, line $first:"
		sed -n "$((first > 10 ? first - 10 : 1)),$((first + 10))p" "$f"
		echo "-----"
		found=0
	done
	return $found
}
