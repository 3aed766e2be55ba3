/*-------------------------------------------------------------------------
 *
 * lock_graph.c
 *		Who blocks whom, and how many locks each backend holds.
 *
 * pg_blocking_pids() is the authority on lock waits: it knows about hard
 * blockers (a conflicting lock held), soft blockers (a conflicting request
 * ahead in the wait queue) and parallel lock groups.  A plain-SQL report
 * calls it once per backend; each call takes every lock-manager partition
 * lock.  We call it only for backends whose wait event says they wait on a
 * heavyweight lock, and derive "blocking" by inverting the answers.
 *
 * Concurrency: pg_blocking_pids() and GetLockStatusData() take the
 * lock-manager partition locks themselves; nothing is held here between
 * calls, so the graph is a set of per-waiter snapshots, like the SQL one.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "port/pg_bitutils.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"

#include "observe/backend_state.h"
#include "observe/lock_graph.h"

/*
 * Fill blocked_by for every backend waiting on a heavyweight lock, and
 * blocking for every backend that appears in one of those lists.
 */
void
cw_fill_blockers(CwBackendSet *set)
{
	int			i;

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *waiter = &set->backends[i];
		ArrayType  *blockers;
		Datum	   *pids;
		int			npids;
		int			j;

		if (!cw_waits_on_lock(waiter))
			continue;

		CHECK_FOR_INTERRUPTS();

		blockers = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids,
														  Int32GetDatum(waiter->pid)));
		deconstruct_array(blockers, INT4OID, sizeof(int32), true,
						  TYPALIGN_INT, &pids, NULL, &npids);

		for (j = 0; j < npids; j++)
		{
			int			blocker_pid = DatumGetInt32(pids[j]);
			CwBackend  *blocker;

			waiter->blocked_by = lappend_int(waiter->blocked_by, blocker_pid);

			blocker = cw_backend_by_pid(set, blocker_pid);
			if (blocker != NULL)
				blocker->blocking = list_append_unique_int(blocker->blocking,
														   waiter->pid);
		}
	}
}

/*
 * Count the heavyweight locks each backend holds, one per granted mode, as
 * pg_locks shows them (predicate locks are not heavyweight locks and are
 * left out).
 */
void
cw_fill_lock_counts(CwBackendSet *set)
{
	LockData   *lock_data = GetLockStatusData();
	int			i;

	for (i = 0; i < lock_data->nelements; i++)
	{
		LockInstanceData *instance = &lock_data->locks[i];
		CwBackend  *holder;

		if (instance->holdMask == 0)
			continue;

		holder = cw_backend_by_pid(set, instance->pid);
		if (holder != NULL)
			holder->locks_held += pg_popcount32((uint32) instance->holdMask);
	}
}
