/*-------------------------------------------------------------------------
 *
 * srf.h
 *		What every SQL-callable function of pg_connwatch does first: set
 *		up its result set and check its arguments.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_SRF_H
#define CW_SRF_H

#include "fmgr.h"
#include "funcapi.h"

extern ReturnSetInfo *cw_begin_srf(FunctionCallInfo fcinfo, int ncols);
extern int64 cw_older_than_arg(FunctionCallInfo fcinfo, int argno);
extern bool cw_bool_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern text *cw_pattern_arg(FunctionCallInfo fcinfo, int argno);

#endif							/* CW_SRF_H */
