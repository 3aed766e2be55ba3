/*-------------------------------------------------------------------------
 *
 * hooks.h
 *		The hooks of the remember layer on the login and logging paths.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CW_HOOKS_H
#define CW_HOOKS_H

extern void cw_hooks_preload(void);

#endif							/* CW_HOOKS_H */
