/*-------------------------------------------------------------------------
 *
 * lock_graph.h
 *		Who blocks whom: the lock-wait graph of a reading of backend state.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_LOCK_GRAPH_H
#define CW_LOCK_GRAPH_H

#include "observe/backend_state.h"

extern void cw_fill_blockers(CwBackendSet *set);
extern void cw_fill_lock_counts(CwBackendSet *set);

#endif							/* CW_LOCK_GRAPH_H */
