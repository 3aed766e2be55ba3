CREATE FUNCTION connwatch.printable_ident(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_ident_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
