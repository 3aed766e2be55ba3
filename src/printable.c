/*-------------------------------------------------------------------------
 *
 * printable.c
 *		Client-chosen text rendered so that it cannot forge a line, move a
 *		terminal's cursor or change the SQL around it.
 *
 * Names reach pg_connwatch from clients that nobody authenticated yet
 * (the user and database of a startup packet), from any login role
 * (application_name, a prepared transaction's GID, query text) and from
 * roles with CREATEDB (a database name in another encoding).  Whatever of
 * it pg_connwatch prints is data, shown so that:
 *
 *	- no control character reaches a terminal or a log: C0 and DEL as
 *	  \n, \r, \t or \xNN; C1, the line and paragraph separators, the
 *	  zero-width and bidirectional formatting characters as \uXXXX;
 *	- a byte that is not valid in the server encoding is \xNN;
 *	- a backslash is \\, so that the rendering is one-to-one: two different
 *	  names never print the same (metrics() relies on it for its labels);
 *	- other non-ASCII characters are shown as themselves only when the
 *	  server and the client both use UTF8, as \uXXXX (\UXXXXXXXX) otherwise,
 *	  so that every client encoding can receive the text (a role named with
 *	  an emoji cannot make diagnose() fail for a WIN1252 client).  Under a
 *	  server encoding other than UTF8, every non-ASCII byte is \xNN.
 *
 * The literal and identifier forms are SQL that means exactly the raw
 * name and is itself printable: E'...' and U&"..." with escapes where the
 * name needs them, the ordinary quoted form otherwise.  Advice that
 * diagnose() gives builds its SQL with them.
 *
 * Concurrency: none; pure functions of their arguments and of the session's
 * encodings.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "printable.h"

/* One character of the input, as the scanner sees it */
typedef struct CwChar
{
	int			len;			/* bytes it takes in the input */
	pg_wchar	code;			/* its code point; the byte when invalid */
	bool		invalid;		/* not valid in the server encoding */
	bool		ascii;
} CwChar;

/* How one kind of quoted SQL token writes what it must escape */
typedef struct CwQuoting
{
	const char *open;			/* E' or U&" */
	const char *close;
	char		quote;			/* the quote character inside */
	const char *quote_escape;	/* how that quote is written */
	const char *control_format; /* a character below 0x20, or DEL */
	const char *bmp_format;		/* a code point up to U+FFFF */
	const char *astral_format;	/* one above */
} CwQuoting;

/*
 * E'...': valid whatever standard_conforming_strings says; a quote is
 * doubled, not \', which backslash_quote may refuse
 */
static const CwQuoting cw_literal_quoting = {
	"E'", "'", '\'', "''", "\\x%02x", "\\u%04x", "\\U%08x"
};

/* U&"...": the escapes of identifiers do not depend on any setting */
static const CwQuoting cw_ident_quoting = {
	"U&\"", "\"", '"', "\"\"", "\\%04x", "\\%04x", "\\+%06x"
};

static CwChar cw_next_char(const char *s, int left, bool utf8);
static char *cw_quote_printable(const char *s, int len, const CwQuoting *q);
static bool cw_is_control(const CwChar *c);
static bool cw_is_hidden(pg_wchar code);
static bool cw_needs_escape(const CwChar *c, bool keep_unicode);
static bool cw_all_plain(const char *s, int len, bool keep_unicode,
						 bool *invalid);

/*
 * Whether non-ASCII characters may go out as themselves: the server's text
 * is UTF8 and the client takes UTF8 without conversion.
 */
bool
cw_printable_keeps_unicode(void)
{
	return GetDatabaseEncoding() == PG_UTF8 &&
		pg_get_client_encoding() == PG_UTF8;
}

void
cw_append_printable(StringInfo buf, const char *s, int len, bool keep_unicode)
{
	bool		utf8 = (GetDatabaseEncoding() == PG_UTF8);

	while (len > 0)
	{
		CwChar		c = cw_next_char(s, len, utf8);

		if (c.invalid || cw_is_control(&c))
		{
			if (c.code == '\n')
				appendStringInfoString(buf, "\\n");
			else if (c.code == '\r')
				appendStringInfoString(buf, "\\r");
			else if (c.code == '\t')
				appendStringInfoString(buf, "\\t");
			else
				appendStringInfo(buf, "\\x%02x", (unsigned int) c.code);
		}
		else if (c.code == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (!cw_needs_escape(&c, keep_unicode))
			appendBinaryStringInfo(buf, s, c.len);
		else if (c.code <= 0xffff)
			appendStringInfo(buf, "\\u%04x", (unsigned int) c.code);
		else
			appendStringInfo(buf, "\\U%08x", (unsigned int) c.code);
		s += c.len;
		len -= c.len;
	}
}

char *
cw_printable(const char *s, bool keep_unicode)
{
	StringInfoData buf;

	initStringInfo(&buf);
	cw_append_printable(&buf, s, strlen(s), keep_unicode);
	return buf.data;
}

/*
 * s as one quoted token in the given style, or NULL when s cannot be
 * written so: it is not valid in the server encoding, or it needs a \u
 * escape outside UTF8.
 */
static char *
cw_quote_printable(const char *s, int len, const CwQuoting *q)
{
	bool		keep = cw_printable_keeps_unicode();
	bool		utf8 = (GetDatabaseEncoding() == PG_UTF8);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, q->open);
	while (len > 0)
	{
		CwChar		c = cw_next_char(s, len, utf8);

		if (c.invalid)
		{
			pfree(buf.data);
			return NULL;
		}
		if (c.code == (pg_wchar) q->quote)
			appendStringInfoString(&buf, q->quote_escape);
		else if (c.code == '\\')
			appendStringInfoString(&buf, "\\\\");
		else if (cw_is_control(&c))
			appendStringInfo(&buf, q->control_format, (unsigned int) c.code);
		else if (!cw_needs_escape(&c, keep))
			appendBinaryStringInfo(&buf, s, c.len);
		else if (!utf8)
		{
			pfree(buf.data);
			return NULL;
		}
		else if (c.code <= 0xffff)
			appendStringInfo(&buf, q->bmp_format, (unsigned int) c.code);
		else
			appendStringInfo(&buf, q->astral_format, (unsigned int) c.code);
		s += c.len;
		len -= c.len;
	}
	appendStringInfoString(&buf, q->close);
	return buf.data;
}

