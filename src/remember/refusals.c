/*-------------------------------------------------------------------------
 *
 * refusals.c
 *		The ledger of refused connection attempts: classified by cause,
 *		keyed by what the client claimed, counted without a lock.
 *
 * A refusal is counted where it is reported: in emit_log_hook, for the
 * FATAL that ends the attempt, and in ClientAuthentication_hook, for a
 * client that hung up at the password prompt (core reports nothing then).
 * Several causes are reported by processes that have no PGPROC -- a child
 * that could not get one ("too many clients"), a dead-end child while the
 * server starts or stops -- where taking an LWLock would PANIC the server.
 * So the ledger is a fixed array in shared memory, claimed and counted with
 * atomics only: no lock, no allocation, nothing that can raise an error.
 *
 * The protocol: a key's slot is found by open addressing from its hash, and
 * an attempt looks at the CW_MAX_PROBES slots from there, all of them (a
 * slot freed by a reset may lie before a key).  A FREE slot is claimed with
 * compare-and-swap (FREE -> FILLING), the key is written, a write barrier,
 * then READY; from then on only its atomic counters change, until a reset
 * or an eviction.  A process that meets a FILLING slot waits (briefly,
 * bounded) for it to become READY before comparing keys, so that two
 * processes refused for the same reason at once share one key; a claim
 * that loses its race looks again, CW_CLAIM_TRIES times at most.
 *
 * At most connwatch.max_ledger_keys slots are ever claimed (refusal_keys,
 * an atomic counter, is taken before a claim).  When the ledger is full,
 * a new key evicts the key seen longest ago (smallest last_at) among the
 * slots it looked at: READY -> FILLING by compare-and-swap, the old key's
 * count taken with an atomic exchange and added to its cause's overflow
 * key (and to refusals_dropped), then the new key is written as above.
 * So entries age out: a burst of invented names fills the ledger, and the
 * first real cause after it gets a key of its own, the oldest burst key
 * giving it up; a key keeps its slot as long as fewer than about
 * max_ledger_keys new keys arrive between two of its refusals.  Every
 * attempt is counted exactly once, under its key or in its cause's
 * overflow key: the totals per cause stay exact.  An attempt looks at
 * CW_MAX_PROBES slots at most, so an unauthenticated client inventing role
 * names cannot make a refusal slower than a few dozen comparisons.
 * XXX: an attempt that matched a key at the very instant the key is
 * evicted is counted under the slot's next key (still counted once), and
 * a process that gives up waiting for a slot being filled may claim a
 * second slot for the same key (the view then shows it in two rows).

 * The cause is read from the error's SQLSTATE and its untranslated message
 * (message_id), never from the translated text: a server running with
 * lc_messages = 'de_DE' counts the same.
 *
 * A reset (cw_reset_refusals, under the LWLock, which the counting side
 * never takes) frees only READY slots, by compare-and-swap, and leaves a
 * slot being filled alone.  XXX: an attempt counted at the very instant
 * its slot is reset may be lost, or counted under the next key to take
 * the slot; a key being evicted while a reset runs keeps its slot, and
 * what it folded into the overflow key may survive the reset.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include "common/hashfn.h"
#include "utils/timestamp.h"

#include "remember/refusals.h"

/* How long a reader waits for a slot being filled, in spin delays */
#define CW_FILLING_SPINS	10000

/*
 * How many slots an attempt looks at before it gives up and counts in the
 * overflow key.  The table is at most half full (refusal_keys caps the
 * claims at max_ledger_keys, the slots are twice that), so a key is nearly
 * always within a few slots of its hash.
 */
#define CW_MAX_PROBES		64

/* How often an attempt looks again after losing a claim to a race */
#define CW_CLAIM_TRIES		3

static const char *const cw_refusal_cause_labels[CW_NUM_REFUSAL_CAUSES] = {
	"too many clients",
	"reserved slots",
	"role limit",
	"database limit",
	"role does not exist",
	"role not permitted to log in",
	"database does not exist",
	"database not accepting connections",
	"no CONNECT privilege",
	"rejected by pg_hba.conf",
	"authentication failed",
	"authentication abandoned",
	"server starting up",
	"server shutting down",
	"server not yet accepting",
	"other"
};

static void cw_refusal_key(CwRefusalCause cause, const Port *port,
						   CwRefusalKey *key);
static void cw_bump(CwRefusalEntry *entry, TimestampTz now);
static void cw_fold_into_overflow(CwRefusalEntry *entry);
static void cw_fill(CwRefusalEntry *entry, const CwRefusalKey *key,
					uint32 hash, TimestampTz now);
