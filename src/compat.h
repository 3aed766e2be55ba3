/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every PG_VERSION_NUM branch of pg_connwatch lives here.
 *
 * The extension targets PostgreSQL 15.  Where a later major version moved
 * or renamed something we rely on, the difference is absorbed here so that
 * the rest of the code reads as if there were only one version.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CW_COMPAT_H
#define CW_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "pg_connwatch requires PostgreSQL 15 or later"
#endif

/*
 * PostgreSQL 16 added reserved_connections (for pg_use_reserved_connections)
 * beside superuser_reserved_connections.  On 15 only the latter exists.
 */
#if PG_VERSION_NUM >= 160000
#define CW_RESERVED_FOR_ROLES	ReservedConnections
#else
#define CW_RESERVED_FOR_ROLES	0
#endif

/* SetSingleFuncCall() became InitMaterializedSRF() in 16. */
#if PG_VERSION_NUM >= 160000
#define cw_init_materialized_srf(fcinfo)	InitMaterializedSRF((fcinfo), 0)
#else
#define cw_init_materialized_srf(fcinfo)	SetSingleFuncCall((fcinfo), 0)
#endif

/*
 * Backend status slots: one per PGPROC plus one per auxiliary process type.
 * backend_status.c keeps its array static; we attach to it by name.
 */
#if PG_VERSION_NUM >= 170000
#define CW_NUM_STATUS_SLOTS		(MaxBackends + NUM_AUXILIARY_PROCS)
#else
#define CW_NUM_STATUS_SLOTS		(MaxBackends + NUM_AUXPROCTYPES)
#endif

#endif							/* CW_COMPAT_H */
