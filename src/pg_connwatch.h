/*-------------------------------------------------------------------------
 *
 * pg_connwatch.h
 *		Settings shared by every part of pg_connwatch.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef PG_CONNWATCH_H
#define PG_CONNWATCH_H

/* GUC variables, defined in pg_connwatch.c */
extern int	cw_long_transaction_threshold_ms;
extern double cw_warning_pct;
extern double cw_critical_pct;
extern char *cw_protected_roles;
extern char *cw_protected_applications;
extern char *cw_protected_application_roles;

/*
 * A list setting, parsed once by its check hook: count names, each
 * NUL-terminated, one after the other.
 */
typedef struct CwNameList
{
	int			count;
	char		names[FLEXIBLE_ARRAY_MEMBER];
} CwNameList;

/*
 * The parsed protected_roles, protected_applications and
 * protected_application_roles (never NULL)
 */
extern const CwNameList *cw_protected_role_names;
extern const CwNameList *cw_protected_application_names;
extern const CwNameList *cw_protected_application_role_names;
extern int	cw_max_terminations_per_run;
extern int	cw_cancel_grace_period_ms;
extern int	cw_audit_retention_min;
extern int	cw_debug_signal_barrier;

#endif							/* PG_CONNWATCH_H */
