/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every PG_VERSION_NUM branch of pg_connwatch lives here.
 *
 * pg_connwatch supports PostgreSQL 13 to 19.  Where a major version moved
 * or renamed something we rely on, the difference is absorbed here -- by a
 * macro where a name changed, by a small inline function where the code
 * differs -- so that the rest of the code reads as if there were only one
 * version.  No other file tests PG_VERSION_NUM.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_COMPAT_H
#define CW_COMPAT_H

#if PG_VERSION_NUM < 130000
#error "pg_connwatch requires PostgreSQL 13 or later"
#endif

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"

/*
 * 14 split the backend status array and the wait events out of pgstat.h.
 */
#include "pgstat.h"
#if PG_VERSION_NUM >= 140000
#include "utils/backend_status.h"
#include "utils/wait_event.h"
#endif

/* 17 replaced BackendId by ProcNumber */
#if PG_VERSION_NUM < 170000
#include "storage/sinvaladt.h"
#endif

/*
 * 16 renamed ReservedBackends to SuperuserReservedConnections and added
 * reserved_connections (for pg_use_reserved_connections) beside it.
 */
#include "postmaster/postmaster.h"
#if PG_VERSION_NUM >= 160000
#define CW_SUPERUSER_RESERVED		SuperuserReservedConnections
#define CW_RESERVED_FOR_ROLES		ReservedConnections
#define CW_HAVE_RESERVED_CONNECTIONS
#else
#define CW_SUPERUSER_RESERVED		ReservedBackends
#define CW_RESERVED_FOR_ROLES		0
#endif

/* 14 renamed the predefined roles from DEFAULT_ROLE_* to ROLE_PG_* */
#if PG_VERSION_NUM >= 140000
#define CW_ROLE_READ_ALL_STATS		ROLE_PG_READ_ALL_STATS
#define CW_ROLE_SIGNAL_BACKEND		ROLE_PG_SIGNAL_BACKEND
#else
#define CW_ROLE_READ_ALL_STATS		DEFAULT_ROLE_READ_ALL_STATS
#define CW_ROLE_SIGNAL_BACKEND		DEFAULT_ROLE_SIGNAL_BACKENDID
#endif

/*
 * Whether a role reads every session's details in pg_stat_activity through
 * pg_read_all_stats: 15 made predefined roles count only when inherited
 * (has_privs_of_role); before, any membership did (is_member_of_role).
 */
#if PG_VERSION_NUM >= 150000
#define cw_has_read_all_stats(roleid) \
	has_privs_of_role((roleid), CW_ROLE_READ_ALL_STATS)
#else
#define cw_has_read_all_stats(roleid) \
	is_member_of_role((roleid), CW_ROLE_READ_ALL_STATS)
#endif

/*
 * 18 reports a backend from the start of authentication on, in state
 * STATE_STARTING (which renumbers the states after it).
 */
#if PG_VERSION_NUM >= 180000
#define CW_HAVE_STATE_STARTING
#endif

/*
 * Whether the running server counts only regular (client) backends against
 * a database's or role's CONNECTION LIMIT.  Minor releases 13.19, 14.16,
 * 15.11, 16.7 and 17.3 (and every 18) made it so ("Exclude parallel workers
 * from connection privilege checks and limits"): before, walsenders counted
 * against both limits and autovacuum workers against the database's.  A
 * library built with one minor's headers loads into any minor of its major,
 * so this is the running server's version, not PG_VERSION_NUM's.
 */
static inline bool
cw_limits_count_only_client_backends(void)
{
	int			running = atoi(GetConfigOption("server_version_num", false, false));

	switch (running / 10000)
	{
		case 13:
			return running >= 130019;
		case 14:
			return running >= 140016;
		case 15:
			return running >= 150011;
		case 16:
			return running >= 160007;
		case 17:
			return running >= 170003;
		default:
			return running >= 180000;
	}
}

/*
 * Backend status slots: one per PGPROC plus one per auxiliary process.
 * backend_status.c keeps its array static; we attach to it by name.
 */
#if PG_VERSION_NUM >= 170000
#define CW_NUM_STATUS_SLOTS		(MaxBackends + NUM_AUXILIARY_PROCS)
#else
#define CW_NUM_STATUS_SLOTS		(MaxBackends + NUM_AUXPROCTYPES)
#endif

/* A GUC check hook's "extra": malloc() up to 15, guc_malloc() from 16 on */
#if PG_VERSION_NUM >= 160000
#define cw_guc_malloc(size)		guc_malloc(LOG, (size))
#else
#define cw_guc_malloc(size)		malloc(size)
#endif

/* 15 reserved a GUC prefix with MarkGUCPrefixReserved() */
#if PG_VERSION_NUM >= 150000
#define cw_reserve_guc_prefix(prefix)	MarkGUCPrefixReserved(prefix)
#else
#define cw_reserve_guc_prefix(prefix)	EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * 15 added shmem_request_hook; before it, a library asks for shared memory
 * and LWLocks straight from _PG_init.
 */
