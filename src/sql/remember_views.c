/*-------------------------------------------------------------------------
 *
 * remember_views.c
 *		SQL-callable functions of the remember layer: refused_connections,
 *		session_endings, peaks, reset_ledgers(), reset_peaks(), and
 *		preloaded(), which tells whether the others can work.
 *
 * Each but preloaded() raises 55000 without the library preloaded
 * (cw_remember_require).
 * They read the ledgers under the ledger lock, shared, and copy what they
 * return before building any row.  Visibility follows pg_stat_activity:
 * rows are counted for everybody, but the application name and client
 * address of a row keyed by a role the caller has no privileges of (and no
 * pg_read_all_stats) are NULL; names of applications in peaks, which are
 * not tied to a role, only pg_read_all_stats sees.
 *
 * Names in the refusal ledger are what a client sent before it was
 * authenticated, cut at NAMEDATALEN bytes: they are checked against the
 * database encoding here, and bytes that do not belong are shown as '?',
 * so that no invalid string reaches a client or a table.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "printable.h"
#include "remember/persistence.h"
#include "remember/refusals.h"
#include "remember/sessions.h"
#include "remember/shared_state.h"
#include "sql/srf.h"

#define CW_REFUSED_CONNECTIONS_COLS	9
#define CW_SESSION_ENDINGS_COLS		15
#define CW_PEAKS_COLS				5

PG_FUNCTION_INFO_V1(cw_refused_connections);
PG_FUNCTION_INFO_V1(cw_session_endings);
PG_FUNCTION_INFO_V1(cw_peaks);
PG_FUNCTION_INFO_V1(cw_reset_ledgers);
PG_FUNCTION_INFO_V1(cw_reset_peaks_function);
PG_FUNCTION_INFO_V1(cw_preloaded);

static bool cw_caller_sees_login(const char *usename);
static Datum cw_name_value(const char *name);
static Datum cw_inet_value(uint8 family, const uint8 *addr, bool *isnull);
static Datum cw_timestamp_value(TimestampTz ts, bool *isnull);

/*
 * May the caller see the details of a row keyed by this (claimed) role, by
 * pg_stat_activity's rule?  A role that does not exist (a refused attempt
 * claimed it) is somebody else's.
 */
static bool
cw_caller_sees_login(const char *usename)
{
	Oid			me = GetUserId();
	Oid			roleid;

	if (cw_has_read_all_stats(me))
		return true;
	if (usename == NULL)
		return false;
	roleid = get_role_oid(usename, true);
	return OidIsValid(roleid) && has_privs_of_role(me, roleid);
}

/*
 * A name from shared memory as it may be shown: at most NAMEDATALEN - 1
 * bytes, rendered printable (printable.c).  These names came from startup
 * packets nobody authenticated, so a control character, an escape sequence
 * or an invalid byte is shown escaped, and the rendering may be longer than
 * a name: the views' name columns are text.
 */
static Datum
cw_name_value(const char *raw)
{
	char	   *copy = pnstrdup(raw, NAMEDATALEN - 1);

	return CStringGetTextDatum(cw_printable(copy, cw_printable_keeps_unicode()));
}

/* An address of a refused attempt as inet; NULL for a Unix socket */
static Datum
cw_inet_value(uint8 family, const uint8 *addr, bool *isnull)
{
	char		text[INET6_ADDRSTRLEN];

	*isnull = true;
	if (family != AF_INET && family != AF_INET6)
		return (Datum) 0;
	if (inet_ntop(family, addr, text, sizeof(text)) == NULL)
		return (Datum) 0;
	*isnull = false;
	return DirectFunctionCall1(inet_in, CStringGetDatum(text));
}

static Datum
cw_timestamp_value(TimestampTz ts, bool *isnull)
{
	*isnull = (ts == 0);
	return TimestampTzGetDatum(ts);
}

/*
 * connwatch.refused_connections(): one row per cause and claimed
 * (database, role, application, address), and per cause one overflow row
 * when the ledger was full.
 */
