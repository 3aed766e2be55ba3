/*-------------------------------------------------------------------------
 *
 * xmin_horizon.h
 *		Everything that holds the xmin horizon back.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CW_XMIN_HORIZON_H
#define CW_XMIN_HORIZON_H

#include "backend_state.h"

extern TransactionId cw_oldest_horizon_holder(CwBackendSet *set);

#endif							/* CW_XMIN_HORIZON_H */
