/*-------------------------------------------------------------------------
 *
 * connection_limits.c
 *		Every connection limit against what it counts, and each role's
 *		headroom.
 *
 * PostgreSQL refuses a connection at four places, each counting something
 * different (PostgreSQL 15):
 *
 * - "sorry, too many clients already": InitProcess() found no free PGPROC
 *   among the max_connections slots kept for ordinary backends.  Autovacuum
 *   workers, background workers and walsenders have slots of their own.
 * - "remaining connection slots are reserved for non-replication superuser
 *   connections": a non-superuser found superuser_reserved_connections or
 *   fewer free slots.
 * - "too many connections for database": CountDBConnections(), i.e. every
 *   process in the proc array connected to the database except background
 *   workers: client backends, autovacuum workers and logical walsenders.
 * - "too many connections for role": CountUserBackends(), i.e. client
 *   backends and walsenders logged in as the role (autovacuum workers have
 *   no role; background workers are not counted).
 *
 * The last two are never applied to superusers.  All four counts include
 * the connecting backend itself, so a limit of N admits N connections.
 *
 * We count from the backend status array (backend_state.c), which shows a
 * backend from the end of authentication on, as pg_stat_activity does; a
 * backend still authenticating already holds a slot but is not counted.
 * Catalogs are read with systable scans under AccessShareLock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "backend_state.h"
#include "compat.h"
#include "connection_limits.h"
#include "pg_connwatch.h"

#define CW_CONNECTION_LIMITS_COLS	7
#define CW_CONNECTION_HEADROOM_COLS	7

/* A database or role with its limit and what the limit counts */
typedef struct CwLimitedObject
{
	Oid			oid;
	NameData	name;
	int			limit;			/* -1: unlimited */
	bool		superuser;		/* roles only */
	bool		can_login;		/* roles only */
	int			used;
} CwLimitedObject;

/* Usage of the server-wide pools */
typedef struct CwServerUsage
{
	int			client_backends;
	int			general_max;	/* slots any role may take */
	int			reserved_max;	/* slots only superusers may take */
} CwServerUsage;

PG_FUNCTION_INFO_V1(cw_connection_limits);
PG_FUNCTION_INFO_V1(cw_connection_headroom);

static bool cw_may_use_reserved(Oid roleid);
static void cw_check_thresholds(void);
static CwBackendSet *cw_count_server(CwServerUsage *usage);
static void cw_count_server_in(CwBackendSet *set, CwServerUsage *usage);
static int64 cw_pct_tenths(int used, int max);
static CwLimitedObject *cw_read_databases(int *count);
static CwLimitedObject *cw_read_roles(int *count);
static void cw_count_usage(CwBackendSet *set, CwLimitedObject *databases,
						   int ndatabases, CwLimitedObject *roles, int nroles);
static int	cw_limited_object_cmp(const void *a, const void *b);
static void cw_put_limit_row(ReturnSetInfo *rsinfo, const char *scope,
							 const char *name, int used, int max);

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

/* warning_pct above critical_pct would make "warning" unreachable */
static void
cw_check_thresholds(void)
{
	if (cw_warning_pct > cw_critical_pct)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connwatch.warning_pct (%g) must not exceed connwatch.critical_pct (%g)",
						cw_warning_pct, cw_critical_pct)));
}

static CwBackendSet *
cw_count_server(CwServerUsage *usage)
{
	CwBackendSet *set = cw_read_backends(0);

	cw_count_server_in(set, usage);
	return set;
}

static void
cw_count_server_in(CwBackendSet *set, CwServerUsage *usage)
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
static int64
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

	cw_count_server_in(set, &usage);
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
static CwLimitedObject *
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
static CwLimitedObject *
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
 * Count what CountDBConnections() and CountUserBackends() count.  Objects
 * are few; a backend's database and role are usually the same as the
 * previous backend's, so remember the last match.
 */
