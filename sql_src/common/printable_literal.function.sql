CREATE FUNCTION connwatch.printable_literal(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_literal_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION connwatch.printable_literal(text) IS
    'An SQL string literal meaning exactly the text, itself printable (E''...'' with escapes where needed); NULL when the text is not valid in the server encoding';
