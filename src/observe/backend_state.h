/*-------------------------------------------------------------------------
 *
 * backend_state.h
 *		One consistent-enough reading of every backend's status, taken
 *		straight from shared memory.
 *
 * Every view of pg_connwatch starts from a CwBackendSet: the fields of
 * PgBackendStatus and PGPROC it needs, copied once per call.  Unlike
 * pg_stat_activity, the reading is not cached for the transaction, and a
 * caller asks only for the parts it needs (query text, PGPROC fields), so a
 * view that only counts copies a handful of bytes per backend.  The
 * analyses (lock_graph.c, connection_limits.c, xmin_horizon.c) work on a
 * reading; nothing here knows of them, or of SQL.
 *
 * Copyright (c) 2026, pg_connwatch developers
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

	/* From the lock manager, when lock_graph.c fills them in */
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

/* The names of the databases and roles a caller looked up */
typedef struct CwNames
{
	CwNameCache databases;
	CwNameCache roles;
} CwNames;

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

	CwNames		names;

	bool		uses_kept_array;	/* backends is the array kept across calls */
} CwBackendSet;

extern CwBackendSet *cw_read_backends(int flags);
extern void cw_release_backends(CwBackendSet *set);
extern bool cw_read_one_backend(int pid, int slot_hint, int flags,
								CwBackend *be);
extern CwBackend *cw_backend_by_pid(CwBackendSet *set, int pid);
extern bool cw_is_client_backend(const CwBackend *be);
extern bool cw_is_idle_in_transaction(const CwBackend *be);
extern TransactionId cw_backend_horizon_xid(const CwBackend *be);
extern bool cw_waits_on_lock(const CwBackend *be);
extern bool cw_xid_age(TransactionId age_base, TransactionId xid,
					   int32 *age);

/* Names and labels, as pg_stat_activity shows them */
extern const NameData *cw_database_name(CwNames *names, Oid dbid);
extern const NameData *cw_role_name(CwNames *names, Oid roleid);
extern const char *cw_state_name(BackendState state);

#endif							/* CW_BACKEND_STATE_H */
