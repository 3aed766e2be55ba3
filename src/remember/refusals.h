/*-------------------------------------------------------------------------
 *
 * refusals.h
 *		The ledger of refused connection attempts.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_REFUSALS_H
#define CW_REFUSALS_H

#include "libpq/libpq-be.h"

#include "remember/shared_state.h"

extern CwRefusalCause cw_refusal_cause(int sqlerrcode, const char *message_id);
extern void cw_count_refusal(CwRefusalCause cause, const Port *port);
extern const char *cw_refusal_cause_label(CwRefusalCause cause);
extern CwRestoreOutcome cw_restore_refusal(const CwRefusalKey *saved,
										   uint64 count, TimestampTz first_at,
										   TimestampTz last_at);
extern void cw_reset_refusals(void);

#endif							/* CW_REFUSALS_H */