static bool cw_clean_refusal_key(const CwRefusalKey *saved, CwRefusalKey *key);
static void cw_add_restored(CwRefusalEntry *entry, uint64 count,
							TimestampTz first_at, TimestampTz last_at);
static bool cw_starts_with(const char *s, const char *prefix);
static bool cw_ends_with(const char *s, const char *suffix);

const char *
cw_refusal_cause_label(CwRefusalCause cause)
{
	if ((int) cause < 0 || cause >= CW_NUM_REFUSAL_CAUSES)
		return "other";
	return cw_refusal_cause_labels[cause];
}

static bool
cw_starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
cw_ends_with(const char *s, const char *suffix)
{
	size_t		len = strlen(s);
	size_t		suffix_len = strlen(suffix);

	return len >= suffix_len && strcmp(s + len - suffix_len, suffix) == 0;
}

/*
 * The cause of a FATAL that ended a connection attempt, from its SQLSTATE
 * and its message as written in the source (every major 13 to 18).
 */
CwRefusalCause
cw_refusal_cause(int sqlerrcode, const char *message_id)
{
	const char *msg = message_id ? message_id : "";

	switch (sqlerrcode)
	{
		case ERRCODE_TOO_MANY_CONNECTIONS:
			if (strcmp(msg, "sorry, too many clients already") == 0)
				return CW_REFUSED_TOO_MANY_CLIENTS;
			if (cw_starts_with(msg, "remaining connection slots are reserved"))
				return CW_REFUSED_RESERVED_SLOTS;
			if (cw_starts_with(msg, "too many connections for role"))
				return CW_REFUSED_ROLE_LIMIT;
			if (cw_starts_with(msg, "too many connections for database"))
				return CW_REFUSED_DATABASE_LIMIT;
			break;
		case ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION:
			if (strcmp(msg, "role \"%s\" does not exist") == 0)
				return CW_REFUSED_NO_SUCH_ROLE;
			if (strcmp(msg, "role \"%s\" is not permitted to log in") == 0)
				return CW_REFUSED_ROLE_CANNOT_LOGIN;
			if (cw_starts_with(msg, "pg_hba.conf rejects connection") ||
				cw_starts_with(msg, "no pg_hba.conf entry"))
				return CW_REFUSED_HBA;
			if (cw_ends_with(msg, "authentication failed for user \"%s\""))
				return CW_REFUSED_AUTHENTICATION_FAILED;
			break;
		case ERRCODE_INVALID_PASSWORD:
			return CW_REFUSED_AUTHENTICATION_FAILED;
		case ERRCODE_UNDEFINED_DATABASE:
			return CW_REFUSED_NO_SUCH_DATABASE;
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:
			if (strcmp(msg, "database \"%s\" is not currently accepting connections") == 0)
				return CW_REFUSED_DATABASE_CLOSED;
			break;
		case ERRCODE_INSUFFICIENT_PRIVILEGE:
			if (strcmp(msg, "permission denied for database \"%s\"") == 0)
				return CW_REFUSED_NO_CONNECT_PRIVILEGE;
			break;
		case ERRCODE_CANNOT_CONNECT_NOW:
			if (strcmp(msg, "the database system is starting up") == 0)
				return CW_REFUSED_STARTING_UP;
			if (strstr(msg, "shutting down") != NULL)
				return CW_REFUSED_SHUTTING_DOWN;
			return CW_REFUSED_NOT_ACCEPTING;
	}
	return CW_REFUSED_OTHER;
}

/* What the client claimed in its startup packet, and where it came from */
static void
cw_refusal_key(CwRefusalCause cause, const Port *port, CwRefusalKey *key)
{
	memset(key, 0, sizeof(CwRefusalKey));
	key->cause = (uint8) cause;
	if (port == NULL)
		return;

	if (port->database_name != NULL && port->database_name[0] != '\0')
	{
		strlcpy(key->datname, port->database_name, NAMEDATALEN);
		key->has_datname = true;
	}
	if (port->user_name != NULL && port->user_name[0] != '\0')
	{
		strlcpy(key->usename, port->user_name, NAMEDATALEN);
		key->has_usename = true;
	}
	if (port->application_name != NULL)
	{
		strlcpy(key->application_name, port->application_name, NAMEDATALEN);
		key->has_application_name = true;
	}

	key->addr_family = (uint8) port->raddr.addr.ss_family;
	if (key->addr_family == AF_INET)
		memcpy(key->addr,
			   &((const struct sockaddr_in *) &port->raddr.addr)->sin_addr, 4);
	else if (key->addr_family == AF_INET6)
		memcpy(key->addr,
			   &((const struct sockaddr_in6 *) &port->raddr.addr)->sin6_addr, 16);
}

