/* store_scripts: the Lua scripts of the shared store and the names of
 * their keys (see store_scripts.h for each script's KEYS, ARGV and
 * replies, and the reasons for the windows, the clock and the expiry).
 *
 * The scripts are C strings so that the binary stays one file; each
 * starts with the same helpers (PRELUDE). The relay does not compile
 * them: tools/mklua packs the helpers and the bodies into the build's
 * store_lua.c, and store_script_lua() unpacks them and puts the helpers
 * in front of a body when its text is first asked for. Comments are C
 * comments between the lines, so they cost the store nothing. Lua in Redis may not create
 * globals: everything is local. Each script checks all its arguments
 * before it writes anything, since a script that fails half-way keeps
 * the writes it made.
 *
 * Not here: the connection, the loading of the scripts (SCRIPT LOAD /
 * EVALSHA / NOSCRIPT) and the reading of replies: the store client's. */
#include <stdlib.h>
#include <string.h>

#include "store_scripts.h"
#include "util.h"

#ifdef STORE_SCRIPTS_TEXTS
/* The texts: only tools/mklua compiles them (it packs them into the
 * build's store_lua.c, which the relay unpacks). */

/* The helpers every script starts with. */
#define PRELUDE \
	/* Money: a decimal string of at most maxd digits (canonical: no leading \
	 * zero, no "-0") as two limbs {hi, lo}, value = hi * 10^9 + lo with \
	 * 0 <= lo < 10^9. Each limb stays far below 2^53, so sums of a few \
	 * amounts are exact in Lua's doubles. */ \
	"local B = 1000000000\n" \
	"local function fail(what)\n" \
	"  error({err = 'ERR relay: ' .. what})\n" \
	"end\n" \
	"local function dec(s, maxd)\n" \
	"  if type(s) ~= 'string' then return nil end\n" \
	"  local sign, d = string.match(s, '^(%-?)(%d+)$')\n" \
	"  if d == nil or #d > maxd or (#d > 1 and string.sub(d, 1, 1) == '0')\n" \
	"      or (sign == '-' and d == '0') then\n" \
	"    return nil\n" \
	"  end\n" \
	"  local hi, lo = 0, tonumber(string.sub(d, -9))\n" \
	"  if #d > 9 then hi = tonumber(string.sub(d, 1, #d - 9)) end\n" \
	"  if sign == '-' then\n" \
	"    hi, lo = -hi, -lo\n" \
	"    if lo < 0 then lo = lo + B; hi = hi - 1 end\n" \
	"  end\n" \
	"  return {hi, lo}\n" \
	"end\n" \
	/* An amount argument: 0 to 10^18 - 1. */ \
	"local function amount(s, what)\n" \
	"  local a = dec(s, 18)\n" \
	"  if a == nil or a[1] < 0 then fail('bad ' .. what) end\n" \
	"  return a\n" \
	"end\n" \
	/* A count, token number or time argument: a canonical decimal of at \
	 * most maxd digits (15 digits: exact in a double). */ \
	"local function count(s, maxd, what)\n" \
	"  if type(s) ~= 'string' or #s > maxd or not string.match(s, '^%d+$')\n" \
	"      or (#s > 1 and string.sub(s, 1, 1) == '0') then\n" \
	"    fail('bad ' .. what)\n" \
	"  end\n" \
	"  return tonumber(s)\n" \
	"end\n" \
	/* A stored field: missing is 0; HINCRBY wrote it, so it is canonical. */ \
	"local function stored(s)\n" \
	"  if not s then return {0, 0} end\n" \
	"  local a = dec(s, 19)\n" \
	"  if a == nil then fail('stored value is not an integer') end\n" \
	"  return a\n" \
	"end\n" \
	"local function add(a, b)\n" \
	"  local hi, lo = a[1] + b[1], a[2] + b[2]\n" \
	"  if lo >= B then lo = lo - B; hi = hi + 1 end\n" \
	"  return {hi, lo}\n" \
	"end\n" \
	"local function sub(a, b)\n" \
	"  local hi, lo = a[1] - b[1], a[2] - b[2]\n" \
	"  if lo < 0 then lo = lo + B; hi = hi - 1 end\n" \
	"  return {hi, lo}\n" \
	"end\n" \
	"local function gt(a, b)\n" \
	"  return a[1] > b[1] or (a[1] == b[1] and a[2] > b[2])\n" \
	"end\n" \
	"local function str(a)\n" \
	"  local hi, lo, sign = a[1], a[2], ''\n" \
	"  if hi < 0 then\n" \
	"    sign = '-'\n" \
	"    if lo > 0 then hi = -hi - 1; lo = B - lo else hi = -hi end\n" \
	"  end\n" \
	"  if hi == 0 then return sign .. string.format('%d', lo) end\n" \
	"  return sign .. string.format('%d%09d', hi, lo)\n" \
	"end\n" \
	/* Within +-9e18, so HINCRBY (int64) cannot overflow on it. */ \
	"local function fits(a)\n" \
	"  return a[1] > -9000000000 and a[1] < 9000000000\n" \
	"end\n" \
	/* "0": the store's clock, shared by every relay. */ \
	"local function clock(s)\n" \
	"  if s == '0' then\n" \
	"    local t = redis.call('TIME')\n" \
	"    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"  end\n" \
	"  return count(s, 15, 'now')\n" \
	"end\n" \
	/* Ids go into a "A T S" hash value and into replies: no blanks. */ \
	"local function id(s)\n" \
	"  if type(s) ~= 'string' or #s < 1 or #s > 128\n" \
	"      or string.find(s, '[^%w_%-%.:]') then\n" \
	"    fail('bad id')\n" \
	"  end\n" \
	"  return s\n" \
	"end\n" \
	"local function int(x)\n" \
	"  return string.format('%d', x)\n" \
	"end\n" \
	/* Drop hold hid, if open, from the holds and the wallet's sums; returns \
	 * its "AMOUNT TOKENS STREAM" or false. */ \
	"local function release(hid)\n" \
	"  local h = redis.call('HGET', KEYS[2], hid)\n" \
	"  redis.call('ZREM', KEYS[3], hid)\n" \
	"  if not h then return false end\n" \
	"  redis.call('HDEL', KEYS[2], hid)\n" \
	"  local a, t, s = string.match(h, '^(%d+) (%d+) ([01])$')\n" \
	"  if a == nil then return h end\n" \
	"  if a ~= '0' then redis.call('HINCRBY', KEYS[1], 'held', '-' .. a) end\n" \
	"  if t ~= '0' then redis.call('HINCRBY', KEYS[1], 'htok', '-' .. t) end\n" \
	"  if s == '1' then redis.call('HINCRBY', KEYS[1], 'streams', -1) end\n" \
	"  return h\n" \
	"end\n" \
	/* Release the holds expired by now: 64 at most, so a call's work stays \
	 * bounded after a dead relay left thousands; the rest go on later calls \
	 * and count until then (which can refuse, never overdraw). */ \
	"local function purge(now)\n" \
	"  local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now,\n" \
	"      'LIMIT', 0, 64)\n" \
	"  for _, h in ipairs(ids) do release(h) end\n" \
	"end\n" \
	""

