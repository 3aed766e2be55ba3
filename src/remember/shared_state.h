/*-------------------------------------------------------------------------
 *
 * shared_state.h
 *		The shared memory of the remember layer: its layout, and what
 *		protects each part.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_SHARED_STATE_H
#define CW_SHARED_STATE_H

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"

/* Why a connection attempt was refused; labels in refusals.c */
typedef enum CwRefusalCause
{
	CW_REFUSED_TOO_MANY_CLIENTS,
	CW_REFUSED_RESERVED_SLOTS,
	CW_REFUSED_ROLE_LIMIT,
	CW_REFUSED_DATABASE_LIMIT,
	CW_REFUSED_NO_SUCH_ROLE,
	CW_REFUSED_ROLE_CANNOT_LOGIN,
	CW_REFUSED_NO_SUCH_DATABASE,
	CW_REFUSED_DATABASE_CLOSED,
	CW_REFUSED_NO_CONNECT_PRIVILEGE,
	CW_REFUSED_HBA,
	CW_REFUSED_AUTHENTICATION_FAILED,
	CW_REFUSED_AUTHENTICATION_ABANDONED,
	CW_REFUSED_STARTING_UP,
	CW_REFUSED_SHUTTING_DOWN,
	CW_REFUSED_NOT_ACCEPTING,
	CW_REFUSED_OTHER,
	CW_NUM_REFUSAL_CAUSES
} CwRefusalCause;

/* How a session ended; labels in sessions.c */
typedef enum CwEndingReason
{
	CW_ENDED_CLIENT_CLOSED,
	CW_ENDED_CLIENT_VANISHED,
	CW_ENDED_BY_CONNWATCH,
	CW_ENDED_BY_OTHER_SESSION,
	CW_ENDED_IDLE_IN_TRANSACTION_TIMEOUT,
	CW_ENDED_IDLE_SESSION_TIMEOUT,
	CW_ENDED_TRANSACTION_TIMEOUT,
	CW_ENDED_CONNECTION_CHECK_FAILED,
	CW_ENDED_PROTOCOL_VIOLATION,
	CW_ENDED_RECOVERY_CONFLICT,
	CW_ENDED_SERVER_SHUTDOWN,
	CW_ENDED_FATAL_ERROR,
	CW_NUM_ENDING_REASONS
} CwEndingReason;

typedef enum CwPeakScope
{
	CW_PEAK_SERVER,
	CW_PEAK_DATABASE,
	CW_PEAK_ROLE,
	CW_PEAK_APPLICATION,
	CW_NUM_PEAK_SCOPES
} CwPeakScope;

/* Session lifetime histogram: < 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 1 day, more */
#define CW_LIFETIME_BUCKETS	8

/*
 * One key of the refusal ledger.  Entries are claimed and counted without
 * a lock (refusals.c explains why): state goes from FREE to FILLING (one
 * process won the compare-and-swap and writes the key) to READY (the key
 * is immutable until a reset frees the slot or an eviction, READY to
 * FILLING by compare-and-swap, gives it to another key); counters are
 * atomics.
 */
#define CW_ENTRY_FREE		0
#define CW_ENTRY_FILLING	1
#define CW_ENTRY_READY		2

typedef struct CwRefusalKey
{
	uint8		cause;			/* CwRefusalCause */
	bool		overflow;		/* the ledger was full: names not kept */
	bool		has_datname;
	bool		has_usename;
	bool		has_application_name;
	uint8		addr_family;	/* AF_INET, AF_INET6, AF_UNIX or 0 */
	uint8		addr[16];
	char		datname[NAMEDATALEN];
	char		usename[NAMEDATALEN];
	char		application_name[NAMEDATALEN];
} CwRefusalKey;

typedef struct CwRefusalEntry
{
	pg_atomic_uint32 state;
	uint32		hash;
	CwRefusalKey key;
	pg_atomic_uint64 count;
	pg_atomic_uint64 first_at;	/* TimestampTz */
	pg_atomic_uint64 last_at;	/* TimestampTz */
} CwRefusalEntry;

