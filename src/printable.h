/*-------------------------------------------------------------------------
 *
 * printable.h
 *		Client-chosen text rendered so that it cannot forge a line, move a
 *		terminal's cursor or change the SQL around it.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_PRINTABLE_H
#define CW_PRINTABLE_H

#include "lib/stringinfo.h"

/* Whether non-ASCII characters may be shown as themselves right now */
extern bool cw_printable_keeps_unicode(void);

/* Append s (len bytes, in the server encoding) to buf, escaped */
extern void cw_append_printable(StringInfo buf, const char *s, int len,
								bool keep_unicode);

/* The same as a palloc'd string */
extern char *cw_printable(const char *s, bool keep_unicode);

/*
 * s as an SQL literal or identifier that is itself printable; NULL when s
 * is not valid in the server encoding (it cannot be typed at all).
 */
extern char *cw_printable_literal(const char *s, int len);
extern char *cw_printable_ident(const char *s, int len);

#endif							/* CW_PRINTABLE_H */