Datum
cw_refused_connections(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	CwRefusalEntry *copies;
	uint32		ncopies = 0;
	uint32		maxcopies;
	uint32		nslots;
	uint32		i;

	cw_remember_require();
	rsinfo = cw_begin_srf(fcinfo, CW_REFUSED_CONNECTIONS_COLS);

	/*
	 * Copy under the lock, which only resets take exclusively.  At most
	 * refusal_max_keys slots and the overflow keys are READY: room for
	 * those, not for every slot (the slots are twice the keys or more).
	 */
	nslots = cw_remember->refusal_slots + CW_NUM_REFUSAL_CAUSES;
	maxcopies = cw_remember->refusal_max_keys + CW_NUM_REFUSAL_CAUSES;
	copies = palloc(sizeof(CwRefusalEntry) * maxcopies);
	LWLockAcquire(cw_remember->lock, LW_SHARED);
	for (i = 0; i < nslots && ncopies < maxcopies; i++)
	{
		CwRefusalEntry *entry = &cw_remember->refusals[i];
		CwRefusalEntry *copy = &copies[ncopies];

		if (pg_atomic_read_u32(&entry->state) != CW_ENTRY_READY ||
			pg_atomic_read_u64(&entry->count) == 0)
			continue;
		pg_read_barrier();
		copy->key = entry->key;
		pg_atomic_init_u64(&copy->count, pg_atomic_read_u64(&entry->count));
		pg_atomic_init_u64(&copy->first_at, pg_atomic_read_u64(&entry->first_at));
		pg_atomic_init_u64(&copy->last_at, pg_atomic_read_u64(&entry->last_at));
		ncopies++;
	}
	LWLockRelease(cw_remember->lock);

	for (i = 0; i < ncopies; i++)
	{
		CwRefusalKey *key = &copies[i].key;
		Datum		values[CW_REFUSED_CONNECTIONS_COLS] = {0};
		bool		nulls[CW_REFUSED_CONNECTIONS_COLS] = {0};
		bool		sees;

		if (key->cause >= CW_NUM_REFUSAL_CAUSES)
			continue;			/* bounds-checked: shared memory */
		key->usename[NAMEDATALEN - 1] = '\0';
		sees = !key->overflow &&
			cw_caller_sees_login(key->has_usename ? key->usename : NULL);

		values[0] = CStringGetTextDatum(cw_refusal_cause_label(key->cause));
		values[1] = cw_name_value(key->datname);
		nulls[1] = !key->has_datname;
		values[2] = cw_name_value(key->usename);
		nulls[2] = !key->has_usename;
		values[3] = cw_name_value(key->application_name);
		nulls[3] = !sees || !key->has_application_name;
		values[4] = cw_inet_value(key->addr_family, key->addr, &nulls[4]);
		nulls[4] = nulls[4] || !sees;
		values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&copies[i].count));
		values[6] = cw_timestamp_value((TimestampTz) pg_atomic_read_u64(&copies[i].first_at),
									   &nulls[6]);
		values[7] = cw_timestamp_value((TimestampTz) pg_atomic_read_u64(&copies[i].last_at),
									   &nulls[7]);
		values[8] = BoolGetDatum(key->overflow);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * connwatch.session_endings(): one row per (database, role, application,
 * reason, policy), with the lifetime histogram and the total time.
 */
