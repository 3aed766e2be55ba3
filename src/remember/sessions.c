/*-------------------------------------------------------------------------
 *
 * sessions.c
 *		The life of a client session as the ledgers see it: when it is
 *		established (peaks go up), how it ends (the endings ledger, and
 *		peaks go down).
 *
 * A session is established when the transaction InitPostgres runs for the
 * login commits: by then every check that can refuse it (reserved slots,
 * CONNECTION LIMITs, the database, CONNECT) has passed, so an attempt that
 * is refused never counts as a session (refusals.c counts it).  ClientAuthentication_hook notes the names the client
 * logged in with; the pre-commit callback of that first transaction counts
 * the session in the peaks and registers the exit callback.
 *
 * The exit callback runs in before_shmem_exit, while the process still has
 * its PGPROC and may take LWLocks.  It tells the reason from the FATAL the
 * session reported last (emit_log_hook notes its SQLSTATE; nothing else is
 * done in the hook), and, on 14+, from pgStatSessionEndCause, which tells a
 * client's Terminate message from its connection vanishing.  A termination
 * is "by connwatch" when the signal primitive marked the session right
 * before signalling it, "server shutdown" when the postmaster had been
 * asked for a fast shutdown (a watch on its SIGINT handler, installed at
 * start: see cw_sessions_preload), and "by another session"
 * otherwise.  What cannot be seen at all:
 * a backend killed by SIGKILL or crashing runs no callback (and the server
 * restarts, re-creating the ledgers from the worker's last copy).
 *
 * Concurrency: peaks and endings are shared hash tables under the
 * ledger lock, held for one update (or, when the endings ledger is full,
 * for one eviction pass over it: no allocation, nothing that can raise).
 * The per-session state here is the backend's own.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "remember/sessions.h"

/* SQLSTATEs newer than 13 (idle_session_timeout 14, transaction_timeout 17) */
#define CW_ERRCODE_IDLE_SESSION_TIMEOUT	MAKE_SQLSTATE('5','7','P','0','5')
#define CW_ERRCODE_TRANSACTION_TIMEOUT	MAKE_SQLSTATE('2','5','P','0','4')

static const char *const cw_ending_reason_labels[CW_NUM_ENDING_REASONS] = {
	"client closed",
	"client vanished",
	"terminated by connwatch",
	"terminated by another session",
	"idle-in-transaction timeout",
	"idle-session timeout",
	"transaction timeout",
	"connection check failed",
	"protocol violation",
	"recovery conflict",
	"server shutdown",
	"fatal error"
};

static const char *const cw_peak_scope_labels[CW_NUM_PEAK_SCOPES] = {
	"server",
	"database",
	"role",
	"application"
};

/* Upper bounds of the lifetime buckets, in microseconds; the last is open */
static const int64 cw_lifetime_bounds[CW_LIFETIME_BUCKETS - 1] = {
	100 * INT64CONST(1000),
	USECS_PER_SEC,
	10 * USECS_PER_SEC,
	USECS_PER_MINUTE,
	10 * USECS_PER_MINUTE,
	USECS_PER_HOUR,
	USECS_PER_DAY
};

/* This backend's session */
static bool cw_authenticated = false;
static bool cw_established = false;
static bool cw_counted = false;
static bool cw_callback_registered = false;
static char cw_login_datname[NAMEDATALEN];
static char cw_login_usename[NAMEDATALEN];
static char cw_login_application[NAMEDATALEN];
static CwPeakKey cw_counted_keys[CW_NUM_PEAK_SCOPES];
static int	cw_last_fatal = 0;
static bool cw_transaction_warning = false;

static struct sigaction cw_prev_postmaster_sigint;

/*
 * Where the postmaster's SIGINT handler sets the fast-shutdown flag: set
 * once the ledgers exist, cleared before their memory goes away (a crash
 * restart re-creates it while signals are being delivered, from 16 on).
 */
