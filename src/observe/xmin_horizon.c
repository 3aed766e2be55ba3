/*-------------------------------------------------------------------------
 *
 * xmin_horizon.c
 *		Everything that holds the xmin horizon back, oldest first.
 *
 * VACUUM cannot remove a row version that some transaction might still
 * see.  The oldest such transaction is the xmin horizon, and it is held
 * back by: backends (their xid, or the xmin of their snapshot), prepared
 * transactions, replication slots (xmin for data, catalog_xmin for the
 * catalogs) and walsenders carrying hot_standby_feedback without a slot.
 * This file lists them all, and tells the views and the rules which one
 * is the oldest; sql/horizon_view.c makes the rows of connwatch.xmin_horizon.
 *
 * Concurrency: backends come from cw_read_backends() (see there).  The
 * dummy PGPROCs of prepared transactions are read without a lock; a dummy
 * whose transaction has finished keeps its stale xid, so an xid only
 * counts while TransactionIdIsInProgress() says it is still running.
 * Replication slots are read under ReplicationSlotControlLock (shared) and
 * each slot's spinlock, as pg_get_replication_slots() does.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/spin.h"

#include "compat.h"
#include "observe/xmin_horizon.h"

static const char *const cw_holder_type_names[] = {
	"backend",
	"prepared_transaction",
	"replication_slot",
	"replication_slot_catalog",
	"walsender_feedback"
};

static List *cw_collect_holders(CwBackendSet *set);
static int	cw_holder_cmp(const ListCell *a, const ListCell *b);

/*
 * The oldest transaction ID held by anything but the calling session: what
 * VACUUM of an ordinary table cannot see past.  Catalog-only holds
 * (catalog_xmin of logical slots) are left out.  InvalidTransactionId when
 * nothing holds the horizon.
 */
TransactionId
cw_oldest_horizon_holder(CwBackendSet *set)
{
	TransactionId oldest = InvalidTransactionId;
	ListCell   *lc;

	foreach(lc, cw_collect_holders(set))
	{
		CwHorizonHolder *holder = lfirst(lc);

		if (holder->type == CW_HOLDER_SLOT_CATALOG)
			continue;
		if (holder->backend != NULL && holder->backend->pid == MyProcPid)
			continue;
		if (!TransactionIdIsValid(oldest) ||
			TransactionIdPrecedes(holder->xmin, oldest))
			oldest = holder->xmin;
	}
	return oldest;
}

static CwHorizonHolder *
cw_new_holder(List **holders, CwHolderType type, TransactionId xmin)
{
	CwHorizonHolder *holder = palloc0(sizeof(CwHorizonHolder));

	holder->type = type;
	holder->xmin = xmin;
	*holders = lappend(*holders, holder);
	return holder;
}

static List *
cw_collect_holders(CwBackendSet *set)
{
	List	   *holders = NIL;
	int			i;

	/* backends, and walsenders holding a standby's feedback xmin */
	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		TransactionId xmin = cw_backend_horizon_xid(be);
		CwHorizonHolder *holder;

		if (!TransactionIdIsValid(xmin))
			continue;

		holder = cw_new_holder(&holders,
							   be->backend_type == B_WAL_SENDER ?
							   CW_HOLDER_WALSENDER : CW_HOLDER_BACKEND,
							   xmin);
		holder->pid = be->pid;
		holder->datid = be->datid;
		holder->userid = be->userid;
		holder->backend = be;
		snprintf(holder->name, NAMEDATALEN, "%d", be->pid);
	}

	/* prepared transactions, through their dummy PGPROCs */
	for (i = 0; i < max_prepared_xacts; i++)
	{
		PGPROC	   *proc = &PreparedXactProcs[i];
		TransactionId xid;
		TransactionId xmin;
		uint8		status_flags;
		CwHorizonHolder *holder;

		cw_proc_xids(proc, &xid, &xmin, &status_flags);

		if (!TransactionIdIsNormal(xid) || !TransactionIdIsInProgress(xid))
			continue;

		holder = cw_new_holder(&holders, CW_HOLDER_PREPARED, xid);
		holder->datid = proc->databaseId;
		holder->userid = proc->roleId;
		snprintf(holder->name, NAMEDATALEN, "%u", xid);
	}

	/* replication slots: the xmins the horizon computation really uses */
	if (ReplicationSlotCtl != NULL)
	{
		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		for (i = 0; i < max_replication_slots; i++)
		{
			ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];
			TransactionId xmin;
			TransactionId catalog_xmin;
			NameData	name;
			Oid			datid;
			int			active_pid;
			CwHorizonHolder *holder;

			if (!slot->in_use)
				continue;

			SpinLockAcquire(&slot->mutex);
			xmin = slot->effective_xmin;
			catalog_xmin = slot->effective_catalog_xmin;
			name = slot->data.name;
			datid = slot->data.database;
			active_pid = cw_slot_active_pid(slot);
			SpinLockRelease(&slot->mutex);

			if (TransactionIdIsValid(xmin))
			{
				holder = cw_new_holder(&holders, CW_HOLDER_SLOT, xmin);
				strlcpy(holder->name, NameStr(name), NAMEDATALEN);
				holder->datid = datid;
				holder->pid = active_pid;
			}
			if (TransactionIdIsValid(catalog_xmin))
			{
				holder = cw_new_holder(&holders, CW_HOLDER_SLOT_CATALOG,
									   catalog_xmin);
				strlcpy(holder->name, NameStr(name), NAMEDATALEN);
				holder->datid = datid;
				holder->pid = active_pid;
			}
		}
		LWLockRelease(ReplicationSlotControlLock);
	}

	return holders;
}

/* Oldest first, in xid order (which respects wraparound) */
static int
cw_holder_cmp(const ListCell *a, const ListCell *b)
{
	CwHorizonHolder *ha = lfirst(a);
	CwHorizonHolder *hb = lfirst(b);

	if (TransactionIdPrecedes(ha->xmin, hb->xmin))
		return -1;
	if (TransactionIdPrecedes(hb->xmin, ha->xmin))
		return 1;
	if (ha->type != hb->type)
		return ha->type < hb->type ? -1 : 1;
	return strcmp(ha->name, hb->name);
}

/* Everything that holds the horizon back, oldest first */
List *
cw_horizon_holders(CwBackendSet *set)
{
	List	   *holders = cw_collect_holders(set);

	list_sort(holders, cw_holder_cmp);
	return holders;
}

const char *
cw_holder_type_name(CwHolderType type)
{
	return cw_holder_type_names[type];
}
