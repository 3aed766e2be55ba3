/*-------------------------------------------------------------------------
 *
 * persistence.h
 *		The ledgers across a clean restart.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CW_PERSISTENCE_H
#define CW_PERSISTENCE_H

extern void cw_persistence_preload(void);

#endif							/* CW_PERSISTENCE_H */