static pg_atomic_uint32 *volatile cw_fast_shutdown_flag = NULL;
static shmem_startup_hook_type cw_prev_shmem_startup_hook = NULL;

static void cw_watch_fast_shutdown(int signo, siginfo_t *info, void *context);
static void cw_sessions_startup(void);
static void cw_forget_fast_shutdown_flag(int code, Datum arg);
static void cw_establish_at_commit(XactEvent event, void *arg);
static void cw_count_session_start(void);
static void cw_session_exit(int code, Datum arg);
static CwEndingReason cw_reason_of_fatal(int sqlerrcode);
static bool cw_take_termination_mark(char *policy);
static void cw_evict_idle_peak(void);
static CwPeakEntry *cw_peak_entry(CwPeakScope scope, const char *name,
								  CwPeakKey *key_used);
static int	cw_lifetime_bucket(int64 usecs);
static void cw_add_ending(CwEndingEntry *into, const CwEndingEntry *from);
static CwEndingEntry *cw_ending_overflow(CwEndingReason reason);
static void cw_evict_old_endings(void);
static bool cw_clean_name(const char *saved, char *name);
static void cw_count_ending(CwEndingReason reason, const char *policy,
							int64 lifetime, bool in_transaction,
							TimestampTz now);

const char *
cw_ending_reason_label(CwEndingReason reason)
{
	if ((int) reason < 0 || reason >= CW_NUM_ENDING_REASONS)
		return "fatal error";
	return cw_ending_reason_labels[reason];
}

const char *
cw_peak_scope_label(CwPeakScope scope)
{
	if ((int) scope < 0 || scope >= CW_NUM_PEAK_SCOPES)
		return "server";
	return cw_peak_scope_labels[scope];
}

static int
cw_lifetime_bucket(int64 usecs)
{
	int			i;

	for (i = 0; i < CW_LIFETIME_BUCKETS - 1; i++)
		if (usecs < cw_lifetime_bounds[i])
			return i;
	return CW_LIFETIME_BUCKETS - 1;
}

/*
 * The postmaster's SIGINT means a fast shutdown: every session is about to
 * be terminated, and should be counted as "server shutdown", not as
 * terminated by another session.  The flag is set, then the postmaster's
 * own handler runs as before, in the form it was installed with (19's
 * pqsignal() installs a siginfo handler, earlier majors a plain one).
 * Only atomics here: it is a signal handler.  A child that inherited the
 * handler before installing its own sets nothing.
 */
static void
cw_watch_fast_shutdown(int signo, siginfo_t *info, void *context)
{
	int			save_errno = errno;
	pg_atomic_uint32 *flag = cw_fast_shutdown_flag;

	if (flag != NULL && getpid() == PostmasterPid)
		pg_atomic_write_u32(flag, 1);
	errno = save_errno;

	/* sa_handler and sa_sigaction share their storage */
	if (cw_prev_postmaster_sigint.sa_handler == SIG_DFL ||
		cw_prev_postmaster_sigint.sa_handler == SIG_IGN)
		return;
	if (cw_prev_postmaster_sigint.sa_flags & SA_SIGINFO)
		cw_prev_postmaster_sigint.sa_sigaction(signo, info, context);
	else
		cw_prev_postmaster_sigint.sa_handler(signo);
}

/*
 * From _PG_init in the postmaster, which has installed its signal handlers
 * before it loads shared_preload_libraries.
 *
 * XXX: core offers no hook at the start of a shutdown, and pg_terminate_
 * backend() and a fast shutdown end a session with the same SIGTERM and
 * the same FATAL (19 names the SIGTERM's sender in the FATAL's DETAIL, but
 * only as translated text, and clears it before exit callbacks run);
 * wrapping the handler is the least intrusive way to tell them apart.
 * Only what the documentation promises is relied on: SIGINT to the
 * postmaster requests a fast shutdown.  The wrapper keeps the handler's
 * mask and flags and calls it the way it was installed.  doc/internals.md
 * says what this costs.
 */
