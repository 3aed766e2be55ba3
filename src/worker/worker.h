/*-------------------------------------------------------------------------
 *
 * worker.h
 *		pg_connwatch's background worker: samples the history and, when
 *		asked to, enforces the policies from inside the server.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_WORKER_H
#define CW_WORKER_H

#include "fmgr.h"

extern void cw_worker_preload(void);
extern PGDLLEXPORT void cw_worker_main(Datum main_arg);
extern PGDLLEXPORT void cw_enforcer_main(Datum main_arg);

#endif							/* CW_WORKER_H */
