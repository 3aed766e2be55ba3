--
-- connwatch.printable(), printable_literal(), printable_ident(): client-chosen
-- text rendered so that it cannot forge a line, move a cursor or change the
-- SQL around it (ASCII cases here: they do not depend on the encodings;
-- test/t/404_hostile_names.pl covers the rest).
--
SET client_min_messages = warning;

-- Control characters as visible escapes, a backslash doubled, the rest kept
SELECT connwatch.printable(E'line1\nline2\r\ttab') AS newline,
       connwatch.printable(E'\x1b[2J\x1b]0;title\x07') AS escape_sequences,
       connwatch.printable(E'del\x7f') AS del,
       connwatch.printable('a\b') AS backslash,
       connwatch.printable('plain text, ''quotes'' and "doubles"') AS plain;

-- One-to-one: a raw ESC and the text "\x1b" print differently
SELECT connwatch.printable(E'\x1b') <> connwatch.printable('\x1b') AS one_to_one;

-- NULL in, NULL out
SELECT connwatch.printable(NULL) IS NULL AS strict;

-- Literals: the ordinary form when nothing needs escaping, E'...' otherwise
SELECT connwatch.printable_literal('it''s') AS plain,
       connwatch.printable_literal('a\b') AS backslash,
       connwatch.printable_literal(E'gid\n''; ALTER ROLE x SUPERUSER; --\x1b[2J') AS hostile;

-- Identifiers: quote_ident's form, U&"..." when a control character is there
SELECT connwatch.printable_ident('plain') AS plain,
       connwatch.printable_ident('Mixed Case') AS mixed,
       connwatch.printable_ident(E'r\x1b[2J"x\\') AS hostile;

-- Each means exactly its text, evaluated as SQL
CREATE FUNCTION pg_temp.roundtrip(t text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    same boolean;
BEGIN
    EXECUTE format('SELECT %s = $1', connwatch.printable_literal(t)) INTO same USING t;
    EXECUTE format('CREATE TEMP TABLE %s ()', connwatch.printable_ident(t));
    same := same AND EXISTS (SELECT 1 FROM pg_class WHERE relname = t::name
                             AND relpersistence = 't');
    EXECUTE format('DROP TABLE %s', connwatch.printable_ident(t));
    RETURN same;
END
$$;
SELECT connwatch.printable(t) AS input_printed, pg_temp.roundtrip(t::text) AS same
FROM (VALUES (E'gid\n''; ALTER ROLE x SUPERUSER; --\x1b[2J'),
             (E'a\\b"c''d'), (E'tab\there'), (E'\x7f\x01'), ('plain'),
             (E'\x01a\x1bF\x0a0')) AS v(t)
ORDER BY connwatch.printable(t) COLLATE "C";

-- Their output carries no control character
SELECT count(*) AS with_control_characters
FROM (VALUES (E'x\ny'), (E'\x1b'), (E'a\rb')) AS v(t)
CROSS JOIN LATERAL (VALUES (connwatch.printable(t)), (connwatch.printable_literal(t)),
                           (connwatch.printable_ident(t))) AS o(s)
WHERE o.s ~ '[\x01-\x1f\x7f]';