void
cw_sessions_preload(void)
{
	struct sigaction act;

	/* the postmaster only: not a single-user backend, nor a child */
	if (IsUnderPostmaster || !IsPostmasterEnvironment)
		return;
	cw_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cw_sessions_startup;
	if (sigaction(SIGINT, NULL, &cw_prev_postmaster_sigint) != 0)
		return;
	act = cw_prev_postmaster_sigint;
	act.sa_sigaction = cw_watch_fast_shutdown;
	act.sa_flags |= SA_SIGINFO;
	(void) sigaction(SIGINT, &act, NULL);
}

/* The postmaster has (re-)created the ledgers: arm the SIGINT watch */
static void
cw_sessions_startup(void)
{
	if (cw_prev_shmem_startup_hook)
		cw_prev_shmem_startup_hook();
	if (IsUnderPostmaster || cw_remember == NULL)
		return;
	cw_fast_shutdown_flag = &cw_remember->fast_shutdown;
	on_shmem_exit(cw_forget_fast_shutdown_flag, (Datum) 0);
}

/* on_shmem_exit, before the memory is unmapped: disarm the watch */
static void
cw_forget_fast_shutdown_flag(int code, Datum arg)
{
	cw_fast_shutdown_flag = NULL;
}

/*
 * ClientAuthentication_hook, on success: the names the session logged in
 * with.  Counting waits for the end of the login transaction.
 */
void
cw_session_authenticated(const Port *port)
{
	cw_authenticated = true;
	strlcpy(cw_login_datname, port->database_name ? port->database_name : "",
			NAMEDATALEN);
	strlcpy(cw_login_usename, port->user_name ? port->user_name : "",
			NAMEDATALEN);
	strlcpy(cw_login_application,
			port->application_name ? port->application_name : "",
			NAMEDATALEN);
	if (!cw_callback_registered)
	{
		RegisterXactCallback(cw_establish_at_commit, NULL);
		cw_callback_registered = true;
	}
}

bool
cw_session_is_established(void)
{
	return cw_established;
}

/* emit_log_hook, for a FATAL in an established session: note it, nothing more */
void
cw_session_note_fatal(int sqlerrcode)
{
	cw_last_fatal = sqlerrcode;
}

/*
 * emit_log_hook, for WARNING 25001 or 25P01 in an established session: the
 * session was sent BEGIN inside a transaction or COMMIT/ROLLBACK outside
 * one.  Drivers keep track of their own transactions and never do that;
 * two processes sending on one connection (a pool shared across fork()) do.
 */
void
cw_session_note_transaction_warning(void)
{
	cw_transaction_warning = true;
}

/* The first commit after authentication ends the login: count the session */
static void
cw_establish_at_commit(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_PRE_COMMIT || !cw_authenticated || cw_established)
		return;
	cw_established = true;

	/* walsenders have slots of their own and are not client sessions */
	if (am_walsender || cw_remember == NULL)
		return;
	/* first the callback, so that nothing counted can stay counted */
	before_shmem_exit(cw_session_exit, (Datum) 0);
	cw_count_session_start();
}

/*
 * Make room for a new name: drop one entry that no session holds now (its
 * peak is forgotten, and counted in peaks_dropped).  Caller holds the lock
 * exclusively.
 */
static void
cw_evict_idle_peak(void)
{
	HASH_SEQ_STATUS scan;
	CwPeakEntry *entry;

	hash_seq_init(&scan, cw_peak_table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->current == 0 && !entry->key.overflow &&
			entry->key.scope != CW_PEAK_SERVER)
		{
			hash_search(cw_peak_table, &entry->key, HASH_REMOVE, NULL);
			hash_seq_term(&scan);
			cw_remember->peaks_dropped++;
			return;
		}
	}
}

