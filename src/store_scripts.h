#ifndef RELAY_STORE_SCRIPTS_H
#define RELAY_STORE_SCRIPTS_H
/* The shared store's atomic steps (SPEC §12, issue 18): Lua scripts that
 * Redis or Valkey run one at a time, so N relays that share a store never
 * hold more than a wallet has and never pass a limit together. Here are
 * only the scripts' texts and the names of their keys; the store client
 * loads them (SCRIPT LOAD at each connect, EVALSHA after; a NOSCRIPT
 * error, after the server restarted, means load again) and reads their
 * replies with resp.h.
 *
 * Keys. A wallet W under the prefix P (store prefix=, default "relay:")
 * has seven keys, which every script takes as KEYS[1..7] in this order
 * (store_key() writes them). {W} is a Redis Cluster hash tag: a wallet's
 * keys share one slot, as a script needs.
 *   1 P{W}          hash: bal (the balance), held (the sum of open holds),
 *                   htok (their tokens), streams (open streams), day (the
 *                   UTC day number of spent), spent (charged that day)
 *   2 P{W}:holds    hash: request id -> "AMOUNT TOKENS STREAM", one field
 *                   per open hold
 *   3 P{W}:hexp     sorted set: request id by the ms its hold expires
 *   4 P{W}:rpm      sorted set: request id by the ms it was admitted
 *                   (the rpm window; gone 61 s after the last admission)
 *   5 P{W}:tpm      hash: unix second -> tokens settled in it (the tpm
 *                   window; gone 62 s after the last settle)
 *   6 P{W}:done     sorted set: settled request id by the ms it is
 *                   forgotten
 *   7 P{W}:credits  sorted set: credit id by the ms it is forgotten
 *                   (+inf: never)
 * Reading a wallet: HMGET P{W} bal held, or READ below (the windows too).
 *
 * Arguments and replies are decimal strings. Money is in nano-units of
 * the wallet currency and never a Lua number: Lua 5.1 numbers are
 * doubles, exact to 2^53 only (9e15 nano-units, 9 million units). The
 * scripts compare money in two limbs (hi * 10^9 + lo, exact to +-9e18)
 * and change it only with HINCRBY, Redis's own 64-bit integers, given
 * the same strings; a result beyond +-9e18 is refused before anything is
 * written. An amount argument is 0 to 10^18 - 1. Tokens (at most 10^15),
 * counts and milliseconds are Lua numbers: exact.
 *
 * Time. The first argument of HOLD, SETTLE and CREDIT is now in unix ms,
 * or "0" for the store's clock (TIME). Relays send "0": then every relay
 * of the fleet uses one clock for the windows, the hold expiries and the
 * UTC day, whatever its own clock says. Tests and tools pass a time.
 * (TIME in a script that writes needs effects replication: Redis 5 and
 * later, Valkey.)
 *
 * The rpm window is a sliding log: the ids admitted in the last 60 s, by
 * time. It is exact (a request counts for exactly 60 s, so the limit
 * holds over every 60-s window, where a two-bucket estimate can let
 * through more than the limit when traffic is uneven), its Retry-After is
 * exact (when the oldest admission that must leave has left), and it costs
 * at most rpm entries per wallet: only admitted requests are logged, and
 * only when rpm is set.
 *
 * The tpm window sums tokens, so a log would cost a sum over every
 * request of the last minute at each HOLD: it is 1-s buckets instead, a
 * hash of at most 61 fields. A bucket counts while any of its
 * milliseconds can lie within the last 60 s (61 buckets: the window is
 * 60 to 61 s, never shorter, so the limit holds over every 60-s window);
 * Retry-After is when enough buckets have left. Settled tokens count in
 * the second of their settle; open holds count with their estimate
 * (htok) until settled or expired, however old (SPEC §12).
 *
 * Hold expiry. A hold expires ttl_ms after HOLD took (or refreshed) it.
 * The relay passes timeouts total + 60 s: no request of a live relay
 * lasts longer than total (SPEC §7, default 600 s), so a live relay's
 * hold never expires under its request, and a dead relay's holds are
 * freed at most that long after it died. Expired holds are released by
 * the wallet's next HOLD or SETTLE, at most 64 a call (bounded work);
 * until then they still count, which can refuse but never overdraw.
 *
 * Ids (request and credit ids): 1 to 128 bytes of [A-Za-z0-9_.:-]; a
 * request id must be unique in the fleet (the relay's x-request-id is
 * random), a credit id unique per credit (its ledger line's SHA-256).
 *
 * Errors: a malformed argument is an error reply "ERR relay: bad NAME
 * ..." (Redis adds the script's name), and nothing is written.
 *
 * HOLD: take a hold for request ID against the balance and the limits.
 *   ARGV  1 now_ms  2 id  3 amount (nano)  4 tokens (estimated input +
 *         output)  5 stream (1: counts against max_streams, else 0)
 *         6 ttl_ms (>= 1)  7 overdraft (nano)  8 rpm  9 tpm
 *         10 max_streams  11 budget_day (nano); a limit of 0 is none
 *   Checks, in order: ID already settled; ID already held; the balance
 *   (balance - held - amount + overdraft >= 0); then every limit.
 *   Replies
 *     {"ok", balance, held}        held: with this hold
 *     {"dup", balance, held}       ID holds already: its expiry is
 *                                  refreshed, nothing else (a retry after
 *                                  a lost reply; a keep-alive)
 *     {"done", balance, held}      ID was settled: nothing held
 *     {"refused", reason, retry_after_s, balance, held}  nothing held;
 *       reason "balance" (402, retry -1), or "max_streams", "rpm", "tpm",
 *       "budget_day" (429 with Retry-After); -1: waiting cannot help (one
 *       request over tpm or budget_day). With several limits over, the
 *       longest wait and its reason. The waits: rpm exact; tpm when
 *       enough settled tokens have left the window, 1 when open holds
 *       alone are in the way (they end when their requests end, which
 *       the store cannot know); max_streams 1; budget_day the seconds to
 *       the next UTC midnight when the day's charges alone are in the
 *       way, else 1. A refusal writes nothing but the release of expired
 *       holds and the trimming of the windows.
 *
 * SETTLE: replace request ID's hold by its real charge.
 *   ARGV  1 now_ms  2 id  3 charge (nano)  4 tokens (input + output)
 *         5 remember_ms (how long ID is remembered: longer than a settle
 *         may be retried; the relay passes 86400000)
 *   Releases ID's hold if still open, debits the balance, adds the charge
 *   to the day's spend (a new UTC day starts from it) and the tokens to
 *   now's second. A charge may take the balance below -overdraft (usage
 *   beyond a hold, SPEC §8); HOLD then refuses until a credit. Charge 0
 *   and tokens 0 release a hold without a charge.
 *   Replies
 *     {"ok", balance, found}       found: 1 when the hold was open, 0 when
 *                                  it had expired (charged all the same)
 *     {"dup", balance, 0}          ID was settled already: nothing changed
 *
 * CREDIT: add to a balance, once per credit id.
 *   ARGV  1 now_ms  2 credit id  3 amount (nano, may be negative)
 *         4 remember_ms (0: forever)
 *   Replies {"ok", balance} or {"dup", balance} (nothing changed).
 *
 * REBUILD: set a wallet from the ledgers (relay store rebuild LEDGER...,
 * with every relay of the fleet stopped: a charge settled between the
 * reading of the ledgers and this would be lost or counted twice).
 *   ARGV  1 balance (nano, signed)  2 day (UTC day number: unix ms /
 *         86400000)  3 spent (charged that day, nano)
 *   Sets bal, day and spent; recounts held, htok and streams from the
 *   open holds. Reply {"ok", old_balance, held}.
 *
 * READ: what GET /v1/wallet shows; writes nothing.
 *   ARGV  1 now_ms
 *   Reply {"ok", balance, held, held_tokens, streams, spent (charged this
 *   UTC day), rpm (admissions in the rpm window), tpm (settled tokens in
 *   the tpm window; the open holds' are held_tokens)}
 */
