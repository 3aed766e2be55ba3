--
-- Client-chosen text as data (src/printable.c): every name and text that
-- diagnose() and metrics() quote goes through these.
--
CREATE FUNCTION connwatch.printable(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION connwatch.printable(text) IS
    'The text with control characters, invalid bytes and a backslash as visible escapes (\n, \xNN, \uXXXX, \\), and non-ASCII as \uXXXX unless server and client use UTF8: safe to print, one-to-one';
