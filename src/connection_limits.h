/*-------------------------------------------------------------------------
 *
 * connection_limits.h
 *		Connection limits against their usage.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CW_CONNECTION_LIMITS_H
#define CW_CONNECTION_LIMITS_H

#include "backend_state.h"

extern double cw_server_pct_used(CwBackendSet *set);

#endif							/* CW_CONNECTION_LIMITS_H */
