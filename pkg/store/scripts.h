/* The Lua scripts the store runs (internal to pkg/store). */
#ifndef TF_STORE_SCRIPTS_H
#define TF_STORE_SCRIPTS_H

/* KEYS: state, ids, outbox. ARGV: epoch, now ms, dedup cutoff ms, window ms,
 * nfields, field/value..., nids, ids..., nout, id/payload...
 * Returns the new version, or -1 when a newer owner (higher epoch) wrote last:
 * the fence that stops a writer that lost its partition. */
static const char TF_SCRIPT_COMMIT[] =
    /* Everything that could fail is checked before the first write: a script
     * stopped by an error keeps what it wrote, and a half commit would lose the
     * derived events of records it counts as applied. */
    "local want = {'hash', 'zset', 'hash'}\n"
    "for k = 1, 3 do\n"
    "  local t = redis.call('TYPE', KEYS[k]).ok\n"
    "  if t ~= 'none' and t ~= want[k] then\n"
    "    return redis.error_reply('TFSTATE ' .. KEYS[k] .. ' holds a ' .. t .. ', not a ' .. want[k])\n"
    "  end\n"
    "end\n"
    "local held = redis.call('HMGET', KEYS[1], 'ep', 'v')\n"
    "local cur = tonumber(held[1] or '0')\n"
    "if not cur or (held[2] and not tonumber(held[2])) then\n"
    "  return redis.error_reply('TFSTATE ' .. KEYS[1] .. ': ep or v is not a number')\n"
    "end\n"
    "if cur > tonumber(ARGV[1]) then return -1 end\n"
    "local i = 5\n"
    "local nf = tonumber(ARGV[i]); i = i + 1\n"
    "if nf > 0 then\n"
    "  redis.call('HSET', KEYS[1], 'ep', ARGV[1], unpack(ARGV, i, i + 2 * nf - 1))\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'ep', ARGV[1])\n"
    "end\n"
    "i = i + 2 * nf\n"
    "local v = redis.call('HINCRBY', KEYS[1], 'v', 1)\n"
    "local ni = tonumber(ARGV[i]); i = i + 1\n"
    "if ni > 0 then\n"
    "  local z = {}\n"
    "  for j = 0, ni - 1 do z[#z + 1] = ARGV[2]; z[#z + 1] = ARGV[i + j] end\n"
    "  redis.call('ZADD', KEYS[2], unpack(z))\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])\n"
    "  redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
    "end\n"
    "i = i + ni\n"
    "local no = tonumber(ARGV[i]); i = i + 1\n"
    /* In slices: unpack() runs out of Lua stack past a few thousand values, and a
     * hot customer's batch may derive that many events. */
    "local j = 0\n"
    "while j < no do\n"
    "  local n = math.min(256, no - j)\n"
    "  redis.call('HSET', KEYS[3], unpack(ARGV, i + 2 * j, i + 2 * (j + n) - 1))\n"
    "  j = j + n\n"
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