static void
cw_count_usage(CwBackendSet *set, CwLimitedObject *databases, int ndatabases,
			   CwLimitedObject *roles, int nroles)
{
	CwLimitedObject *last_db = NULL;
	CwLimitedObject *last_role = NULL;
	int			i;

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		bool		counts_for_database;
		bool		counts_for_role;

		counts_for_database = be->backend_type == B_BACKEND ||
			be->backend_type == B_WAL_SENDER ||
			be->backend_type == B_AUTOVAC_WORKER;
		counts_for_role = be->backend_type == B_BACKEND ||
			be->backend_type == B_WAL_SENDER;

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
 * Emit one row of connection_limits.  max < 0 means unlimited.  pct_used
 * is rounded to one decimal, half up, and the status compares that rounded
 * value, so that what is shown and what is judged agree.
 */
static void
cw_put_limit_row(ReturnSetInfo *rsinfo, const char *scope, const char *name,
				 int used, int max)
{
	Datum		values[CW_CONNECTION_LIMITS_COLS] = {0};
	bool		nulls[CW_CONNECTION_LIMITS_COLS] = {0};
	const char *status = "ok";

	values[0] = CStringGetTextDatum(scope);
	nulls[1] = (name == NULL);
	values[2] = Int32GetDatum(used);

	if (max < 0)
		nulls[3] = nulls[4] = nulls[5] = true;
	else
	{
		int64		tenths;
		char		pct[32];

		tenths = cw_pct_tenths(used, max);
		snprintf(pct, sizeof(pct), INT64_FORMAT ".%d",
				 tenths / 10, (int) (tenths % 10));

		values[3] = Int32GetDatum(max);
		values[4] = Int32GetDatum(Max(max - used, 0));
		values[5] = DirectFunctionCall3(numeric_in, CStringGetDatum(pct),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
		if (tenths >= cw_critical_pct * 10)
			status = "critical";
		else if (tenths >= cw_warning_pct * 10)
			status = "warning";
	}
	values[6] = CStringGetTextDatum(status);

	/* name is of type name: hand the tuplestore a full NAMEDATALEN buffer */
	if (name != NULL)
	{
		NameData   *namedata = palloc(sizeof(NameData));

		namestrcpy(namedata, name);
		values[1] = NameGetDatum(namedata);
	}

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * connwatch.connection_limits(): server, reserved, then one row per
 * database and per role that has a limit or a counted connection.
 */
Datum
cw_connection_limits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CwServerUsage usage;
	CwBackendSet *set;
	CwLimitedObject *databases;
	CwLimitedObject *roles;
	int			ndatabases;
	int			nroles;
	int			i;

	cw_check_thresholds();
	cw_init_materialized_srf(fcinfo);
	if (rsinfo->setDesc->natts != CW_CONNECTION_LIMITS_COLS)
		elog(ERROR, "incorrect number of output arguments");

	set = cw_count_server(&usage);
	databases = cw_read_databases(&ndatabases);
	roles = cw_read_roles(&nroles);
	cw_count_usage(set, databases, ndatabases, roles, nroles);

	cw_put_limit_row(rsinfo, "server", NULL, usage.client_backends,
					 usage.general_max);
	if (usage.reserved_max > 0)
		cw_put_limit_row(rsinfo, "reserved", NULL,
						 Max(usage.client_backends - usage.general_max, 0),
						 usage.reserved_max);

	for (i = 0; i < ndatabases; i++)
		cw_put_limit_row(rsinfo, "database", NameStr(databases[i].name),
						 databases[i].used, databases[i].limit);

	for (i = 0; i < nroles; i++)
	{
		CwLimitedObject *role = &roles[i];

		if (role->used == 0 && !(role->can_login && role->limit >= 0))
			continue;
		cw_put_limit_row(rsinfo, "role", NameStr(role->name), role->used,
						 role->superuser ? -1 : role->limit);
	}

	cw_release_backends(set);
	return (Datum) 0;
}

/*
 * connwatch.connection_headroom(): how many more connections each login
 * role with a session or a CONNECTION LIMIT could open right now.
 */
Datum
cw_connection_headroom(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CwServerUsage usage;
	CwBackendSet *set;
	CwLimitedObject *roles;
	int			nroles;
	int			general_headroom;
	int			total_headroom;
	int			roles_headroom;
	int			i;

	cw_init_materialized_srf(fcinfo);
	if (rsinfo->setDesc->natts != CW_CONNECTION_HEADROOM_COLS)
		elog(ERROR, "incorrect number of output arguments");

	set = cw_count_server(&usage);
	roles = cw_read_roles(&nroles);
	cw_count_usage(set, NULL, 0, roles, nroles);

	general_headroom = Max(usage.general_max - usage.client_backends, 0);
	total_headroom = Max(MaxConnections - usage.client_backends, 0);
	/* what members of pg_use_reserved_connections get (16+) */
	roles_headroom = Max(MaxConnections - CW_SUPERUSER_RESERVED -
						 usage.client_backends, 0);

	for (i = 0; i < nroles; i++)
	{
		CwLimitedObject *role = &roles[i];
		Datum		values[CW_CONNECTION_HEADROOM_COLS] = {0};
		bool		nulls[CW_CONNECTION_HEADROOM_COLS] = {0};
		int			headroom;
		const char *binding;
		bool		can_use_reserved;

		if (!role->can_login || (role->used == 0 && role->limit < 0))
			continue;

		can_use_reserved = role->superuser || cw_may_use_reserved(role->oid);
		if (role->superuser)
		{
			/* the general pool first, then the reserved slots */
			headroom = total_headroom;
			binding = (general_headroom > 0) ? "server" : "reserved";
			nulls[3] = true;
		}
		else
		{
			headroom = can_use_reserved ? roles_headroom : general_headroom;
			binding = (can_use_reserved && general_headroom == 0) ?
				"reserved" : "server";
			if (role->limit >= 0)
			{
				int			role_headroom = Max(role->limit - role->used, 0);

				if (role_headroom <= headroom)
				{
					headroom = role_headroom;
					binding = "role";
				}
				values[3] = Int32GetDatum(role->limit);
			}
			else
				nulls[3] = true;
		}

		values[0] = NameGetDatum(&role->name);
		values[1] = BoolGetDatum(role->superuser);
		values[2] = BoolGetDatum(can_use_reserved);
		values[4] = Int32GetDatum(role->used);
		values[5] = Int32GetDatum(headroom);
		values[6] = CStringGetTextDatum(binding);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	cw_release_backends(set);
	return (Datum) 0;
}
