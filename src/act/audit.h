/*-------------------------------------------------------------------------
 *
 * audit.h
 *		The audit trail of every real cancel and termination.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_AUDIT_H
#define CW_AUDIT_H

#include "act/extension_tables.h"
#include "act/signal.h"
#include "observe/backend_state.h"

/* Where a run records its actions; opened before its first signal */
typedef struct CwAuditTrail
{
	bool		writable;		/* false on a hot standby: LOG lines only */
	CwExtensionTable table;		/* connwatch.terminations, when writable */
} CwAuditTrail;

extern void cw_audit_open(CwAuditTrail *audit);
extern void cw_audit_lock(const CwAuditTrail *audit);
extern void cw_log_action(const char *policy, const CwBackend *be,
						  CwSignalKind kind, const char *reason,
						  TimestampTz signalled_at);
extern void cw_record_action(const CwAuditTrail *audit, const char *policy,
							 const CwBackend *be, CwSignalKind kind,
							 const char *reason, TimestampTz signalled_at);
extern void cw_prune_audit(const CwAuditTrail *audit);

#endif							/* CW_AUDIT_H */