static void
cw_bump(CwRefusalEntry *entry, TimestampTz now)
{
	uint64		unset = 0;

	pg_atomic_fetch_add_u64(&entry->count, 1);
	pg_atomic_fetch_add_u64(&cw_remember->refusals_total, 1);
	(void) pg_atomic_compare_exchange_u64(&entry->first_at, &unset, (uint64) now);
	pg_atomic_write_u64(&entry->last_at, (uint64) now);
}

/*
 * Fold what a slot counted into its cause's overflow key, so that totals
 * stay exact when the slot is given to another key.  The caller owns the
 * slot (FILLING): the count is taken with an exchange, so an attempt that
 * matched the old key just before is either in what is folded or counted
 * under the slot's next key, never lost.
 */
static void
cw_fold_into_overflow(CwRefusalEntry *entry)
{
	CwRefusalEntry *overflow;
	uint64		count = pg_atomic_exchange_u64(&entry->count, 0);
	uint64		first_at = pg_atomic_read_u64(&entry->first_at);
	uint64		last_at = pg_atomic_read_u64(&entry->last_at);
	uint64		seen;

	if (count == 0 || entry->key.cause >= CW_NUM_REFUSAL_CAUSES)
		return;
	overflow = &cw_remember->refusals[cw_remember->refusal_slots + entry->key.cause];
	pg_atomic_fetch_add_u64(&overflow->count, count);
	pg_atomic_fetch_add_u64(&cw_remember->refusals_dropped, count);

	/* earliest first_at, latest last_at */
	seen = pg_atomic_read_u64(&overflow->first_at);
	while (first_at != 0 && (seen == 0 || first_at < seen) &&
		   !pg_atomic_compare_exchange_u64(&overflow->first_at, &seen, first_at))
		;
	seen = pg_atomic_read_u64(&overflow->last_at);
	while (last_at > seen &&
		   !pg_atomic_compare_exchange_u64(&overflow->last_at, &seen, last_at))
		;
}

/*
 * Count one refused attempt.  Safe without a PGPROC and in the postmaster's
 * children before they have one: atomics and the caller's stack only.
 *
 * Looks at the CW_MAX_PROBES slots from the key's hash (all of them: after
 * an eviction a key may sit past a slot that was free when it was placed).
 * Found: counted.  Not found: a new key takes the first free slot while
 * the ledger has room for one; when it has none, it takes the slot of the
 * key seen longest ago among those it looked at, whose counts are folded
 * into the overflow key of that key's cause.  A claim that loses a race
 * looks again (at most CW_CLAIM_TRIES times), then counts in the overflow.
 */
void
cw_count_refusal(CwRefusalCause cause, const Port *port)
{
	CwRefusalKey key;
	TimestampTz now = GetCurrentTimestamp();
	uint32		hash;
	uint32		mask;
	uint32		nprobes;
	int			tries;

	if (cw_remember == NULL)
		return;

	cw_refusal_key(cause, port, &key);
	hash = hash_bytes((const unsigned char *) &key, sizeof(CwRefusalKey));
	mask = cw_remember->refusal_slots - 1;
	nprobes = Min(cw_remember->refusal_slots, CW_MAX_PROBES);

	for (tries = 0; tries < CW_CLAIM_TRIES; tries++)
	{
		CwRefusalEntry *free_slot = NULL;
		CwRefusalEntry *victim = NULL;
		uint64		victim_last_at = 0;
		uint32		probe;

		for (probe = 0; probe < nprobes; probe++)
		{
			CwRefusalEntry *entry = &cw_remember->refusals[(hash + probe) & mask];
			uint32		state = pg_atomic_read_u32(&entry->state);
			int			spins;

			/* being filled: possibly with our key, so wait and compare */
			for (spins = 0; state == CW_ENTRY_FILLING && spins < CW_FILLING_SPINS; spins++)
			{
				pg_spin_delay();
				state = pg_atomic_read_u32(&entry->state);
			}

			if (state == CW_ENTRY_FREE)
			{
				if (free_slot == NULL)
					free_slot = entry;
			}
			else if (state == CW_ENTRY_READY)
			{
				uint64		last_at;

				pg_read_barrier();
				if (entry->hash == hash &&
					memcmp(&entry->key, &key, sizeof(CwRefusalKey)) == 0)
				{
					cw_bump(entry, now);
					return;
				}
				last_at = pg_atomic_read_u64(&entry->last_at);
				if (victim == NULL || last_at < victim_last_at)
				{
					victim = entry;
					victim_last_at = last_at;
				}
			}
		}

		/* a new key: in a free slot while the ledger has room for one */
		if (free_slot != NULL)
		{
			uint32		expected = CW_ENTRY_FREE;

			if (pg_atomic_fetch_add_u32(&cw_remember->refusal_keys, 1) <
				cw_remember->refusal_max_keys)
			{
				if (pg_atomic_compare_exchange_u32(&free_slot->state, &expected,
												   CW_ENTRY_FILLING))
				{
					/* what a reset raced with is not this key's (see XXX) */
					pg_atomic_write_u64(&free_slot->count, 0);
					cw_fill(free_slot, &key, hash, now);
					return;
				}
				pg_atomic_fetch_sub_u32(&cw_remember->refusal_keys, 1);
				continue;		/* lost the slot: look again */
			}
			pg_atomic_fetch_sub_u32(&cw_remember->refusal_keys, 1);
		}

		/* full: the key seen longest ago gives up its slot */
		if (victim != NULL)
		{
			uint32		expected = CW_ENTRY_READY;

			if (pg_atomic_compare_exchange_u32(&victim->state, &expected,
											   CW_ENTRY_FILLING))
			{
				cw_fold_into_overflow(victim);
				cw_fill(victim, &key, hash, now);
				return;
			}
			continue;			/* taken or reset meanwhile: look again */
		}
		break;
	}

	/* nothing to take, or every claim lost a race */
	pg_atomic_fetch_add_u64(&cw_remember->refusals_dropped, 1);
	cw_bump(&cw_remember->refusals[cw_remember->refusal_slots + cause], now);
}

