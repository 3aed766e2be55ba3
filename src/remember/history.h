/*-------------------------------------------------------------------------
 *
 * history.h
 *		A short history of the server's connections, sampled into a ring
 *		buffer in shared memory.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_HISTORY_H
#define CW_HISTORY_H

#include "datatype/timestamp.h"

/* One application's share of a sample */
typedef struct CwHistoryApplication
{
	char		name[NAMEDATALEN];
	int32		connections;
	int32		idle_in_transaction;
} CwHistoryApplication;

typedef struct CwHistorySample
{
	TimestampTz sampled_at;
	int32		client_backends;
	int32		active;
	int32		idle;
	int32		idle_in_transaction;
	int32		waiting;
	int64		oldest_xact_usecs;	/* -1: no transaction open */
	int32		oldest_xmin_age;	/* -1: nothing holds the horizon */
	int64		refused;		/* since the previous sample */
	int64		ended;			/* since the previous sample */
	int32		napplications;	/* named ones, then "other" */
	int32		other_connections;
	int32		other_idle_in_transaction;
	CwHistoryApplication applications[FLEXIBLE_ARRAY_MEMBER];
} CwHistorySample;

extern int	cw_sample_interval_ms;
extern int	cw_history_size;
extern int	cw_history_applications;

extern void cw_history_preload(void);
extern void cw_history_take_sample(void);
extern Size cw_history_sample_size(void);
extern int	cw_history_read(TimestampTz since, TimestampTz until, uint64 *cursor,
							CwHistorySample *buffer, int max_samples);

#endif							/* CW_HISTORY_H */