Datum
cw_session_endings(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	HASH_SEQ_STATUS scan;
	CwEndingEntry *entry;
	CwEndingEntry *copies;
	long		nentries;
	long		ncopies = 0;
	long		i;

	cw_remember_require();
	rsinfo = cw_begin_srf(fcinfo, CW_SESSION_ENDINGS_COLS);

	/* room for the most the table can hold, allocated before the lock */
	nentries = cw_max_ledger_keys + CW_NUM_ENDING_REASONS;
	copies = palloc(sizeof(CwEndingEntry) * nentries);
	LWLockAcquire(cw_remember->lock, LW_SHARED);
	hash_seq_init(&scan, cw_ending_table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (ncopies < nentries)
			copies[ncopies++] = *entry;
	}
	LWLockRelease(cw_remember->lock);

	for (i = 0; i < ncopies; i++)
	{
		CwEndingEntry *e = &copies[i];
		Datum		values[CW_SESSION_ENDINGS_COLS] = {0};
		bool		nulls[CW_SESSION_ENDINGS_COLS] = {0};
		Datum		buckets[CW_LIFETIME_BUCKETS];
		bool		sees;
		int			b;

		if (e->key.reason >= CW_NUM_ENDING_REASONS)
			continue;
		e->key.usename[NAMEDATALEN - 1] = '\0';
		sees = !e->key.overflow && cw_caller_sees_login(e->key.usename);

		values[0] = cw_name_value(e->key.datname);
		nulls[0] = e->key.overflow;
		values[1] = cw_name_value(e->key.usename);
		nulls[1] = e->key.overflow;
		values[2] = cw_name_value(e->key.application_name);
		nulls[2] = !sees;
		values[3] = CStringGetTextDatum(cw_ending_reason_label(e->key.reason));
		values[4] = cw_name_value(e->key.policy);
		nulls[4] = (e->key.reason != CW_ENDED_BY_CONNWATCH ||
					e->key.policy[0] == '\0');
		values[5] = Int64GetDatum(e->count);
		values[6] = cw_timestamp_value(e->first_at, &nulls[6]);
		values[7] = cw_timestamp_value(e->last_at, &nulls[7]);
		values[8] = DirectFunctionCall1(interval_justify_hours,
										IntervalPGetDatum(&(Interval)
														  {.time = e->total_usecs}));
		for (b = 0; b < CW_LIFETIME_BUCKETS; b++)
			buckets[b] = Int64GetDatum(e->buckets[b]);
		values[9] = PointerGetDatum(construct_array(buckets, CW_LIFETIME_BUCKETS,
													INT8OID, sizeof(int64),
													FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
		values[10] = Int64GetDatum(e->in_transaction);
		values[11] = Int64GetDatum(e->transaction_warnings);
		values[12] = cw_timestamp_value(e->last_in_transaction_at, &nulls[12]);
		values[13] = cw_timestamp_value(e->last_transaction_warning_at, &nulls[13]);
		values[14] = BoolGetDatum(e->key.overflow);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* connwatch.peaks(): current and peak concurrent client sessions */
Datum
cw_peaks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	HASH_SEQ_STATUS scan;
	CwPeakEntry *entry;
	CwPeakEntry *copies;
	long		nentries;
	long		ncopies = 0;
	long		i;
	bool		sees_applications;

	cw_remember_require();
	rsinfo = cw_begin_srf(fcinfo, CW_PEAKS_COLS);
	sees_applications = cw_has_read_all_stats(GetUserId());

	nentries = cw_max_ledger_keys + CW_NUM_PEAK_SCOPES;
	copies = palloc(sizeof(CwPeakEntry) * nentries);
	LWLockAcquire(cw_remember->lock, LW_SHARED);
	hash_seq_init(&scan, cw_peak_table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (ncopies < nentries)
			copies[ncopies++] = *entry;
	}
	LWLockRelease(cw_remember->lock);

	for (i = 0; i < ncopies; i++)
	{
		CwPeakEntry *p = &copies[i];
		Datum		values[CW_PEAKS_COLS] = {0};
		bool		nulls[CW_PEAKS_COLS] = {0};

		if (p->key.scope >= CW_NUM_PEAK_SCOPES)
			continue;
		values[0] = CStringGetTextDatum(cw_peak_scope_label(p->key.scope));
		values[1] = cw_name_value(p->key.name);
		nulls[1] = p->key.scope == CW_PEAK_SERVER || p->key.overflow ||
			(p->key.scope == CW_PEAK_APPLICATION && !sees_applications);
		values[2] = Int32GetDatum(p->current);
		values[3] = Int32GetDatum(p->peak);
		values[4] = cw_timestamp_value(p->peak_at, &nulls[4]);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* connwatch.reset_ledgers(): forget refusals and endings */
Datum
cw_reset_ledgers(PG_FUNCTION_ARGS)
{
	cw_remember_require();
	LWLockAcquire(cw_remember->lock, LW_EXCLUSIVE);
	cw_reset_refusals();
	cw_reset_endings();
	cw_remember->ledgers_reset_at = GetCurrentTimestamp();
	cw_forget_saved_ledgers();
	LWLockRelease(cw_remember->lock);
	PG_RETURN_VOID();
}

/* connwatch.reset_peaks(): peaks start again from the current figures */
Datum
cw_reset_peaks_function(PG_FUNCTION_ARGS)
{
	cw_remember_require();
	LWLockAcquire(cw_remember->lock, LW_EXCLUSIVE);
	cw_reset_peaks();
	cw_forget_saved_ledgers();
	LWLockRelease(cw_remember->lock);
	PG_RETURN_VOID();
}

/*
 * connwatch.preloaded(): whether the server loaded pg_connwatch at start,
 * so that the ledgers exist.  diagnose() and metrics() ask before they
 * read them.
 */
Datum
cw_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cw_remember != NULL);
}