/*
 * Write a new key into a slot the caller owns (FILLING), publish it, and
 * count the attempt.  The count was set or exchanged to zero: an attempt
 * that matched an evicted key at the last moment is counted here.
 */
static void
cw_fill(CwRefusalEntry *entry, const CwRefusalKey *key, uint32 hash,
		TimestampTz now)
{
	entry->key = *key;
	entry->hash = hash;
	pg_atomic_write_u64(&entry->first_at, 0);
	pg_atomic_write_u64(&entry->last_at, 0);
	pg_write_barrier();
	pg_atomic_write_u32(&entry->state, CW_ENTRY_READY);
	cw_bump(entry, now);
}

/*
 * A key read from the ledger file, checked and rebuilt as cw_refusal_key
 * builds one (zeros past each name, no name where the client said none),
 * so that it hashes and compares as the same attempt counted live would.
 * False if it cannot be one: a cause, a flag or an address family out of
 * range, or a name without its terminating zero.
 */
static bool
cw_clean_refusal_key(const CwRefusalKey *saved, CwRefusalKey *key)
{
	const unsigned char *flags[] = {
		(const unsigned char *) &saved->overflow,
		(const unsigned char *) &saved->has_datname,
		(const unsigned char *) &saved->has_usename,
		(const unsigned char *) &saved->has_application_name
	};
	int			i;

	for (i = 0; i < lengthof(flags); i++)
		if (*flags[i] > 1)
			return false;
	if (saved->addr_family != 0 && saved->addr_family != AF_INET &&
		saved->addr_family != AF_INET6 && saved->addr_family != AF_UNIX)
		return false;
	if (memchr(saved->datname, '\0', NAMEDATALEN) == NULL ||
		memchr(saved->usename, '\0', NAMEDATALEN) == NULL ||
		memchr(saved->application_name, '\0', NAMEDATALEN) == NULL)
		return false;

	memset(key, 0, sizeof(CwRefusalKey));
	key->cause = saved->cause;
	key->overflow = saved->overflow;
	if (key->overflow)
		return true;			/* an overflow key keeps no names */
	key->has_datname = saved->has_datname && saved->datname[0] != '\0';
	if (key->has_datname)
		strlcpy(key->datname, saved->datname, NAMEDATALEN);
	key->has_usename = saved->has_usename && saved->usename[0] != '\0';
	if (key->has_usename)
		strlcpy(key->usename, saved->usename, NAMEDATALEN);
	key->has_application_name = saved->has_application_name;
	if (key->has_application_name)
		strlcpy(key->application_name, saved->application_name, NAMEDATALEN);
	key->addr_family = saved->addr_family;
	if (key->addr_family == AF_INET)
		memcpy(key->addr, saved->addr, 4);
	else if (key->addr_family == AF_INET6)
		memcpy(key->addr, saved->addr, 16);
	return true;
}

