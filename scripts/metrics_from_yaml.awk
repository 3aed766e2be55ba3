# scripts/metrics_from_yaml.awk - the queries of
# prometheus/pg_connwatch_queries.yaml as the CTEs of connwatch.metrics().
#
#   awk -f scripts/metrics_from_yaml.awk prometheus/pg_connwatch_queries.yaml
#
# scripts/build_sql.sh runs it where sql_src/metrics/metrics.function.sql
# says "--@ metrics from prometheus/pg_connwatch_queries.yaml", so that the
# exporter's query file and metrics() run the same queries, written once.
# It prints, for each query of the file, in its order:
#
#   <query name> AS (
#       <the query, as indented in the file>
#   ),
#
# then samples(metric, labels, value), one SELECT per GAUGE or COUNTER
# column (the metric <query name>_<column>, its LABEL columns as a jsonb
# object), and meta(metric, type, help) with each metric's description,
# all of them ending in "),".
#
# It reads the file's own shape, not YAML at large: a query is a line
# "<name>:" at the left margin, its text a block "  query: |" indented four
# spaces, its columns "    - <column>:" each with "usage:" and a
# double-quoted "description:" eight spaces in.  Anything else it does not
# know, and a file without a metric, stops it with status 1.

function fail(msg) {
	printf "metrics_from_yaml.awk: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
	failed = 1
	exit 1
}

# a YAML double-quoted scalar (only \" and \\ escapes) as an SQL literal
function sql_literal(s,    out, c) {
	out = ""
	while (s != "") {
		c = substr(s, 1, 1)
		s = substr(s, 2)
		if (c == "\\") {
			c = substr(s, 1, 1)
			s = substr(s, 2)
			if (c != "\"" && c != "\\")
				fail("escape \\" c " in a description")
		}
		out = out (c == "'" ? "''" : c)
	}
	return "'" out "'"
}

BEGIN { nq = 0 }

in_query && /^    / { text[nq] = text[nq] $0 "\n"; next }
in_query && /^[ \t]*$/ { text[nq] = text[nq] "\n"; next }
{ in_query = 0 }

/^#/ || /^[ \t]*$/ { next }

/^pg_connwatch[a-z0-9_]*:[ \t]*$/ {
	name[++nq] = substr($0, 1, index($0, ":") - 1)
	ncol[nq] = 0
	next
}
nq == 0 { fail("text before the first query") }

/^  query: \|[ \t]*$/ {
	if (text[nq] != "") fail(name[nq] " has two queries")
	in_query = 1
	next
}
/^  master: true[ \t]*$/ || /^  metrics:[ \t]*$/ { next }

/^    - [a-z0-9_]+:[ \t]*$/ {
	sub(/^    - /, "")
	sub(/:[ \t]*$/, "")
	col[nq, ++ncol[nq]] = $0
	next
}
/^        usage: "(LABEL|GAUGE|COUNTER)"[ \t]*$/ {
	if (ncol[nq] == 0) fail("usage before a column")
	u = $0
	sub(/^        usage: "/, "", u)
	sub(/".*/, "", u)
	usage[nq, ncol[nq]] = u
	next
}
/^        description: ".*"[ \t]*$/ {
	if (ncol[nq] == 0) fail("description before a column")
	d = $0
	sub(/^        description: "/, "", d)
	sub(/"[ \t]*$/, "", d)
	help[nq, ncol[nq]] = d
	next
}
{ fail("a line this script does not know: " $0) }

END {
	if (failed) exit 1
	nmetric = 0
	for (q = 1; q <= nq; q++) {
		t = text[q]
		sub(/\n+$/, "\n", t)
		if (t == "") { FNR = 0; fail(name[q] " has no query") }
		printf "%s AS (\n%s),\n", name[q], t
		labels = ""
		for (c = 1; c <= ncol[q]; c++) {
			if (usage[q, c] == "")
				{ FNR = 0; fail(name[q] "." col[q, c] " has no usage") }
			if (usage[q, c] == "LABEL")
				labels = labels (labels == "" ? "" : ", ") "'" col[q, c] "', q." col[q, c]
		}
		labels = labels == "" ? "'{}'::jsonb" : "pg_catalog.jsonb_build_object(" labels ")"
		for (c = 1; c <= ncol[q]; c++) {
			if (usage[q, c] == "LABEL")
				continue
			m = name[q] "_" col[q, c]
			# OpenMetrics: a counter's family is its sample's name less _total
			if (usage[q, c] == "COUNTER" && m !~ /_total$/)
				{ FNR = 0; fail("counter " m " does not end in _total") }
			if (help[q, c] == "")
				{ FNR = 0; fail(m " has no description") }
			nmetric++
			sample[nmetric] = "SELECT '" m "', " labels ", q." col[q, c] "::numeric FROM " name[q] " AS q"
			meta[nmetric] = "('" m "', '" tolower(usage[q, c]) "',\n         " sql_literal(help[q, c]) ")"
		}
	}
	if (nmetric == 0) { FNR = 0; fail("no GAUGE or COUNTER column") }
	print "samples(metric, labels, value) AS ("
	for (i = 1; i <= nmetric; i++)
		printf "    %s\n%s", sample[i], i < nmetric ? "    UNION ALL\n" : ""
	print "),"
	print "meta(metric, type, help) AS ("
	print "    VALUES"
	for (i = 1; i <= nmetric; i++)
		printf "        %s%s\n", meta[i], i < nmetric ? "," : ""
	print "),"
}
