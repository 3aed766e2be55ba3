/*-------------------------------------------------------------------------
 *
 * pg_connwatch.h
 *		Settings shared by every part of pg_connwatch.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_CONNWATCH_H
#define PG_CONNWATCH_H

/* GUC variables, defined in pg_connwatch.c */
extern int	cw_long_transaction_threshold_ms;
extern double cw_warning_pct;
extern double cw_critical_pct;

#endif							/* PG_CONNWATCH_H */