static const char lua_hold[] =
	"local now = clock(ARGV[1])\n"
	"local hid = id(ARGV[2])\n"
	"local amt = amount(ARGV[3], 'amount')\n"
	"local tok = count(ARGV[4], 15, 'tokens')\n"
	"local stream = count(ARGV[5], 1, 'stream')\n"
	"local ttl = count(ARGV[6], 12, 'ttl_ms')\n"
	"local over = amount(ARGV[7], 'overdraft')\n"
	"local rpm = count(ARGV[8], 12, 'rpm')\n"
	"local tpm = count(ARGV[9], 15, 'tpm')\n"
	"local maxs = count(ARGV[10], 12, 'max_streams')\n"
	"local budget = amount(ARGV[11], 'budget_day')\n"
	"if stream > 1 or ttl < 1 then fail('bad stream or ttl_ms') end\n"
	"purge(now)\n"
	"local w = redis.call('HMGET', KEYS[1], 'bal', 'held', 'htok', 'streams',\n"
	"    'day', 'spent')\n"
	"local bal, held = stored(w[1]), stored(w[2])\n"
	"if redis.call('ZSCORE', KEYS[6], hid) then\n"
	"  return {'done', str(bal), str(held)}\n"
	"end\n"
	/* A retry after a lost reply, or a keep-alive: never a second hold. */
	"if redis.call('HEXISTS', KEYS[2], hid) == 1 then\n"
	"  redis.call('ZADD', KEYS[3], now + ttl, hid)\n"
	"  return {'dup', str(bal), str(held)}\n"
	"end\n"
	/* balance - held - amount + overdraft >= 0, in limbs. */
	"local held2 = add(held, amt)\n"
	"if not fits(held2) or gt(held2, add(bal, over)) then\n"
	"  return {'refused', 'balance', -1, str(bal), str(held)}\n"
	"end\n"
	/* Every limit is checked; the longest wait wins (-1, never, above all). */
	"local reason, retry = nil, 0\n"
	"local function refuse(r, s)\n"
	"  if reason == nil or (retry >= 0 and (s < 0 or s > retry)) then\n"
	"    reason, retry = r, s\n"
	"  end\n"
	"end\n"
	"local sec = math.floor(now / 1000)\n"
	"local day = math.floor(now / 86400000)\n"
	"if maxs > 0 and stream == 1 and tonumber(w[4] or '0') >= maxs then\n"
	"  refuse('max_streams', 1)\n"
	"end\n"
	/* rpm: the window is (now - 60 s, now]; n - rpm + 1 admissions must
	 * leave, the last of them is the (n - rpm)th oldest. */
	"if rpm > 0 then\n"
	"  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 60000)\n"
	"  local n = redis.call('ZCARD', KEYS[4])\n"
	"  if n >= rpm then\n"
	"    local k = redis.call('ZRANGE', KEYS[4], n - rpm, n - rpm,\n"
	"        'WITHSCORES')\n"
	"    local wait = math.ceil((tonumber(k[2]) + 60000 - now) / 1000)\n"
	"    refuse('rpm', math.max(1, wait))\n"
	"  end\n"
	"end\n"
	/* tpm: buckets sec - 60 .. sec count; bucket b leaves at second b + 61. */
	"if tpm > 0 then\n"
	"  local all = redis.call('HGETALL', KEYS[5])\n"
	"  local sum, buckets = 0, {}\n"
	"  for i = 1, #all, 2 do\n"
	"    local b = tonumber(all[i])\n"
	"    if b == nil or b < sec - 60 then\n"
	"      redis.call('HDEL', KEYS[5], all[i])\n"
	"    else\n"
	"      local t = tonumber(all[i + 1]) or 0\n"
	"      sum = sum + t\n"
	"      buckets[#buckets + 1] = {b, t}\n"
	"    end\n"
	"  end\n"
	"  local used = sum + math.max(0, tonumber(w[3] or '0'))\n"
	"  if tok > tpm then\n"
	"    refuse('tpm', -1)\n"
	"  elseif used + tok > tpm then\n"
	"    local need, s = used + tok - tpm, 1\n"
	"    if need <= sum then\n"
	"      table.sort(buckets, function(x, y) return x[1] < y[1] end)\n"
	"      local freed = 0\n"
	"      for _, b in ipairs(buckets) do\n"
	"        freed = freed + b[2]\n"
	"        if freed >= need then s = b[1] + 61 - sec; break end\n"
	"      end\n"
	"    end\n"
	"    refuse('tpm', s)\n"
	"  end\n"
	"end\n"
	/* budget_day: the day's charges plus the open holds plus this one. */
	"if budget[1] > 0 or budget[2] > 0 then\n"
	"  local spent = {0, 0}\n"
	"  if w[5] == int(day) then spent = stored(w[6]) end\n"
	"  if gt(amt, budget) then\n"
	"    refuse('budget_day', -1)\n"
	"  elseif gt(add(add(spent, held), amt), budget) then\n"
	"    local s = 1\n"
	"    if gt(add(spent, amt), budget) then\n"
	"      s = math.ceil(((day + 1) * 86400000 - now) / 1000)\n"
	"    end\n"
	"    refuse('budget_day', s)\n"
	"  end\n"
	"end\n"
	"if reason then\n"
	"  return {'refused', reason, retry, str(bal), str(held)}\n"
	"end\n"
	"redis.call('HSET', KEYS[2], hid, ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])\n"
	"redis.call('ZADD', KEYS[3], now + ttl, hid)\n"
	"if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[1], 'held', ARGV[3]) end\n"
	"if tok > 0 then redis.call('HINCRBY', KEYS[1], 'htok', ARGV[4]) end\n"
	"if stream == 1 then redis.call('HINCRBY', KEYS[1], 'streams', 1) end\n"
	"if rpm > 0 then\n"
	"  redis.call('ZADD', KEYS[4], now, hid)\n"
	"  redis.call('PEXPIRE', KEYS[4], 61000)\n"
	"end\n"
	"return {'ok', str(bal), str(held2)}\n";

