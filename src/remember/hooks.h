/*-------------------------------------------------------------------------
 *
 * hooks.h
 *		The hooks of the remember layer on the login and logging paths.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_HOOKS_H
#define CW_HOOKS_H

extern void cw_hooks_preload(void);

#endif							/* CW_HOOKS_H */
