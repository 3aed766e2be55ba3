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
 * The protocol: a key's slot is found by open addressing from its hash.  A
 * FREE slot is claimed with compare-and-swap (FREE -> FILLING), the key is
 * written, a write barrier, then READY; from then on the key is immutable
 * and only its atomic counters change.  A process that meets a FILLING slot
 * waits (briefly, bounded) for it to become READY before comparing keys, so
 * that two processes refused for the same reason at once share one key.
 * At most connwatch.max_ledger_keys slots are ever claimed (refusal_keys,
 * an atomic counter, is taken before a claim), and an attempt looks at
 * CW_MAX_PROBES slots at most: past either, the attempt is counted in its
 * cause's overflow key (names not kept) and in refusals_dropped.  So an
 * unauthenticated client inventing role names cannot make a refusal
 * slower than a few dozen comparisons.  (A process that gives up waiting
 * for a slot being filled probes on, and may claim a second slot for the
 * same key: the view then shows it in two rows.)
 *
 * The cause is read from the error's SQLSTATE and its untranslated message
 * (message_id), never from the translated text: a server running with
 * lc_messages = 'de_DE' counts the same.
 *
 * A reset (cw_reset_refusals, under the LWLock, which the counting side
 * never takes) frees only READY slots, by compare-and-swap, and leaves a
 * slot being filled alone.  XXX: an attempt counted at the very instant
 * its slot is reset may be lost, or counted under the next key to take
 * the slot.
 *
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
 * Count one refused attempt.  Safe without a PGPROC and in the postmaster's
 * children before they have one: atomics and the caller's stack only.
 */
void
cw_count_refusal(CwRefusalCause cause, const Port *port)
{
	CwRefusalKey key;
	TimestampTz now = GetCurrentTimestamp();
	uint32		hash;
	uint32		mask;
	uint32		probe;

	if (cw_remember == NULL)
		return;

	cw_refusal_key(cause, port, &key);
	hash = hash_bytes((const unsigned char *) &key, sizeof(CwRefusalKey));
	mask = cw_remember->refusal_slots - 1;

	for (probe = 0; probe < Min(cw_remember->refusal_slots, CW_MAX_PROBES); probe++)
	{
		CwRefusalEntry *entry = &cw_remember->refusals[(hash + probe) & mask];
		uint32		state = pg_atomic_read_u32(&entry->state);
		int			spins;

		if (state == CW_ENTRY_FREE)
		{
			uint32		expected = CW_ENTRY_FREE;

			/* a new key: only while the ledger has room for one */
			if (pg_atomic_fetch_add_u32(&cw_remember->refusal_keys, 1) >=
				cw_remember->refusal_max_keys)
			{
				pg_atomic_fetch_sub_u32(&cw_remember->refusal_keys, 1);
				break;
			}
			if (pg_atomic_compare_exchange_u32(&entry->state, &expected,
											   CW_ENTRY_FILLING))
			{
				entry->key = key;
				entry->hash = hash;
				pg_atomic_write_u64(&entry->count, 0);
				pg_atomic_write_u64(&entry->first_at, 0);
				pg_write_barrier();
				pg_atomic_write_u32(&entry->state, CW_ENTRY_READY);
				cw_bump(entry, now);
				return;
			}
			pg_atomic_fetch_sub_u32(&cw_remember->refusal_keys, 1);
			state = expected;
		}

		/* being filled: possibly with our key, so wait and compare */
		for (spins = 0; state == CW_ENTRY_FILLING && spins < CW_FILLING_SPINS; spins++)
		{
			pg_spin_delay();
			state = pg_atomic_read_u32(&entry->state);
		}

		if (state == CW_ENTRY_READY)
		{
			pg_read_barrier();
			if (entry->hash == hash &&
				memcmp(&entry->key, &key, sizeof(CwRefusalKey)) == 0)
			{
				cw_bump(entry, now);
				return;
			}
		}
	}

	/* the ledger is full, or the key is too far from its hash */
	pg_atomic_fetch_add_u64(&cw_remember->refusals_dropped, 1);
	cw_bump(&cw_remember->refusals[cw_remember->refusal_slots + cause], now);
}

/*
 * Put back one key saved at the last clean shutdown (persistence.c), while
 * the postmaster creates the ledgers and nothing else can count yet.
 */
void
cw_restore_refusal(const CwRefusalKey *key, uint64 count,
				   TimestampTz first_at, TimestampTz last_at)
{
	CwRefusalEntry *entry = NULL;
	uint32		hash;
	uint32		mask = cw_remember->refusal_slots - 1;
	uint32		probe;

	if (key->cause >= CW_NUM_REFUSAL_CAUSES)
		return;
	hash = hash_bytes((const unsigned char *) key, sizeof(CwRefusalKey));
	if (key->overflow)
		entry = &cw_remember->refusals[cw_remember->refusal_slots + key->cause];
	else
	{
		for (probe = 0; probe < cw_remember->refusal_slots && entry == NULL; probe++)
		{
			CwRefusalEntry *slot = &cw_remember->refusals[(hash + probe) & mask];

			if (pg_atomic_read_u32(&slot->state) == CW_ENTRY_FREE)
				entry = slot;
		}
		if (entry == NULL ||
			pg_atomic_read_u32(&cw_remember->refusal_keys) >= cw_remember->refusal_max_keys)
			return;				/* a smaller max_ledger_keys than before */
		pg_atomic_fetch_add_u32(&cw_remember->refusal_keys, 1);
		entry->key = *key;
		entry->hash = hash;
		pg_atomic_write_u32(&entry->state, CW_ENTRY_READY);
	}
	pg_atomic_write_u64(&entry->count, count);
	pg_atomic_write_u64(&entry->first_at, (uint64) first_at);
	pg_atomic_write_u64(&entry->last_at, (uint64) last_at);
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
