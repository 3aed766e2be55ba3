/*-------------------------------------------------------------------------
 *
 * durations.h
 *		Ages and durations in microseconds, as rules compare them and the
 *		audit trail writes them.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_DURATIONS_H
#define CW_DURATIONS_H

#include "datatype/timestamp.h"

extern int64 cw_age_usecs(TimestampTz now, TimestampTz since);
extern int64 cw_interval_usecs(const Interval *interval);
extern char *cw_format_duration(int64 usecs);

#endif							/* CW_DURATIONS_H */