/* The session-endings ledger, a shared hash table under the lock */
typedef struct CwEndingKey
{
	char		datname[NAMEDATALEN];
	char		usename[NAMEDATALEN];
	char		application_name[NAMEDATALEN];
	char		policy[NAMEDATALEN];	/* terminated by connwatch */
	uint8		reason;			/* CwEndingReason */
	bool		overflow;		/* the ledger was full: names not kept */
} CwEndingKey;

typedef struct CwEndingEntry
{
	CwEndingKey key;			/* must be first */
	int64		count;
	int64		total_usecs;
	int64		buckets[CW_LIFETIME_BUCKETS];
	int64		in_transaction; /* of count: ended with a transaction open */
	int64		transaction_warnings;	/* of count: sent BEGIN inside a
										 * transaction or COMMIT outside one */
	TimestampTz first_at;
	TimestampTz last_at;
	TimestampTz last_in_transaction_at; /* 0 if none */
	TimestampTz last_transaction_warning_at;	/* 0 if none */
} CwEndingEntry;

/* Concurrent client sessions, a shared hash table under the lock */
typedef struct CwPeakKey
{
	uint8		scope;			/* CwPeakScope */
	bool		overflow;
	char		name[NAMEDATALEN];	/* "" for the server */
} CwPeakKey;

typedef struct CwPeakEntry
{
	CwPeakKey	key;			/* must be first */
	int32		current;
	int32		peak;
	TimestampTz peak_at;
} CwPeakEntry;

/*
 * A session pg_connwatch is about to terminate, written under the lock
 * right before the signal, read by the session as it exits.  A ring: the
 * victim exits within moments, long before CW_KILL_MARKS later kills.
 */
#define CW_KILL_MARKS	1024

typedef struct CwKillMark
{
	int			pid;
	TimestampTz backend_start;
	bool		has_policy;
	char		policy[NAMEDATALEN];
} CwKillMark;

typedef struct CwRememberShared
{
	/* protects everything below but the refusal entries and fast_shutdown */
	LWLock	   *lock;

	/* set by the postmaster when it is asked for a fast shutdown */
	pg_atomic_uint32 fast_shutdown;

	TimestampTz ledgers_reset_at;
	TimestampTz peaks_reset_at;
	int64		endings_dropped;	/* sessions counted in an overflow key */
	int64		peaks_dropped;
	pg_atomic_uint64 refusals_dropped;

	/* every refusal and ending ever counted, for the history's deltas */
	pg_atomic_uint64 refusals_total;
	int64		endings_total;

	uint32		next_kill_mark;
	CwKillMark	kill_marks[CW_KILL_MARKS];

	/* refusal_slots entries, then one overflow entry per cause */
	uint32		refusal_slots;	/* a power of two, twice the keys or more */
	uint32		refusal_max_keys;	/* connwatch.max_ledger_keys at start */
	pg_atomic_uint32 refusal_keys;	/* slots claimed; at most refusal_max_keys */
	CwRefusalEntry refusals[FLEXIBLE_ARRAY_MEMBER];
} CwRememberShared;

/*
 * What became of an entry read back from the ledger file (persistence.c),
 * as the restore functions of refusals.c and sessions.c report it.
 */
typedef enum CwRestoreOutcome
{
	CW_RESTORE_OK,				/* put back as it was */
	CW_RESTORE_MERGED,			/* its key was in the file already: added */
	CW_RESTORE_OVER_CAP,		/* beyond the key cap: added to the overflow */
	CW_RESTORE_BAD_KEY,			/* a flag or a name that cannot be: ignored */
	CW_RESTORE_BAD_ENUM,		/* cause, reason or scope out of range: ignored */
	CW_NUM_RESTORE_OUTCOMES
} CwRestoreOutcome;

/* NULL unless pg_connwatch is in shared_preload_libraries */
extern CwRememberShared *cw_remember;
extern HTAB *cw_ending_table;
extern HTAB *cw_peak_table;

/* connwatch.max_ledger_keys */
extern int	cw_max_ledger_keys;

extern void cw_remember_preload(void);
extern void cw_remember_require(void);

#endif							/* CW_SHARED_STATE_H */