static const char lua_settle[] =
	"local now = clock(ARGV[1])\n"
	"local hid = id(ARGV[2])\n"
	"local amt = amount(ARGV[3], 'charge')\n"
	"local tok = count(ARGV[4], 15, 'tokens')\n"
	"local keep = count(ARGV[5], 12, 'remember_ms')\n"
	"purge(now)\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)\n"
	"local w = redis.call('HMGET', KEYS[1], 'bal', 'day', 'spent')\n"
	"local bal = stored(w[1])\n"
	"if redis.call('ZSCORE', KEYS[6], hid) then\n"
	"  return {'dup', str(bal), 0}\n"
	"end\n"
	"local day = int(math.floor(now / 86400000))\n"
	"local spent = {0, 0}\n"
	"if w[2] == day then spent = stored(w[3]) end\n"
	"local bal2, spent2 = sub(bal, amt), add(spent, amt)\n"
	"if not fits(bal2) or not fits(spent2) then\n"
	"  fail('balance out of range')\n"
	"end\n"
	/* Charged whether its hold is still open or not: every charge once. */
	"local found = release(hid) and 1 or 0\n"
	"if ARGV[3] ~= '0' then\n"
	"  redis.call('HINCRBY', KEYS[1], 'bal', '-' .. ARGV[3])\n"
	"end\n"
	"if w[2] == day then\n"
	"  if ARGV[3] ~= '0' then\n"
	"    redis.call('HINCRBY', KEYS[1], 'spent', ARGV[3])\n"
	"  end\n"
	"else\n"
	"  redis.call('HSET', KEYS[1], 'day', day, 'spent', ARGV[3])\n"
	"end\n"
	"if tok > 0 then\n"
	"  redis.call('HINCRBY', KEYS[5], int(math.floor(now / 1000)), tok)\n"
	"  redis.call('PEXPIRE', KEYS[5], 62000)\n"
	"end\n"
	"redis.call('ZADD', KEYS[6], now + keep, hid)\n"
	"return {'ok', str(bal2), found}\n";