/*
 * An SQL literal for s: quote_literal's form when s has nothing to escape,
 * E'...' with \x, \u and \U escapes otherwise.
 */
char *
cw_printable_literal(const char *s, int len)
{
	bool		invalid;

	if (cw_all_plain(s, len, cw_printable_keeps_unicode(), &invalid))
		return quote_literal_cstr(pnstrdup(s, len));
	return invalid ? NULL : cw_quote_printable(s, len, &cw_literal_quoting);
}

/*
 * An SQL identifier for s: quote_identifier's form when s has nothing to
 * escape, U&"..." with \XXXX and \+XXXXXX escapes otherwise.
 */
char *
cw_printable_ident(const char *s, int len)
{
	bool		invalid;

	if (cw_all_plain(s, len, cw_printable_keeps_unicode(), &invalid))
		return pstrdup(quote_identifier(pnstrdup(s, len)));
	return invalid ? NULL : cw_quote_printable(s, len, &cw_ident_quoting);
}

/* The character at s, of at most left bytes */
static CwChar
cw_next_char(const char *s, int left, bool utf8)
{
	CwChar		c;
	unsigned char first = (unsigned char) s[0];

	c.len = 1;
	c.code = first;
	c.invalid = false;
	c.ascii = (first < 0x80);
	if (c.ascii)
		return c;
	if (!utf8)
	{
		/* outside UTF8, every non-ASCII byte is shown as \xNN */
		c.invalid = true;
		return c;
	}
	c.len = pg_utf_mblen((const unsigned char *) s);
	if (c.len > left || !pg_utf8_islegal((const unsigned char *) s, c.len))
	{
		c.len = 1;
		c.invalid = true;
		return c;
	}
	c.code = utf8_to_unicode((const unsigned char *) s);
	return c;
}

/* An ASCII control character: C0 or DEL */
static bool
cw_is_control(const CwChar *c)
{
	return c->ascii && (c->code < 0x20 || c->code == 0x7f);
}

/*
 * Characters a terminal does not show as themselves: C1 controls, the soft
 * hyphen, the line and paragraph separators, zero-width and bidirectional
 * formatting characters, the byte order mark, interlinear annotations and
 * tags.
 */
static bool
cw_is_hidden(pg_wchar code)
{
	return (code >= 0x80 && code <= 0x9f) ||
		code == 0xad ||
		code == 0x61c ||
		code == 0x180e ||
		(code >= 0x200b && code <= 0x200f) ||
		(code >= 0x2028 && code <= 0x202e) ||
		(code >= 0x2060 && code <= 0x206f) ||
		code == 0xfeff ||
		(code >= 0xfff9 && code <= 0xfffb) ||
		(code >= 0xe0000 && code <= 0xe007f);
}

/* Whether a valid non-control character must be written as \u or \U */
static bool
cw_needs_escape(const CwChar *c, bool keep_unicode)
{
	if (c->ascii)
		return false;
	return !keep_unicode || cw_is_hidden(c->code);
}

/*
 * Whether s can be quoted the ordinary way: no control, hidden or (when
 * they must be escaped) non-ASCII character and no invalid byte.
 */
static bool
cw_all_plain(const char *s, int len, bool keep_unicode, bool *invalid)
{
	bool		utf8 = (GetDatabaseEncoding() == PG_UTF8);
	bool		plain = true;

	*invalid = false;
	while (len > 0)
	{
		CwChar		c = cw_next_char(s, len, utf8);

		if (c.invalid)
		{
			*invalid = true;
			return false;
		}
		if (cw_is_control(&c) ||
			cw_needs_escape(&c, keep_unicode))
			plain = false;
		s += c.len;
		len -= c.len;
	}
	return plain;
}
