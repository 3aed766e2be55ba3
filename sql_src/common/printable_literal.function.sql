CREATE FUNCTION connwatch.printable_literal(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_literal_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