static const char lua_credit[] =
	"local now = clock(ARGV[1])\n"
	"local cid = id(ARGV[2])\n"
	"local amt = dec(ARGV[3], 18)\n"
	"if amt == nil then fail('bad amount') end\n"
	"local keep = count(ARGV[4], 15, 'remember_ms')\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now)\n"
	"local bal = stored(redis.call('HGET', KEYS[1], 'bal'))\n"
	"if redis.call('ZSCORE', KEYS[7], cid) then\n"
	"  return {'dup', str(bal)}\n"
	"end\n"
	"local bal2 = add(bal, amt)\n"
	"if not fits(bal2) then fail('balance out of range') end\n"
	"if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[1], 'bal', ARGV[3]) end\n"
	"if keep == 0 then\n"
	"  redis.call('ZADD', KEYS[7], '+inf', cid)\n"
	"else\n"
	"  redis.call('ZADD', KEYS[7], now + keep, cid)\n"
	"end\n"
	"return {'ok', str(bal2)}\n";

static const char lua_rebuild[] =
	"local bal = dec(ARGV[1], 19)\n"
	"if bal == nil or not fits(bal) then fail('bad balance') end\n"
	"count(ARGV[2], 9, 'day')\n"
	"amount(ARGV[3], 'spent')\n"
	"local old = stored(redis.call('HGET', KEYS[1], 'bal'))\n"
	/* The sums of the open holds, recounted: a repair as well. */
	"local held, htok, streams = {0, 0}, 0, 0\n"
	"local all = redis.call('HGETALL', KEYS[2])\n"
	"for i = 1, #all, 2 do\n"
	"  local a, t, s = string.match(all[i + 1], '^(%d+) (%d+) ([01])$')\n"
	"  if a then\n"
	"    held = add(held, dec(a, 18) or {0, 0})\n"
	"    htok = htok + tonumber(t)\n"
	"    streams = streams + tonumber(s)\n"
	"  end\n"
	"end\n"
	"redis.call('HSET', KEYS[1], 'bal', ARGV[1], 'day', ARGV[2], 'spent',\n"
	"    ARGV[3], 'held', str(held), 'htok', int(htok), 'streams', int(streams))\n"
	"return {'ok', str(old), str(held)}\n";

