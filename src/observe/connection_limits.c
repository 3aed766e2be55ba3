/*-------------------------------------------------------------------------
 *
 * connection_limits.c
 *		Every connection limit against what it counts, and each role's
 *		headroom.
 *
 * PostgreSQL refuses a connection at four places, each counting something
 * different:
 *
 * - "sorry, too many clients already": InitProcess() found no free PGPROC
 *   among the max_connections slots kept for ordinary backends.  Autovacuum
 *   workers, background workers and walsenders have slots of their own.
 * - "remaining connection slots are reserved for ...": a client that is
 *   not a superuser (nor, on 16+, a member of pg_use_reserved_connections
 *   while reserved_connections lasts) found that few free slots.
 * - "too many connections for database": CountDBConnections().
 * - "too many connections for role": CountUserBackends().
 *
 * What the last two count changed in minor releases 13.19, 14.16, 15.11,
 * 16.7 and 17.3: client backends only, where before they also counted
 * walsenders (both limits) and autovacuum workers (the database's).
 * compat.h tells which rule the running server follows, and we count
 * the same.
 *
 * The last two are never applied to superusers.  All four counts include
 * the connecting backend itself, so a limit of N admits N connections.
 *
 * We count from the backend status array (backend_state.c), which shows a
 * backend from the end of authentication on, as pg_stat_activity does; a
 * backend still authenticating already holds a slot but is not counted
 * (18 shows it from the start of authentication, and counts it: compat.h).
 * Catalogs are read with systable scans under AccessShareLock.
 *
 * This file counts and judges; sql/limit_views.c makes rows of it.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/rel.h"

#include "compat.h"
#include "observe/connection_limits.h"

static bool cw_may_use_reserved(Oid roleid);
static int	cw_limited_object_cmp(const void *a, const void *b);

/*
 * May a role that is not a superuser take the slots reserved_connections
 * keeps (16+: membership in pg_use_reserved_connections, as InitPostgres
 * checks it)?
 */
static bool
cw_may_use_reserved(Oid roleid)
{
#ifdef CW_HAVE_RESERVED_CONNECTIONS
	return CW_RESERVED_FOR_ROLES > 0 &&
		has_privs_of_role(roleid, ROLE_PG_USE_RESERVED_CONNECTIONS);
#else
	return false;
#endif
}

/* Client backends against the server-wide pools */
void
cw_count_server(CwBackendSet *set, CwServerUsage *usage)
{
	int			i;

	usage->client_backends = 0;
	for (i = 0; i < set->nbackends; i++)
		if (cw_is_client_backend(&set->backends[i]))
			usage->client_backends++;

	usage->reserved_max = CW_SUPERUSER_RESERVED + CW_RESERVED_FOR_ROLES;
	usage->general_max = Max(MaxConnections - usage->reserved_max, 0);
}

/* pct_used in tenths of a percent, rounded half up; a limit of 0 is full */
int64
cw_pct_tenths(int used, int max)
{
	if (max == 0)
		return 1000;
	return ((int64) used * 2000 + max) / ((int64) max * 2);
}

/*
 * The server row's pct_used, exactly as connection_limits shows it: the
 * figure pressure-aware policies compare against.
 */
double
cw_server_pct_used(CwBackendSet *set)
{
	CwServerUsage usage;

	cw_count_server(set, &usage);
	return cw_pct_tenths(usage.client_backends, usage.general_max) / 10.0;
}

static int
cw_limited_object_cmp(const void *a, const void *b)
{
	return strcmp(NameStr(((const CwLimitedObject *) a)->name),
				  NameStr(((const CwLimitedObject *) b)->name));
}

/* Append a zeroed entry to a growing array of objects */
static CwLimitedObject *
cw_append_object(CwLimitedObject **objects, int *count, int *allocated)
{
	if (*count == *allocated)
	{
		*allocated *= 2;
		*objects = repalloc(*objects, sizeof(CwLimitedObject) * *allocated);
	}
	memset(&(*objects)[*count], 0, sizeof(CwLimitedObject));
	return &(*objects)[(*count)++];
}

