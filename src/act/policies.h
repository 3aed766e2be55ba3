/*-------------------------------------------------------------------------
 *
 * policies.h
 *		The rows of connwatch.policies as rules for the engine.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CW_POLICIES_H
#define CW_POLICIES_H

#include "act/engine.h"

/* The enabled policies, in name order; dry_run makes every rule dry */
extern List *cw_load_policies(bool dry_run);

#endif							/* CW_POLICIES_H */