static const char lua_read[] =
	"local now = clock(ARGV[1])\n"
	"local w = redis.call('HMGET', KEYS[1], 'bal', 'held', 'htok', 'streams',\n"
	"    'day', 'spent')\n"
	"local spent = '0'\n"
	"if w[5] == int(math.floor(now / 86400000)) then\n"
	"  spent = str(stored(w[6]))\n"
	"end\n"
	/* The windows as HOLD sees them, without trimming them (a read). */
	"local n = redis.call('ZCOUNT', KEYS[4], '(' .. int(now - 60000), '+inf')\n"
	"local sec, sum = math.floor(now / 1000), 0\n"
	"local all = redis.call('HGETALL', KEYS[5])\n"
	"for i = 1, #all, 2 do\n"
	"  local b = tonumber(all[i])\n"
	"  if b ~= nil and b >= sec - 60 then sum = sum + (tonumber(all[i + 1]) or 0) end\n"
	"end\n"
	"return {'ok', str(stored(w[1])), str(stored(w[2])),\n"
	"    int(math.max(0, tonumber(w[3] or '0'))), int(tonumber(w[4] or '0')),\n"
	"    spent, int(n), int(sum)}\n";

static const char prelude[] = PRELUDE;

static const struct {
	const char *body;
	size_t len;
} texts[STORE_NSCRIPTS] = {
	{ lua_hold, sizeof(lua_hold) - 1 },
	{ lua_settle, sizeof(lua_settle) - 1 },
	{ lua_credit, sizeof(lua_credit) - 1 },
	{ lua_rebuild, sizeof(lua_rebuild) - 1 },
	{ lua_read, sizeof(lua_read) - 1 },
};
#else

/* build/store_lua.c (tools/mklua): the helpers, then each body. */
extern const unsigned char store_lua_lz[];
extern const size_t store_lua_lz_len, store_lua_start;
extern const size_t store_lua_end[STORE_NSCRIPTS];

const struct store_script_def store_scripts[STORE_NSCRIPTS] = {
	[STORE_HOLD] = { "hold", 11 },
	[STORE_SETTLE] = { "settle", 5 },
	[STORE_CREDIT] = { "credit", 4 },
	[STORE_REBUILD] = { "rebuild", 3 },
	[STORE_READ] = { "read", 1 },
};

const char *
store_script_lua(enum store_script k, size_t *len)
{
	static unsigned char *all;
	static char *text[STORE_NSCRIPTS];
	static size_t n[STORE_NSCRIPTS];
	size_t total = store_lua_end[STORE_NSCRIPTS - 1], from;

	if ((unsigned)k >= STORE_NSCRIPTS) {
		return NULL;
	}
	if (all == NULL) {
		if ((all = malloc(total)) == NULL) {
			return NULL;
		}
		if (util_unlz(store_lua_lz, store_lua_lz_len, all, total) < 0) {
			free(all);
			all = NULL;
			return NULL;
		}
	}
	if (text[k] == NULL) {
		from = k == 0 ? store_lua_start : store_lua_end[k - 1];
		n[k] = store_lua_start + store_lua_end[k] - from;
		if ((text[k] = malloc(n[k] + 1)) == NULL) {
			return NULL;
		}
		memcpy(text[k], all, store_lua_start);
		memcpy(text[k] + store_lua_start, all + from,
		    store_lua_end[k] - from);
		text[k][n[k]] = '\0';
	}
	*len = n[k];
	return text[k];
}

int
store_key(char *out, size_t cap, const char *prefix, const char *wallet,
    enum store_key k)
{
	static const char *const suffix[STORE_NKEYS] = {
		[STORE_K_WALLET] = "", [STORE_K_HOLDS] = ":holds",
		[STORE_K_HEXP] = ":hexp", [STORE_K_RPM] = ":rpm",
		[STORE_K_TPM] = ":tpm", [STORE_K_DONE] = ":done",
		[STORE_K_CREDITS] = ":credits",
	};
	size_t np = strlen(prefix), nw = strlen(wallet), ns, n;

	if ((unsigned)k >= STORE_NKEYS || nw == 0 ||
	    strpbrk(wallet, "{}") != NULL) {
		return -1;
	}
	ns = strlen(suffix[k]);
	n = np + nw + ns + 2;
	if (n >= cap || n > 0x7fffffff) {
		return -1;
	}
	memcpy(out, prefix, np);
	out[np] = '{';
	memcpy(out + np + 1, wallet, nw);
	out[np + 1 + nw] = '}';
	memcpy(out + np + 2 + nw, suffix[k], ns);
	out[n] = '\0';
	return (int)n;
}
#endif