/*
 * The peak entry of one scope and name, created if need be.  Ordinary
 * names take at most connwatch.max_ledger_keys entries, so that the
 * overflow entry of each scope always has room; when they are all held,
 * the session is counted in its scope's overflow entry.  Caller holds the
 * lock exclusively.
 */
static CwPeakEntry *
cw_peak_entry(CwPeakScope scope, const char *name, CwPeakKey *key_used)
{
	CwPeakEntry *entry;
	bool		found;

	memset(key_used, 0, sizeof(CwPeakKey));
	key_used->scope = (uint8) scope;
	strlcpy(key_used->name, name, NAMEDATALEN);
	entry = hash_search(cw_peak_table, key_used, HASH_FIND, &found);
	if (entry == NULL &&
		hash_get_num_entries(cw_peak_table) >= cw_max_ledger_keys)
		cw_evict_idle_peak();
	if (entry == NULL &&
		hash_get_num_entries(cw_peak_table) < cw_max_ledger_keys)
		entry = hash_search(cw_peak_table, key_used, HASH_ENTER_NULL, &found);
	if (entry == NULL)
	{
		cw_remember->peaks_dropped++;
		memset(key_used, 0, sizeof(CwPeakKey));
		key_used->scope = (uint8) scope;
		key_used->overflow = true;
		entry = hash_search(cw_peak_table, key_used, HASH_ENTER_NULL, &found);
		if (entry == NULL)
			return NULL;		/* cannot happen: room is kept for these */
	}
	if (!found)
	{
		entry->current = 0;
		entry->peak = 0;
		entry->peak_at = 0;
	}
	return entry;
}

static void
cw_count_session_start(void)
{
	const char *names[CW_NUM_PEAK_SCOPES];
	TimestampTz now = GetCurrentTimestamp();
	int			scope;

	names[CW_PEAK_SERVER] = "";
	names[CW_PEAK_DATABASE] = cw_login_datname;
	names[CW_PEAK_ROLE] = cw_login_usename;
	names[CW_PEAK_APPLICATION] = cw_login_application;

	LWLockAcquire(cw_remember->lock, LW_EXCLUSIVE);
	for (scope = 0; scope < CW_NUM_PEAK_SCOPES; scope++)
	{
		CwPeakEntry *entry = cw_peak_entry(scope, names[scope],
										   &cw_counted_keys[scope]);

		if (entry == NULL)
			continue;
		entry->current++;
		if (entry->current > entry->peak)
		{
			entry->peak = entry->current;
			entry->peak_at = now;
		}
	}
	LWLockRelease(cw_remember->lock);
	cw_counted = true;
}

/*
 * The signal primitive, right before it terminates a session: remember
 * that the termination is pg_connwatch's, and which policy's.
 */
void
cw_mark_termination(int pid, TimestampTz backend_start, const char *policy)
{
	CwKillMark *mark;

	if (cw_remember == NULL)
		return;
	LWLockAcquire(cw_remember->lock, LW_EXCLUSIVE);
	mark = &cw_remember->kill_marks[cw_remember->next_kill_mark++ % CW_KILL_MARKS];
	mark->pid = pid;
	mark->backend_start = backend_start;
	mark->has_policy = (policy != NULL);
	memset(mark->policy, 0, NAMEDATALEN);
	if (policy != NULL)
		memcpy(mark->policy, policy,
			   pg_mbcliplen(policy, strlen(policy), NAMEDATALEN - 1));
	LWLockRelease(cw_remember->lock);
}

/* Was this session marked?  Caller holds the lock exclusively. */
static bool
cw_take_termination_mark(char *policy)
{
	int			i;

	for (i = 0; i < CW_KILL_MARKS; i++)
	{
		CwKillMark *mark = &cw_remember->kill_marks[i];

		if (mark->pid == MyProcPid && mark->backend_start == MyStartTimestamp)
		{
			strlcpy(policy, mark->has_policy ? mark->policy : "", NAMEDATALEN);
			mark->pid = 0;
			return true;
		}
	}
	return false;
}

