/*-------------------------------------------------------------------------
 *
 * backend_state.h
 *		One consistent-enough reading of every backend's status, taken
 *		straight from shared memory.
 *
 * Every view of pg_connwatch starts from a CwBackendSet: the fields of
 * PgBackendStatus and PGPROC it needs, copied once per call.  Unlike
 * pg_stat_activity, the reading is not cached for the transaction, and a
 * caller asks only for the parts it needs (query text, PGPROC fields, the
 * lock-wait graph), so a view that only counts copies a handful of bytes
 * per backend.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CW_BACKEND_STATE_H
#define CW_BACKEND_STATE_H

#include "access/transam.h"
#include "libpq/pqcomm.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "compat.h"
#include "datatype/timestamp.h"
#include "utils/timestamp.h"

/* What cw_read_backends() copies besides identity, state and timestamps */
#define CW_READ_CLIENTS_ONLY	0x01	/* skip everything but client backends */
#define CW_READ_QUERY			0x02	/* query text */
#define CW_READ_PROC			0x04	/* xid, xmin, wait event, status flags */
#define CW_READ_BLOCKERS		0x08	/* blocked_by/blocking; implies PROC */
#define CW_READ_QUERY_IN_XACT	0x20	/* query text, of sessions in a
										 * transaction (idle in an aborted
										 * one included) */

typedef struct CwBackend
{
	int			pid;
	int			slot;			/* index in the backend status array */
	BackendType backend_type;
	Oid			datid;
	Oid			userid;

	/*
	 * Whether the caller may see this session's details, by the rule of
	 * pg_stat_activity (HAS_PGSTAT_PERMISSIONS).  When false, only the
	 * fields core shows everybody may be presented.
	 */
	bool		visible;

	BackendState state;
	TimestampTz backend_start;
	TimestampTz xact_start;
	TimestampTz query_start;
	TimestampTz state_change;
	SockAddr	client_addr;
	char		application_name[NAMEDATALEN];

	/*
	 * Query text, valid only when have_query.  A reading copies it only
	 * where it was asked for (CW_READ_QUERY*): a backend that exits while it
	 * is read may be seen in any state with any field already cleared, so
	 * whether the text was copied is recorded here, never inferred from the
	 * state or the timestamps.
	 */
	bool		have_query;
	char	   *query;

	/* From PGPROC, valid only when have_proc (CW_READ_PROC) */
	bool		have_proc;
	TransactionId xid;
	TransactionId xmin;
	uint32		wait_event_info;
	uint8		status_flags;
	Oid			proc_roleid;	/* the role signal permission is judged by */

	/* From the lock manager (CW_READ_BLOCKERS, cw_fill_lock_counts()) */
	List	   *blocked_by;		/* integer pids, pg_blocking_pids() order */
	List	   *blocking;		/* integer pids waiting on this backend */
	int			locks_held;
} CwBackend;

/* A small memo of OID-to-name lookups, good for the few distinct OIDs */
#define CW_NAME_CACHE_SIZE	32

typedef struct CwNameCache
{
	int			nentries;
	Oid			oids[CW_NAME_CACHE_SIZE];
	NameData   *names[CW_NAME_CACHE_SIZE];	/* NULL: no such object */
} CwNameCache;

typedef struct CwBackendSet
{
	int			nbackends;
	CwBackend  *backends;

	/* The instant every age is measured against */
	TimestampTz now;

	/* What age() would compare an xid against in this transaction */
	TransactionId age_base;

	/* pid -> index into backends, open addressing, -1 = empty */
	int		   *pid_index;
	int			pid_index_size;

	CwNameCache databases;
	CwNameCache roles;

	bool		uses_kept_array;	/* backends is the array kept across calls */
} CwBackendSet;

/* backend_state.c */
extern CwBackendSet *cw_read_backends(int flags);
extern void cw_release_backends(CwBackendSet *set);
extern bool cw_read_one_backend(int pid, int slot_hint, int flags,
								CwBackend *be);
extern CwBackend *cw_backend_by_pid(CwBackendSet *set, int pid);
extern bool cw_is_client_backend(const CwBackend *be);
extern TransactionId cw_backend_horizon_xid(const CwBackend *be);
extern bool cw_waits_on_lock(const CwBackend *be);

/*
 * Fill the leading seven columns of idle_in_transaction, long_transactions
 * and connwatch.action: pid, backend_start, datname, usename,
 * application_name, client_addr, state.  backend_start, client_addr and
 * state are NULL for a session the caller may not see.
 */
extern void cw_identity_datums(CwBackendSet *set, const CwBackend *be,
							   Datum *values, bool *nulls);

/* Presentation helpers shared by the views */
extern Datum cw_database_name(CwBackendSet *set, Oid dbid, bool *isnull);
extern Datum cw_role_name(CwBackendSet *set, Oid roleid, bool *isnull);
extern const char *cw_state_name(BackendState state);
extern void cw_client_addr_datums(const SockAddr *addr, Datum *host,
								  bool *host_null, Datum *port,
								  bool *port_null);
extern Datum cw_client_host_datum(const SockAddr *addr, bool *isnull);
extern Datum cw_query_datum(const CwBackend *be, bool *isnull);
extern Datum cw_age_datum(TimestampTz now, TimestampTz since, bool *isnull);
extern int64 cw_age_usecs(TimestampTz now, TimestampTz since);
extern int64 cw_interval_usecs(const Interval *interval);
extern char *cw_format_duration(int64 usecs);
extern Datum cw_xid_age_datum(CwBackendSet *set, TransactionId xid,
							  bool *isnull);
extern Datum cw_pid_array_datum(List *pids);

#endif							/* CW_BACKEND_STATE_H */