#include <stddef.h>

enum store_key {
	STORE_K_WALLET,
	STORE_K_HOLDS,
	STORE_K_HEXP,
	STORE_K_RPM,
	STORE_K_TPM,
	STORE_K_DONE,
	STORE_K_CREDITS,
	STORE_NKEYS
};

enum store_script {
	STORE_HOLD,
	STORE_SETTLE,
	STORE_CREDIT,
	STORE_REBUILD,
	STORE_READ,
	STORE_NSCRIPTS
};

struct store_script_def {
	const char *name;	/* "hold", "settle", "credit", "rebuild", "read" */
	unsigned nargs;		/* its ARGV count (KEYS: always STORE_NKEYS) */
};

/* The scripts, indexed by enum store_script. */
extern const struct store_script_def store_scripts[STORE_NSCRIPTS];

/* Script k's whole text (the helpers, then its body), NUL-terminated,
 * with its length in *len: what SCRIPT LOAD and EVAL send and EVALSHA
 * names by its SHA-1. Unpacked on the first call (the binary keeps the
 * scripts LZ-packed: tools/mklua), kept for the process;
 * NULL when out of memory or k is not a script. */
const char *store_script_lua(enum store_script k, size_t *len);

/* Key k of wallet as "PREFIX{WALLET}SUFFIX" into out[0..cap) with a NUL.
 * Returns its length, or -1 when it does not fit, or the wallet is empty
 * or has a brace (it would break the hash tag). */
int store_key(char *out, size_t cap, const char *prefix, const char *wallet,
    enum store_key k);

#endif
