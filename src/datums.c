/*-------------------------------------------------------------------------
 *
 * datums.c
 *		A reading of backend state as SQL values.
 *
 * Every value is NULL where pg_stat_activity shows NULL: an unset
 * timestamp, an unknown address, a name whose object is gone, a query text
 * the reading did not copy (backend_state.c records which it copied; a
 * backend exiting while it was read may have cleared any field).
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include "catalog/pg_type.h"
#include "common/ip.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "datums.h"
#include "printable.h"

Datum
cw_name_datum(const NameData *name, bool *isnull)
{
	*isnull = (name == NULL);
	return PointerGetDatum(name);
}

Datum
cw_database_datum(CwNames *names, Oid dbid, bool *isnull)
{
	return cw_name_datum(cw_database_name(names, dbid), isnull);
}

Datum
cw_role_datum(CwNames *names, Oid roleid, bool *isnull)
{
	return cw_name_datum(cw_role_name(names, roleid), isnull);
}

Datum
cw_state_datum(BackendState state, bool *isnull)
{
	const char *name = cw_state_name(state);

	*isnull = (name == NULL);
	return name ? CStringGetTextDatum(name) : (Datum) 0;
}

/*
 * client_addr and client_port as pg_stat_activity shows them: NULL and NULL
 * when unknown, NULL and -1 for a Unix socket.
 */
void
cw_client_addr_datums(const SockAddr *addr, Datum *host, bool *host_null,
					  Datum *port, bool *port_null)
{
	*host_null = true;
	*port_null = true;

	if (addr->addr.ss_family == AF_INET || addr->addr.ss_family == AF_INET6)
	{
		char		remote_host[NI_MAXHOST];
		char		remote_port[NI_MAXSERV];

		remote_host[0] = '\0';
		remote_port[0] = '\0';
		if (pg_getnameinfo_all(&addr->addr, addr->salen,
							   remote_host, sizeof(remote_host),
							   remote_port, sizeof(remote_port),
							   NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		{
			clean_ipv6_addr(addr->addr.ss_family, remote_host);
			*host = DirectFunctionCall1(inet_in, CStringGetDatum(remote_host));
			*host_null = false;
			*port = Int32GetDatum(atoi(remote_port));
			*port_null = false;
		}
	}
	else if (addr->addr.ss_family == AF_UNIX)
	{
		*port = Int32GetDatum(-1);
		*port_null = false;
	}
}

Datum
cw_client_host_datum(const SockAddr *addr, bool *isnull)
{
	Datum		host = (Datum) 0;
	Datum		port;
	bool		port_null;

	cw_client_addr_datums(addr, &host, isnull, &port, &port_null);
	return host;
}

/* The query text, NULL where the reading did not copy it */
Datum
cw_query_datum(const CwBackend *be, bool *isnull)
{
	*isnull = !be->have_query;
	if (!be->have_query)
		return (Datum) 0;
	/* any client's text: its line breaks and escape sequences shown escaped */
	return CStringGetTextDatum(cw_printable(be->query,
											cw_printable_keeps_unicode()));
}

/* now - since, as the interval timestamptz subtraction gives; NULL if unset */
Datum
cw_age_datum(TimestampTz now, TimestampTz since, bool *isnull)
{
	*isnull = (since == 0);
	if (*isnull)
		return (Datum) 0;
	return DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(now),
							   TimestampTzGetDatum(since));
}

/* age(xid) as of the reading whose age base is given */
Datum
cw_xid_age_datum(TransactionId age_base, TransactionId xid, bool *isnull)
{
	int32		age;

	*isnull = !cw_xid_age(age_base, xid, &age);
	return *isnull ? (Datum) 0 : Int32GetDatum(age);
}

Datum
cw_pid_array_datum(List *pids)
{
	int			n = list_length(pids);
	Datum	   *elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, pids)
		elems[i++] = Int32GetDatum(lfirst_int(lc));

	return PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32),
										   true, TYPALIGN_INT));
}

void
cw_identity_datums(CwNames *names, const CwBackend *be, Datum *values,
				   bool *nulls)
{
	values[0] = Int32GetDatum(be->pid);
	nulls[0] = false;
	values[2] = cw_database_datum(names, be->datid, &nulls[2]);
	values[3] = cw_role_datum(names, be->userid, &nulls[3]);
	values[4] = CStringGetTextDatum(be->application_name);
	nulls[4] = false;
	if (!be->visible)
	{
		nulls[1] = nulls[5] = nulls[6] = true;
		return;
	}
	values[1] = TimestampTzGetDatum(be->backend_start);
	nulls[1] = (be->backend_start == 0);
	values[5] = cw_client_host_datum(&be->client_addr, &nulls[5]);
	values[6] = cw_state_datum(be->state, &nulls[6]);
}
