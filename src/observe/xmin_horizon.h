/*-------------------------------------------------------------------------
 *
 * xmin_horizon.h
 *		Everything that holds the xmin horizon back.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_XMIN_HORIZON_H
#define CW_XMIN_HORIZON_H

#include "observe/backend_state.h"

typedef enum CwHolderType
{
	CW_HOLDER_BACKEND,
	CW_HOLDER_PREPARED,
	CW_HOLDER_SLOT,
	CW_HOLDER_SLOT_CATALOG,
	CW_HOLDER_WALSENDER
} CwHolderType;

typedef struct CwHorizonHolder
{
	CwHolderType type;
	TransactionId xmin;
	char		name[NAMEDATALEN];	/* slot name, or the xid of a prepared
									 * transaction until the view joins its
									 * gid, or a backend's pid */
	int			pid;			/* 0 if none */
	Oid			datid;
	Oid			userid;
	CwBackend  *backend;		/* for backend and walsender holders */
} CwHorizonHolder;

extern List *cw_horizon_holders(CwBackendSet *set);
extern TransactionId cw_oldest_horizon_holder(CwBackendSet *set);
extern const char *cw_holder_type_name(CwHolderType type);

#endif							/* CW_XMIN_HORIZON_H */
