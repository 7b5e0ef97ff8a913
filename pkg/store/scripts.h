/* The Lua scripts the store runs (internal to pkg/store). */
#ifndef TF_STORE_SCRIPTS_H
#define TF_STORE_SCRIPTS_H

/* KEYS: state, ids, outbox. ARGV: epoch, now ms, dedup cutoff ms, window ms,
 * expected version and epoch of the last writer ("" = any), "1" when the writer
 * read no referred_by (else "0"), nfields, field/value..., nids, ids..., nout,
 * id/payload...
 * Returns the new version; -1 when a newer owner (higher epoch) wrote last: the
 * fence that stops a writer that lost its partition; -2 when the state is not the
 * one the writer computed from (another version or last writer, a referral linked
 * since, or one of the ids already seen within the window): nothing is written
 * and the writer reads the customer again. Version and epoch together name one
 * write: only the owner writes under its epoch, so a state it computed from its
 * own commit still in flight passes only if that commit landed.
 *
 * The ids key's expiry is renewed only when it would end within a window of now
 * (to twice the window, trimming ids older than the window): the state hash keeps
 * when it ends in "ix", so most commits skip both commands. */
static const char TF_SCRIPT_COMMIT[] =
    /* Everything that could fail is checked before the first write: a script
     * stopped by an error keeps what it wrote, and a half commit would lose the
     * derived events of records it counts as applied. HMGET checks the state key's
     * type, ZMSCORE the ids key's, and the outbox is written first. */
    "local held = redis.call('HMGET', KEYS[1], 'ep', 'v', 'referred_by', 'ix')\n"
    "local cur, ver = tonumber(held[1] or '0'), tonumber(held[2] or '0')\n"
    "if not cur or not ver then\n"
    "  return redis.error_reply('TFSTATE ' .. KEYS[1] .. ': ep or v is not a number')\n"
    "end\n"
    "if cur > tonumber(ARGV[1]) then return -1 end\n"
    "if ARGV[5] ~= '' and (ver ~= tonumber(ARGV[5]) or cur ~= tonumber(ARGV[6])) then return -2 end\n"
    "if ARGV[7] == '1' and held[3] and held[3] ~= '' then return -2 end\n"
    "local now, window = tonumber(ARGV[2]), tonumber(ARGV[4])\n"
    "local fi = 9\n"
    "local nf = tonumber(ARGV[8])\n"
    "local ii = fi + 2 * nf + 1\n"
    "local ni = tonumber(ARGV[ii - 1])\n"
    "local oi = ii + ni + 1\n"
    "local no = tonumber(ARGV[oi - 1])\n"
    "if ni > 0 then\n"
    "  local seen = redis.pcall('ZMSCORE', KEYS[2], unpack(ARGV, ii, ii + ni - 1))\n"
    "  if seen.err then return redis.error_reply('TFSTATE ' .. KEYS[2] .. ': ' .. seen.err) end\n"
    "  local cutoff = tonumber(ARGV[3])\n"
    "  for k = 1, ni do\n"
    "    if seen[k] and tonumber(seen[k]) > cutoff then return -2 end\n"
    "  end\n"
    "end\n"
    /* In slices: unpack() runs out of Lua stack past a few thousand values, and a
     * hot customer's batch may derive that many events. Only the first can fail. */
    "local j = 0\n"
    "while j < no do\n"
    "  local n = math.min(256, no - j)\n"
    "  local r = redis.pcall('HSET', KEYS[3], unpack(ARGV, oi + 2 * j, oi + 2 * (j + n) - 1))\n"
    "  if type(r) == 'table' and r.err then return redis.error_reply('TFSTATE ' .. KEYS[3] .. ': ' .. r.err) end\n"
    "  j = j + n\n"
    "end\n"
    "local v = ver + 1\n"
    "local ix = tonumber(held[4] or '0') or 0\n"
    "local renew = ni > 0 and ix < now + window\n"
    "local vs = string.format('%d', v)\n"
    "if renew then\n"
    "  redis.call('HSET', KEYS[1], 'ep', ARGV[1], 'v', vs, 'ix', string.format('%d', now + 2 * window),\n"
    "             unpack(ARGV, fi, ii - 2))\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'ep', ARGV[1], 'v', vs, unpack(ARGV, fi, ii - 2))\n"
    "end\n"
    "if ni > 0 then\n"
    "  local z = {}\n"
    "  for k = 0, ni - 1 do z[#z + 1] = ARGV[2]; z[#z + 1] = ARGV[ii + k] end\n"
    "  redis.call('ZADD', KEYS[2], unpack(z))\n"
    "  if renew then\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])\n"
    "    redis.call('PEXPIRE', KEYS[2], string.format('%d', 2 * window))\n"
    "  end\n"
    "end\n"
    "return v\n";

/* KEYS: one partition's value ranking, and its kept cutoffs. ARGV: four shares in
 * percent (key enter, key keep, potential enter, potential keep), then a period
 * start or "". Returns {n, c1, c2, c3, c4}: n = ZCARD (the buyers) and per share the
 * score of the k-th highest member, k = floor(n * s / 100) capped at n, as Redis
 * formats it, or "none" when k < 1. One script, so the four cutoffs come from one
 * snapshot of the ranking. With a period start, the answer is kept in KEYS[2] (a
 * hash: period start -> "n c1 c2 c3 c4") and a later call for the same period
 * returns the kept one, so every owner of the partition sees the cutoffs computed
 * when its stream first entered the period. */
static const char TF_SCRIPT_POPULATION[] =
    "if ARGV[5] ~= '' then\n"
    "  local kept = redis.call('HGET', KEYS[2], ARGV[5])\n"
    "  if kept then\n"
    "    local out = {}\n"
    "    for w in string.gmatch(kept, '%S+') do out[#out + 1] = w end\n"
    "    out[1] = tonumber(out[1])\n"
    "    return out\n"
    "  end\n"
    "end\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "local out = {n}\n"
    "for i = 1, 4 do\n"
    "  local k = math.floor(n * tonumber(ARGV[i]) / 100)\n"
    "  if k > n then k = n end\n"
    "  local c = 'none'\n"
    "  if k >= 1 then\n"
    "    local r = redis.call('ZREVRANGE', KEYS[1], k - 1, k - 1, 'WITHSCORES')\n"
    "    if r[2] then c = r[2] end\n"
    "  end\n"
    "  out[#out + 1] = c\n"
    "end\n"
    "if ARGV[5] ~= '' then\n"
    "  redis.call('HSET', KEYS[2], ARGV[5], table.concat(out, ' '))\n"
    "end\n"
    "return out\n";

#endif
