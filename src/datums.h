/*-------------------------------------------------------------------------
 *
 * datums.h
 *		A reading of backend state as SQL values.
 *
 * The views build their rows from these, and the audit trail hands the
 * same values to SPI, so a session reads the same in both.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_DATUMS_H
#define CW_DATUMS_H

#include "observe/backend_state.h"

extern Datum cw_name_datum(const NameData *name, bool *isnull);
extern Datum cw_database_datum(CwNames *names, Oid dbid, bool *isnull);
extern Datum cw_role_datum(CwNames *names, Oid roleid, bool *isnull);
extern Datum cw_state_datum(BackendState state, bool *isnull);
extern void cw_client_addr_datums(const SockAddr *addr, Datum *host,
								  bool *host_null, Datum *port,
								  bool *port_null);
extern Datum cw_client_host_datum(const SockAddr *addr, bool *isnull);
extern Datum cw_query_datum(const CwBackend *be, bool *isnull);
extern Datum cw_age_datum(TimestampTz now, TimestampTz since, bool *isnull);
extern Datum cw_xid_age_datum(TransactionId age_base, TransactionId xid,
							  bool *isnull);
extern Datum cw_pid_array_datum(List *pids);

/*
 * The leading seven columns of idle_in_transaction, long_transactions and
 * connwatch.action: pid, backend_start, datname, usename, application_name,
 * client_addr, state.  backend_start, client_addr and state are NULL for a
 * session the caller may not see.
 */
extern void cw_identity_datums(CwNames *names, const CwBackend *be,
							   Datum *values, bool *nulls);

#endif							/* CW_DATUMS_H */
