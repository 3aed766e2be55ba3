--
-- Client-chosen text as data (src/printable.c): every name and text that
-- diagnose() and metrics() quote goes through these.
--
CREATE FUNCTION connwatch.printable(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
