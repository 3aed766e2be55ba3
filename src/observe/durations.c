/*-------------------------------------------------------------------------
 *
 * durations.c
 *		Ages and durations in microseconds.
 *
 * A rule compares the age of a state or a transaction with an interval the
 * caller gave; both are reduced to microseconds here, the interval the way
 * interval comparison itself reduces it, so that a rule and a WHERE clause
 * over pg_stat_activity agree on every boundary.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int128.h"

#include "observe/durations.h"

/* now - since; 0 when since is unset */
int64
cw_age_usecs(TimestampTz now, TimestampTz since)
{
	return (since == 0) ? 0 : now - since;
}

/*
 * An interval as microseconds, for comparison with an age: the span interval
 * comparison itself uses (months as 30 days, computed in 128 bits), clamped
 * to the int64 range.  Clamping the span, rather than any of its parts,
 * keeps the order: '178000000 years -1 day' is far beyond every age, never
 * below it.
 */
int64
cw_interval_usecs(const Interval *interval)
{
	INT128		span = int64_to_int128(interval->time);

	int128_add_int64_mul_int64(&span, (int64) interval->day, USECS_PER_DAY);
	int128_add_int64_mul_int64(&span,
							   (int64) interval->month * DAYS_PER_MONTH,
							   USECS_PER_DAY);
	if (int128_compare(span, int64_to_int128(PG_INT64_MAX)) > 0)
		return PG_INT64_MAX;
	if (int128_compare(span, int64_to_int128(PG_INT64_MIN)) < 0)
		return PG_INT64_MIN;
	return int128_to_int64(span);
}

/*
 * A duration as [D days ]HH:MM:SS.mmm, whatever the session's IntervalStyle:
 * it goes into audit reasons that are compared and grepped.
 */
char *
cw_format_duration(int64 usecs)
{
	int64		days = usecs / USECS_PER_DAY;
	int64		rest = usecs % USECS_PER_DAY;
	int			hours = (int) (rest / USECS_PER_HOUR);
	int			minutes = (int) ((rest % USECS_PER_HOUR) / USECS_PER_MINUTE);
	int			seconds = (int) ((rest % USECS_PER_MINUTE) / USECS_PER_SEC);
	int			millis = (int) ((rest % USECS_PER_SEC) / 1000);

	if (days > 0)
		return psprintf(INT64_FORMAT " days %02d:%02d:%02d.%03d",
						days, hours, minutes, seconds, millis);
	return psprintf("%02d:%02d:%02d.%03d", hours, minutes, seconds, millis);
}
