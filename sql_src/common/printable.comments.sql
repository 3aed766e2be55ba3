COMMENT ON FUNCTION connwatch.printable(text) IS
    'The text with control characters, invalid bytes and a backslash as visible escapes (\n, \xNN, \uXXXX, \\), and non-ASCII as \uXXXX unless server and client use UTF8: safe to print, one-to-one';
COMMENT ON FUNCTION connwatch.printable_literal(text) IS
    'An SQL string literal meaning exactly the text, itself printable (E''...'' with escapes where needed); NULL when the text is not valid in the server encoding';
COMMENT ON FUNCTION connwatch.printable_ident(text) IS
    'An SQL identifier meaning exactly the text, itself printable (U&"..." with escapes where needed); NULL when the text is not valid in the server encoding';
