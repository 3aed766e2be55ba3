CREATE FUNCTION connwatch.printable_ident(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_ident_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION connwatch.printable_ident(text) IS
    'An SQL identifier meaning exactly the text, itself printable (U&"..." with escapes where needed); NULL when the text is not valid in the server encoding';
