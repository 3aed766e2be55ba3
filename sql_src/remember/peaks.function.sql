CREATE FUNCTION connwatch.peaks(
    OUT scope text,
    OUT name text,
    OUT current integer,
    OUT peak integer,
    OUT peak_at timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_peaks'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
