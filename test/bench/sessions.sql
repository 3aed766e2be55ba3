-- Plain-SQL equivalent of connwatch.sessions, as the issue's target states
-- it: the raw pg_stat_activity view, no derived columns.
SELECT * FROM pg_stat_activity;