/* The reason for a FATAL; terminations are told apart by the caller */
static CwEndingReason
cw_reason_of_fatal(int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_ADMIN_SHUTDOWN:
			return CW_ENDED_BY_OTHER_SESSION;
		case ERRCODE_IDLE_IN_TRANSACTION_SESSION_TIMEOUT:
			return CW_ENDED_IDLE_IN_TRANSACTION_TIMEOUT;
		case CW_ERRCODE_IDLE_SESSION_TIMEOUT:
			return CW_ENDED_IDLE_SESSION_TIMEOUT;
		case CW_ERRCODE_TRANSACTION_TIMEOUT:
			return CW_ENDED_TRANSACTION_TIMEOUT;
		case ERRCODE_CONNECTION_FAILURE:
			return CW_ENDED_CONNECTION_CHECK_FAILED;
		case ERRCODE_PROTOCOL_VIOLATION:
			return CW_ENDED_PROTOCOL_VIOLATION;
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_DATABASE_DROPPED:
			return CW_ENDED_RECOVERY_CONFLICT;
	}
	return CW_ENDED_FATAL_ERROR;
}

/* Add one entry's figures to another's: an eviction, a merge */
static void
cw_add_ending(CwEndingEntry *into, const CwEndingEntry *from)
{
	int			b;

	into->count += from->count;
	into->total_usecs += from->total_usecs;
	for (b = 0; b < CW_LIFETIME_BUCKETS; b++)
		into->buckets[b] += from->buckets[b];
	into->in_transaction += from->in_transaction;
	into->transaction_warnings += from->transaction_warnings;
	if (into->first_at == 0 || (from->first_at != 0 && from->first_at < into->first_at))
		into->first_at = from->first_at;
	into->last_at = Max(into->last_at, from->last_at);
	into->last_in_transaction_at = Max(into->last_in_transaction_at,
									   from->last_in_transaction_at);
	into->last_transaction_warning_at = Max(into->last_transaction_warning_at,
											from->last_transaction_warning_at);
}

/*
 * The overflow entry of a reason, created if need be; room is kept for
 * one per reason.  Caller holds the lock exclusively.
 */
static CwEndingEntry *
cw_ending_overflow(CwEndingReason reason)
{
	CwEndingKey key;
	CwEndingEntry *entry;
	bool		found;

	memset(&key, 0, sizeof(CwEndingKey));
	key.reason = (uint8) reason;
	key.overflow = true;
	entry = hash_search(cw_ending_table, &key, HASH_ENTER_NULL, &found);
	if (entry != NULL && !found)
		memset((char *) entry + sizeof(CwEndingKey), 0,
			   sizeof(CwEndingEntry) - sizeof(CwEndingKey));
	return entry;
}

/*
 * The ledger is full: make room by evicting the keys seen longest ago,
 * those whose last ending is in the oldest eighth of the span between the
 * oldest and the newest last_at (the oldest at least), their figures added
 * to their reason's overflow entry, so that totals stay exact.  Two passes
 * over the table, amortised over the room they make: a burst of invented
 * names is evicted an eighth at a time.  Nothing is allocated: this runs
 * in an exit callback.  Caller holds the lock exclusively.
 */
