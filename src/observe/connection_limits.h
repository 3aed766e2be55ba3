/*-------------------------------------------------------------------------
 *
 * connection_limits.h
 *		Connection limits against their usage.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_CONNECTION_LIMITS_H
#define CW_CONNECTION_LIMITS_H

#include "observe/backend_state.h"

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
	int			reserved_max;	/* slots kept for superusers and, on 16+,
								 * pg_use_reserved_connections */
} CwServerUsage;

extern void cw_count_server(CwBackendSet *set, CwServerUsage *usage);
extern int64 cw_pct_tenths(int used, int max);
extern double cw_server_pct_used(CwBackendSet *set);
extern CwLimitedObject *cw_read_databases(int *count);
extern CwLimitedObject *cw_read_roles(int *count);
extern void cw_count_usage(CwBackendSet *set, CwLimitedObject *databases,
						   int ndatabases, CwLimitedObject *roles, int nroles);
extern int	cw_role_headroom(const CwServerUsage *usage,
							 const CwLimitedObject *role,
							 bool *can_use_reserved, const char **binding);

#endif							/* CW_CONNECTION_LIMITS_H */