/* Every database that accepts connections, sorted by name */
CwLimitedObject *
cw_read_databases(int *count)
{
	Relation	rel = table_open(DatabaseRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	int			allocated = 16;
	CwLimitedObject *result = palloc(sizeof(CwLimitedObject) * allocated);
	HeapTuple	tuple;

	*count = 0;
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		CwLimitedObject *obj;

		/* -2 marks a database left invalid by an interrupted DROP */
		if (!db->datallowconn || db->datconnlimit < -1)
			continue;
		obj = cw_append_object(&result, count, &allocated);
		obj->oid = db->oid;
		obj->name = db->datname;
		obj->limit = db->datconnlimit;
		obj->can_login = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	qsort(result, *count, sizeof(CwLimitedObject), cw_limited_object_cmp);
	return result;
}

/* Every role, sorted by name */
CwLimitedObject *
cw_read_roles(int *count)
{
	Relation	rel = table_open(AuthIdRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	int			allocated = 32;
	CwLimitedObject *result = palloc(sizeof(CwLimitedObject) * allocated);
	HeapTuple	tuple;

	*count = 0;
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_authid role = (Form_pg_authid) GETSTRUCT(tuple);
		CwLimitedObject *obj;

		obj = cw_append_object(&result, count, &allocated);
		obj->oid = role->oid;
		obj->name = role->rolname;
		obj->limit = role->rolconnlimit;
		obj->superuser = role->rolsuper;
		obj->can_login = role->rolcanlogin;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	qsort(result, *count, sizeof(CwLimitedObject), cw_limited_object_cmp);
	return result;
}

static CwLimitedObject *
cw_find_object(CwLimitedObject *objects, int count, Oid oid)
{
	int			i;

	for (i = 0; i < count; i++)
		if (objects[i].oid == oid)
			return &objects[i];
	return NULL;
}

/*
 * Count what CountDBConnections() and CountUserBackends() count on the
 * running server (see the top of this file).  Objects
 * are few; a backend's database and role are usually the same as the
 * previous backend's, so remember the last match.
 */
void
cw_count_usage(CwBackendSet *set, CwLimitedObject *databases, int ndatabases,
			   CwLimitedObject *roles, int nroles)
{
	CwLimitedObject *last_db = NULL;
	CwLimitedObject *last_role = NULL;
	bool		clients_only = cw_limits_count_only_client_backends();
	int			i;

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		bool		counts_for_database;
		bool		counts_for_role;

		counts_for_database = be->backend_type == B_BACKEND ||
			(!clients_only && (be->backend_type == B_WAL_SENDER ||
							   be->backend_type == B_AUTOVAC_WORKER));
		counts_for_role = be->backend_type == B_BACKEND ||
			(!clients_only && be->backend_type == B_WAL_SENDER);

		if (counts_for_database && OidIsValid(be->datid))
		{
			if (last_db == NULL || last_db->oid != be->datid)
				last_db = cw_find_object(databases, ndatabases, be->datid);
			if (last_db != NULL)
				last_db->used++;
		}
		if (counts_for_role && OidIsValid(be->userid))
		{
			if (last_role == NULL || last_role->oid != be->userid)
				last_role = cw_find_object(roles, nroles, be->userid);
			if (last_role != NULL)
				last_role->used++;
		}
	}
}

/*
 * How many more connections a login role could open right now, and which
 * limit binds first: "server" (the general pool), "reserved" (the reserved
 * slots a superuser, or on 16+ a member of pg_use_reserved_connections,
 * falls back on) or "role" (its CONNECTION LIMIT).  role->used must have
 * been counted (cw_count_usage).
 */
int
cw_role_headroom(const CwServerUsage *usage, const CwLimitedObject *role,
				 bool *can_use_reserved, const char **binding)
{
	int			general_headroom = Max(usage->general_max - usage->client_backends, 0);
	int			headroom;

	*can_use_reserved = role->superuser || cw_may_use_reserved(role->oid);
	if (role->superuser)
	{
		/* the general pool first, then every reserved slot */
		*binding = (general_headroom > 0) ? "server" : "reserved";
		return Max(MaxConnections - usage->client_backends, 0);
	}

	if (*can_use_reserved)
	{
		/* what members of pg_use_reserved_connections get (16+) */
		headroom = Max(MaxConnections - CW_SUPERUSER_RESERVED -
					   usage->client_backends, 0);
		*binding = (general_headroom == 0) ? "reserved" : "server";
	}
	else
	{
		headroom = general_headroom;
		*binding = "server";
	}
	if (role->limit >= 0 && Max(role->limit - role->used, 0) <= headroom)
	{
		headroom = Max(role->limit - role->used, 0);
		*binding = "role";
	}
	return headroom;
}