static void
cw_evict_old_endings(void)
{
	HASH_SEQ_STATUS scan;
	CwEndingEntry *entry;
	CwEndingEntry folded[CW_NUM_ENDING_REASONS];
	TimestampTz oldest = 0;
	TimestampTz newest = 0;
	TimestampTz threshold;
	bool		any = false;
	int			reason;

	hash_seq_init(&scan, cw_ending_table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->key.overflow)
			continue;
		if (!any || entry->last_at < oldest)
			oldest = entry->last_at;
		if (!any || entry->last_at > newest)
			newest = entry->last_at;
		any = true;
	}
	if (!any)
		return;
	threshold = oldest + (newest - oldest) / 8;

	memset(folded, 0, sizeof(folded));
	hash_seq_init(&scan, cw_ending_table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->key.overflow || entry->last_at > threshold ||
			entry->key.reason >= CW_NUM_ENDING_REASONS)
			continue;
		cw_add_ending(&folded[entry->key.reason], entry);
		cw_remember->endings_dropped += entry->count;
		/* removing the entry just returned is allowed during a scan */
		hash_search(cw_ending_table, &entry->key, HASH_REMOVE, NULL);
	}

	for (reason = 0; reason < CW_NUM_ENDING_REASONS; reason++)
	{
		CwEndingEntry *overflow;

		if (folded[reason].count == 0)
			continue;
		overflow = cw_ending_overflow(reason);
		if (overflow != NULL)	/* cannot be NULL: room is kept for these */
			cw_add_ending(overflow, &folded[reason]);
	}
}

/*
 * Count one ending; caller holds the lock exclusively.  A new key takes an
 * entry while fewer than connwatch.max_ledger_keys are used; when they all
 * are, the keys seen longest ago are evicted first (cw_evict_old_endings),
 * so a burst of distinct names cannot keep later ones unnamed.
 */
static void
cw_count_ending(CwEndingReason reason, const char *policy, int64 lifetime,
				bool in_transaction, TimestampTz now)
{
	CwEndingKey key;
	CwEndingEntry *entry;
	bool		found;

	memset(&key, 0, sizeof(CwEndingKey));
	key.reason = (uint8) reason;
	strlcpy(key.datname, cw_login_datname, NAMEDATALEN);
	strlcpy(key.usename, cw_login_usename, NAMEDATALEN);
	strlcpy(key.application_name, application_name ? application_name : "",
			NAMEDATALEN);
	strlcpy(key.policy, policy, NAMEDATALEN);

	/* ordinary keys leave room for every reason's overflow key */
	entry = hash_search(cw_ending_table, &key, HASH_FIND, &found);
	if (entry == NULL &&
		hash_get_num_entries(cw_ending_table) >= cw_max_ledger_keys)
		cw_evict_old_endings();
	if (entry == NULL &&
		hash_get_num_entries(cw_ending_table) < cw_max_ledger_keys)
	{
		entry = hash_search(cw_ending_table, &key, HASH_ENTER_NULL, &found);
		if (entry != NULL && !found)
		{
			memset((char *) entry + sizeof(CwEndingKey), 0,
				   sizeof(CwEndingEntry) - sizeof(CwEndingKey));
			entry->first_at = now;
		}
	}
	if (entry == NULL)
	{
		cw_remember->endings_dropped++;
		entry = cw_ending_overflow(reason);
		if (entry == NULL)
			return;				/* cannot happen: room is kept for these */
		if (entry->first_at == 0)
			entry->first_at = now;
	}
	cw_remember->endings_total++;
	entry->count++;
	entry->total_usecs += lifetime;
	entry->buckets[cw_lifetime_bucket(lifetime)]++;
	if (in_transaction)
	{
		entry->in_transaction++;
		entry->last_in_transaction_at = now;
	}
	if (cw_transaction_warning)
	{
		entry->transaction_warnings++;
		entry->last_transaction_warning_at = now;
	}
	entry->last_at = now;
}

/*
 * before_shmem_exit: count how the session ended, and take it out of the
 * peaks' current figures.  Never raises an error.
 */
