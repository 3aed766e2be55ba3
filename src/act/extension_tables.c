/*-------------------------------------------------------------------------
 *
 * extension_tables.c
 *		Find pg_connwatch's own tables through the extension's catalog
 *		entry, and run SQL against them with nothing resolved through the
 *		caller's search_path.
 *
 * A name is only as trustworthy as whoever can create objects under it.  A
 * role that created a schema "connwatch" before the extension was installed
 * (or renamed the genuine schema away and made a new one) could put a view
 * over a function of its own where the C code expects connwatch.policies,
 * and that function would run as whoever calls enforce() -- a superuser, or
 * pg_cron's job.  So before reading or writing one of its tables,
 * pg_connwatch checks that the schema is its own: a member of extension
 * pg_connwatch (1.0.1 and later create it in their install script), or, for
 * a 1.0 install whose ALTER EXTENSION UPDATE has not been run yet, the
 * schema the extension was installed in, owned by a superuser.  The table
 * itself must be an ordinary table and a member of the extension.  Anything
 * else is refused with SQLSTATE 55000.
 *
 * SQL run here names every object with its schema and runs with
 * search_path set to "pg_catalog, pg_temp" for its duration, so that
 * neither objects planted in other schemas nor temporary ones (a domain
 * named float8, an operator in pg_temp) can change what a statement means.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "act/extension_tables.h"

#define CW_EXTENSION_NAME	"pg_connwatch"
#define CW_SCHEMA_NAME		"connwatch"

static Oid	cw_extension_schema(Oid extension_oid, Oid installed_in);
static Oid	cw_find_extension(Oid *installed_in);

/*
 * The OID of extension pg_connwatch and, in *installed_in, the schema its
 * catalog entry names (pg_catalog from 1.0.1 on, connwatch for 1.0).
 */
static Oid
cw_find_extension(Oid *installed_in)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			extension_oid = InvalidOid;

	*installed_in = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(CW_EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_extension form = (Form_pg_extension) GETSTRUCT(tuple);

		extension_oid = form->oid;
		*installed_in = form->extnamespace;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(extension_oid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is not installed in this database",
						CW_EXTENSION_NAME),
				 errhint("Run CREATE EXTENSION %s.", CW_EXTENSION_NAME)));
	return extension_oid;
}

/*
 * The schema that holds the extension's tables, after the checks described
 * above.
 */
static Oid
cw_extension_schema(Oid extension_oid, Oid installed_in)
{
	Oid			schema_oid = get_namespace_oid(CW_SCHEMA_NAME, true);
	HeapTuple	tuple;
	Oid			schema_owner;

	if (!OidIsValid(schema_oid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("schema \"%s\" of extension \"%s\" does not exist",
						CW_SCHEMA_NAME, CW_EXTENSION_NAME)));

	if (getExtensionOfObject(NamespaceRelationId, schema_oid) == extension_oid)
		return schema_oid;

	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema_oid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for namespace %u", schema_oid);
	schema_owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
	ReleaseSysCache(tuple);

	/* the shape of a 1.0 install, which no other role can have made */
	if (schema_oid == installed_in && superuser_arg(schema_owner))
		return schema_oid;

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("schema \"%s\" does not belong to extension \"%s\"",
					CW_SCHEMA_NAME, CW_EXTENSION_NAME),
			 errdetail("The schema is not a member of the extension, nor a schema it was installed in that a superuser owns."),
			 errhint("Another role may have created the schema before the extension was installed. Run ALTER EXTENSION %s UPDATE, which checks the schema and says how to clean it up.",
					 CW_EXTENSION_NAME)));
	return InvalidOid;			/* keep compiler quiet */
}

/*
 * Find table relname of the extension, checked as described above, and
 * fill in *table.  Raises an error if it is not the genuine one.
 */
void
cw_find_extension_table(const char *relname, CwExtensionTable *table)
{
	Oid			installed_in;
	Oid			extension_oid = cw_find_extension(&installed_in);
	Oid			schema_oid = cw_extension_schema(extension_oid, installed_in);
	Oid			relid;
	HeapTuple	tuple;
	Form_pg_class form;

	relid = get_relname_relid(relname, schema_oid);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s.%s of extension \"%s\" does not exist",
						CW_SCHEMA_NAME, relname, CW_EXTENSION_NAME)));

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	form = (Form_pg_class) GETSTRUCT(tuple);
	if (form->relkind != RELKIND_RELATION ||
		getExtensionOfObject(RelationRelationId, relid) != extension_oid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s.%s is not the table of extension \"%s\"",
						CW_SCHEMA_NAME, relname, CW_EXTENSION_NAME),
				 errdetail("pg_connwatch reads and writes only ordinary tables that are members of the extension.")));
	table->relid = relid;
	table->owner = form->relowner;
	ReleaseSysCache(tuple);

	table->qualified_name =
		quote_qualified_identifier(get_namespace_name(schema_oid), relname);
}

/*
 * SPI_connect() with search_path pinned to "pg_catalog, pg_temp" until
 * cw_spi_finish_pinned() is given the returned nest level (or the
 * transaction ends: an error unwinds the setting with it).
 */
int
cw_spi_connect_pinned(void)
{
	int			save_nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return save_nestlevel;
}

void
cw_spi_finish_pinned(int save_nestlevel)
{
	SPI_finish();
	AtEOXact_GUC(true, save_nestlevel);
}
