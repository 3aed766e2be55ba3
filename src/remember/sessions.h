/*-------------------------------------------------------------------------
 *
 * sessions.h
 *		How client sessions start and end: the peaks of concurrent
 *		sessions and the ledger of how sessions ended.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_SESSIONS_H
#define CW_SESSIONS_H

#include "libpq/libpq-be.h"

#include "remember/shared_state.h"

extern void cw_sessions_preload(void);
extern void cw_session_authenticated(const Port *port);
extern bool cw_session_is_established(void);
extern void cw_session_note_fatal(int sqlerrcode);
extern void cw_session_note_transaction_warning(void);
extern void cw_mark_termination(int pid, TimestampTz backend_start,
								const char *policy);
extern const char *cw_ending_reason_label(CwEndingReason reason);
extern const char *cw_peak_scope_label(CwPeakScope scope);
extern CwRestoreOutcome cw_restore_ending(const CwEndingEntry *saved);
extern CwRestoreOutcome cw_restore_peak(const CwPeakEntry *saved);
extern void cw_reset_endings(void);
extern void cw_reset_peaks(void);

#endif							/* CW_SESSIONS_H */