static void
cw_session_exit(int code, Datum arg)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		lifetime = Max(now - MyStartTimestamp, 0);
	CwEndingReason reason;
	char		policy[NAMEDATALEN];
	int			scope;

	/*
	 * Core's ShutdownPostgres, registered before this callback and so run
	 * after it, has not aborted the transaction yet: a client that vanished
	 * in the middle of one is still seen in it.
	 */
	bool		in_transaction = IsTransactionOrTransactionBlock();

	policy[0] = '\0';
	if (cw_last_fatal != 0)
		reason = cw_reason_of_fatal(cw_last_fatal);
	else
	{
#ifdef CW_HAVE_SESSION_END_CAUSE
		if (cw_session_end_cause() == CW_END_CLIENT_EOF)
			reason = CW_ENDED_CLIENT_VANISHED;
		else if (cw_session_end_cause() == (int) DISCONNECT_KILLED)
			reason = CW_ENDED_BY_OTHER_SESSION;
		else if (cw_session_end_cause() == (int) DISCONNECT_FATAL || code != 0)
			reason = CW_ENDED_FATAL_ERROR;
		else
			reason = CW_ENDED_CLIENT_CLOSED;
#else
		/* 13 cannot tell a Terminate message from a vanished client */
		reason = (code == 0) ? CW_ENDED_CLIENT_CLOSED : CW_ENDED_FATAL_ERROR;
#endif
	}

	LWLockAcquire(cw_remember->lock, LW_EXCLUSIVE);

	if (reason == CW_ENDED_BY_OTHER_SESSION)
	{
		if (cw_take_termination_mark(policy))
			reason = CW_ENDED_BY_CONNWATCH;
		else if (pg_atomic_read_u32(&cw_remember->fast_shutdown) != 0)
			reason = CW_ENDED_SERVER_SHUTDOWN;
	}
	cw_count_ending(reason, policy, lifetime, in_transaction, now);

	if (cw_counted)
	{
		for (scope = 0; scope < CW_NUM_PEAK_SCOPES; scope++)
		{
			CwPeakEntry *entry = hash_search(cw_peak_table,
											 &cw_counted_keys[scope],
											 HASH_FIND, NULL);

			if (entry != NULL && entry->current > 0)
				entry->current--;
		}
		cw_counted = false;
	}

	LWLockRelease(cw_remember->lock);
}

/* A name of a saved key: terminated within NAMEDATALEN, zeros after */
static bool
cw_clean_name(const char *saved, char *name)
{
	if (memchr(saved, '\0', NAMEDATALEN) == NULL)
		return false;
	memset(name, 0, NAMEDATALEN);
	strlcpy(name, saved, NAMEDATALEN);
	return true;
}

/*
 * Put back an ending read from the ledger file (persistence.c), while the
 * postmaster creates the ledgers.  The caller has checked the figures and
 * timestamps; the key is checked and rebuilt here as a live ending would
 * build it.  A key the file holds twice is added up; a key beyond
 * connwatch.max_ledger_keys is added to its reason's overflow entry, of
 * which there is one per reason (an overflow key keeps no names), so
 * that the room kept for them is always there.
 */
