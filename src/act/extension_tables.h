/*-------------------------------------------------------------------------
 *
 * extension_tables.h
 *		pg_connwatch's own tables, found through the extension's catalog
 *		entry, and SQL run against them with a pinned search_path.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_EXTENSION_TABLES_H
#define CW_EXTENSION_TABLES_H

/* One of the extension's tables, checked to be the genuine one */
typedef struct CwExtensionTable
{
	Oid			relid;
	Oid			owner;
	char	   *qualified_name; /* quoted schema.table, for SQL text */
} CwExtensionTable;

extern void cw_find_extension_table(const char *relname,
									CwExtensionTable *table);
extern int	cw_spi_connect_pinned(void);
extern void cw_spi_finish_pinned(int save_nestlevel);

#endif							/* CW_EXTENSION_TABLES_H */
