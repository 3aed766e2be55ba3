/*-------------------------------------------------------------------------
 *
 * policies.h
 *		The rows of connwatch.policies as rules for the engine.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_POLICIES_H
#define CW_POLICIES_H

#include "act/engine.h"

/*
 * The enabled policies, in name order; dry_run makes every rule dry.  The
 * rows that fail their checks are appended to *failures (CwRuleFailure).
 */
extern List *cw_load_policies(bool dry_run, List **failures);

#endif							/* CW_POLICIES_H */