#if PG_VERSION_NUM >= 150000
#define CW_HAVE_SHMEM_REQUEST_HOOK
#endif

/*
 * 14 records why a session ended (pgStatSessionEndCause, for
 * pg_stat_database's session counters); in 13 a client's Terminate message
 * and its vanishing look the same.
 */
#if PG_VERSION_NUM >= 140000
#define CW_HAVE_SESSION_END_CAUSE
#define cw_session_end_cause()		((int) pgStatSessionEndCause)
#define CW_END_CLIENT_EOF			((int) DISCONNECT_CLIENT_EOF)
#endif

/*
 * The PGPROC behind status slot "slot" of a process with the given pid.
 * Up to 16 a regular backend's slot is its BackendId - 1 and auxiliary
 * processes follow; from 17 on the slot is the ProcNumber of any process.
 * The caller checks that the PGPROC's pid still matches.
 */
static inline PGPROC *
cw_proc_of_status_slot(int slot, int pid)
{
#if PG_VERSION_NUM >= 170000
	return GetPGProcByNumber(slot);
#else
	if (slot < MaxBackends)
		return BackendIdGetProc(slot + 1);
	return AuxiliaryPidGetProc(pid);
#endif
}

/*
 * A PGPROC's top-level xid, xmin and status flags.  13 keeps them in the
 * proc's PGXACT (the flags as vacuumFlags, with the same bits).
 */
static inline void
cw_proc_xids(PGPROC *proc, TransactionId *xid, TransactionId *xmin,
			 uint8 *status_flags)
{
#if PG_VERSION_NUM >= 140000
	*xid = proc->xid;
	*xmin = proc->xmin;
	*status_flags = proc->statusFlags;
#else
	PGXACT	   *pgxact = &ProcGlobal->allPgXact[proc->pgprocno];

	*xid = pgxact->xid;
	*xmin = pgxact->xmin;
	*status_flags = pgxact->vacuumFlags;
#endif
}

/*
 * 19 moved get_database_name() from commands/dbcommands.h to
 * utils/lsyscache.h.
 */
#if PG_VERSION_NUM >= 190000
#include "utils/lsyscache.h"
#else
#include "commands/dbcommands.h"
#endif

/* 16 moved the varlena macros (VARDATA_ANY, ...) to varatt.h */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * 19 dropped ShmemInitHash()'s initial size: a hash table in shared memory
 * is allocated at its final size.
 */
#if PG_VERSION_NUM >= 190000
#define cw_shmem_init_hash(name, nelems, info, flags) \
	ShmemInitHash((name), (nelems), (info), (flags))
#else
#define cw_shmem_init_hash(name, nelems, info, flags) \
	ShmemInitHash((name), (nelems), (nelems), (info), (flags))
#endif

/*
 * 19 replaced ReplicationSlot.active_pid by active_proc, a ProcNumber.
 * Caller holds the slot's mutex.
 */
#include "replication/slot.h"
#if PG_VERSION_NUM >= 190000
#define cw_slot_active_pid(slot) \
	((slot)->active_proc == INVALID_PROC_NUMBER ? 0 : \
	 GetPGProcByNumber((slot)->active_proc)->pid)
#else
#define cw_slot_active_pid(slot)	((slot)->active_pid)
#endif

/*
 * pg_fallthrough (19) marks a case that falls through, for compilers that
 * warn about it.
 */
#ifndef pg_fallthrough
#if defined(__has_attribute)
#if __has_attribute(fallthrough)
#define pg_fallthrough __attribute__((fallthrough))
#endif
#endif
#endif
#ifndef pg_fallthrough
#define pg_fallthrough ((void) 0)
#endif

/*
 * 18 lets a module say its name and version, which pg_get_loaded_modules()
 * reports.
 */
#if PG_VERSION_NUM >= 180000
#define CW_MODULE_MAGIC \
	PG_MODULE_MAGIC_EXT(.name = "pg_connwatch", .version = CW_MODULE_VERSION)
#else
#define CW_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/*
 * Set up a materialized set-returning function's tuplestore and result
 * descriptor: InitMaterializedSRF() from 16 on, SetSingleFuncCall() in 15,
 * by hand before.
 */
static inline void
cw_init_materialized_srf(FunctionCallInfo fcinfo)
{
#if PG_VERSION_NUM >= 160000
	InitMaterializedSRF(fcinfo, 0);
#elif PG_VERSION_NUM >= 150000
	SetSingleFuncCall(fcinfo, 0);
#else
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext caller_context;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));

	caller_context = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult =
		tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
							  false, work_mem);
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(caller_context);
#endif
}

#endif							/* CW_COMPAT_H */