CwRestoreOutcome
cw_restore_ending(const CwEndingEntry *saved)
{
	CwEndingKey key;
	CwEndingEntry *entry;
	bool		found;

	if (saved->key.reason >= CW_NUM_ENDING_REASONS)
		return CW_RESTORE_BAD_ENUM;
	if (*(const unsigned char *) &saved->key.overflow > 1)
		return CW_RESTORE_BAD_KEY;
	memset(&key, 0, sizeof(CwEndingKey));
	key.reason = saved->key.reason;
	key.overflow = saved->key.overflow;
	if (!key.overflow &&
		(!cw_clean_name(saved->key.datname, key.datname) ||
		 !cw_clean_name(saved->key.usename, key.usename) ||
		 !cw_clean_name(saved->key.application_name, key.application_name) ||
		 !cw_clean_name(saved->key.policy, key.policy)))
		return CW_RESTORE_BAD_KEY;

	if (key.overflow)
	{
		entry = cw_ending_overflow(key.reason);
		if (entry == NULL)
			return CW_RESTORE_BAD_KEY;	/* cannot happen */
		cw_add_ending(entry, saved);
		return CW_RESTORE_OK;
	}
	entry = hash_search(cw_ending_table, &key, HASH_FIND, &found);
	if (entry != NULL)
	{
		cw_add_ending(entry, saved);
		return CW_RESTORE_MERGED;
	}
	if (hash_get_num_entries(cw_ending_table) >= cw_max_ledger_keys)
	{
		entry = cw_ending_overflow(key.reason);
		if (entry == NULL)
			return CW_RESTORE_BAD_KEY;	/* cannot happen */
		cw_add_ending(entry, saved);
		cw_remember->endings_dropped += saved->count;
		return CW_RESTORE_OVER_CAP;
	}
	entry = hash_search(cw_ending_table, &key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		return CW_RESTORE_OVER_CAP;
	memset((char *) entry + sizeof(CwEndingKey), 0,
		   sizeof(CwEndingEntry) - sizeof(CwEndingKey));
	cw_add_ending(entry, saved);
	return CW_RESTORE_OK;
}

/*
 * Put back a peak read from the ledger file.  No session exists yet:
 * every current figure is 0.  A peak beyond the key cap is dropped (a
 * high-water mark cannot be added up), and counted in peaks_dropped.
 */
CwRestoreOutcome
cw_restore_peak(const CwPeakEntry *saved)
{
	CwPeakKey	key;
	CwPeakEntry *entry;
	bool		found;

	if (saved->key.scope >= CW_NUM_PEAK_SCOPES)
		return CW_RESTORE_BAD_ENUM;
	if (*(const unsigned char *) &saved->key.overflow > 1)
		return CW_RESTORE_BAD_KEY;
	memset(&key, 0, sizeof(CwPeakKey));
	key.scope = saved->key.scope;
	key.overflow = saved->key.overflow;
	if (!key.overflow && key.scope != CW_PEAK_SERVER &&
		!cw_clean_name(saved->key.name, key.name))
		return CW_RESTORE_BAD_KEY;

	entry = hash_search(cw_peak_table, &key, HASH_FIND, &found);
	if (entry == NULL && !key.overflow &&
		hash_get_num_entries(cw_peak_table) >= cw_max_ledger_keys)
	{
		cw_remember->peaks_dropped++;
		return CW_RESTORE_OVER_CAP;
	}
	if (entry == NULL)
	{
		entry = hash_search(cw_peak_table, &key, HASH_ENTER_NULL, &found);
		if (entry == NULL)
			return CW_RESTORE_OVER_CAP;
		entry->peak = 0;
		entry->peak_at = 0;
	}
	entry->current = 0;
	if (saved->peak > entry->peak)
	{
		entry->peak = saved->peak;
		entry->peak_at = saved->peak_at;
	}
	return found ? CW_RESTORE_MERGED : CW_RESTORE_OK;
}

/* Forget every ending; the caller holds the lock exclusively */
void
cw_reset_endings(void)
{
	HASH_SEQ_STATUS scan;
	CwEndingEntry *entry;

	hash_seq_init(&scan, cw_ending_table);
	while ((entry = hash_seq_search(&scan)) != NULL)
		hash_search(cw_ending_table, &entry->key, HASH_REMOVE, NULL);
	cw_remember->endings_dropped = 0;
}

/*
 * Peaks start again from the current figures; entries nobody holds any
 * more are dropped.  The caller holds the lock exclusively.
 */
void
cw_reset_peaks(void)
{
	HASH_SEQ_STATUS scan;
	CwPeakEntry *entry;
	TimestampTz now = GetCurrentTimestamp();

	hash_seq_init(&scan, cw_peak_table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->current == 0)
			hash_search(cw_peak_table, &entry->key, HASH_REMOVE, NULL);
		else
		{
			entry->peak = entry->current;
			entry->peak_at = now;
		}
	}
	cw_remember->peaks_dropped = 0;
	cw_remember->peaks_reset_at = now;
}
