/*-------------------------------------------------------------------------
 *
 * persistence.h
 *		The ledgers on disk: saved at a clean exit and periodically by the
 *		worker, read back when the postmaster creates them.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_PERSISTENCE_H
#define CW_PERSISTENCE_H

extern int	cw_ledger_persist_interval_s;

extern void cw_persistence_preload(void);
extern void cw_persist_ledgers_if_due(void);
extern void cw_forget_saved_ledgers(void);

#endif							/* CW_PERSISTENCE_H */