/* Add saved counts to an entry: the postmaster, nothing else counts yet */
static void
cw_add_restored(CwRefusalEntry *entry, uint64 count, TimestampTz first_at,
				TimestampTz last_at)
{
	uint64		old_first = pg_atomic_read_u64(&entry->first_at);

	pg_atomic_write_u64(&entry->count, pg_atomic_read_u64(&entry->count) + count);
	if (old_first == 0 || (first_at != 0 && (uint64) first_at < old_first))
		pg_atomic_write_u64(&entry->first_at, (uint64) first_at);
	if ((uint64) last_at > pg_atomic_read_u64(&entry->last_at))
		pg_atomic_write_u64(&entry->last_at, (uint64) last_at);
}

/*
 * Put back one key read from the ledger file (persistence.c), while the
 * postmaster creates the ledgers and nothing else can count yet.  The
 * caller has checked the count and the timestamps; the key is checked
 * here.  A key the file holds twice is added up; a key beyond
 * connwatch.max_ledger_keys, or too far from its hash to be found, is
 * added to its cause's overflow key, so that totals stay what they were.
 */
CwRestoreOutcome
cw_restore_refusal(const CwRefusalKey *saved, uint64 count,
				   TimestampTz first_at, TimestampTz last_at)
{
	CwRefusalKey key;
	CwRefusalEntry *free_slot = NULL;
	uint32		hash;
	uint32		mask = cw_remember->refusal_slots - 1;
	uint32		probe;

	if (saved->cause >= CW_NUM_REFUSAL_CAUSES)
		return CW_RESTORE_BAD_ENUM;
	if (!cw_clean_refusal_key(saved, &key))
		return CW_RESTORE_BAD_KEY;
	if (key.overflow)
	{
		cw_add_restored(&cw_remember->refusals[cw_remember->refusal_slots + key.cause],
						count, first_at, last_at);
		return CW_RESTORE_OK;
	}

	hash = hash_bytes((const unsigned char *) &key, sizeof(CwRefusalKey));
	for (probe = 0; probe < Min(cw_remember->refusal_slots, CW_MAX_PROBES); probe++)
	{
		CwRefusalEntry *slot = &cw_remember->refusals[(hash + probe) & mask];

		if (pg_atomic_read_u32(&slot->state) == CW_ENTRY_READY &&
			slot->hash == hash &&
			memcmp(&slot->key, &key, sizeof(CwRefusalKey)) == 0)
		{
			cw_add_restored(slot, count, first_at, last_at);
			return CW_RESTORE_MERGED;
		}
		if (free_slot == NULL && pg_atomic_read_u32(&slot->state) == CW_ENTRY_FREE)
			free_slot = slot;
	}
	if (free_slot == NULL ||
		pg_atomic_read_u32(&cw_remember->refusal_keys) >= cw_remember->refusal_max_keys)
	{
		/* a smaller max_ledger_keys than before, or a file with too many */
		cw_add_restored(&cw_remember->refusals[cw_remember->refusal_slots + key.cause],
						count, first_at, last_at);
		pg_atomic_write_u64(&cw_remember->refusals_dropped,
							pg_atomic_read_u64(&cw_remember->refusals_dropped) + count);
		return CW_RESTORE_OVER_CAP;
	}
	pg_atomic_fetch_add_u32(&cw_remember->refusal_keys, 1);
	free_slot->key = key;
	free_slot->hash = hash;
	pg_atomic_write_u64(&free_slot->count, 0);
	pg_atomic_write_u64(&free_slot->first_at, 0);
	pg_atomic_write_u64(&free_slot->last_at, 0);
	cw_add_restored(free_slot, count, first_at, last_at);
	pg_atomic_write_u32(&free_slot->state, CW_ENTRY_READY);
	return CW_RESTORE_OK;
}

/* Forget every refusal; the caller holds the ledger lock exclusively */
void
cw_reset_refusals(void)
{
	uint32		i;

	for (i = 0; i < cw_remember->refusal_slots + CW_NUM_REFUSAL_CAUSES; i++)
	{
		CwRefusalEntry *entry = &cw_remember->refusals[i];

		uint32		expected = CW_ENTRY_READY;

		if (i < cw_remember->refusal_slots)
		{
			/* a slot being filled is its filler's: leave it */
			if (!pg_atomic_compare_exchange_u32(&entry->state, &expected,
												CW_ENTRY_FREE))
				continue;
			pg_atomic_fetch_sub_u32(&cw_remember->refusal_keys, 1);
		}
		pg_atomic_write_u64(&entry->count, 0);
		pg_atomic_write_u64(&entry->first_at, 0);
		pg_atomic_write_u64(&entry->last_at, 0);
	}
	pg_atomic_write_u64(&cw_remember->refusals_dropped, 0);
}
