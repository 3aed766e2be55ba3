-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_connwatch UPDATE TO '@VERSION@'" to load this file. \quit
