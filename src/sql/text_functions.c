/*-------------------------------------------------------------------------
 *
 * text_functions.c
 *		The SQL functions that render client-chosen text (printable.c):
 *		connwatch.printable(), printable_literal(), printable_ident().
 *
 * diagnose() and metrics() call them on every name and text they quote,
 * so they are cheap: one pass over the input, no catalog access.  They are
 * STABLE, not IMMUTABLE: whether non-ASCII characters are shown as
 * themselves depends on the session's client_encoding.
 *
 * Concurrency: none.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "compat.h"
#include "printable.h"

PG_FUNCTION_INFO_V1(cw_printable_text);
PG_FUNCTION_INFO_V1(cw_printable_literal_text);
PG_FUNCTION_INFO_V1(cw_printable_ident_text);

/* connwatch.printable(text): the text with its controls as visible escapes */
Datum
cw_printable_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	StringInfoData buf;

	initStringInfo(&buf);
	cw_append_printable(&buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
						cw_printable_keeps_unicode());
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* connwatch.printable_literal(text): a printable SQL literal, or NULL */
Datum
cw_printable_literal_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *quoted = cw_printable_literal(VARDATA_ANY(t),
											  VARSIZE_ANY_EXHDR(t));

	if (quoted == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(quoted));
}

/* connwatch.printable_ident(text): a printable SQL identifier, or NULL */
Datum
cw_printable_ident_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *quoted = cw_printable_ident(VARDATA_ANY(t),
											VARSIZE_ANY_EXHDR(t));

	if (quoted == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(quoted));
}
