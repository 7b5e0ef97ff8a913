/* The Lua scripts the store runs (internal to pkg/store). */
#ifndef TF_STORE_SCRIPTS_H
#define TF_STORE_SCRIPTS_H

/* KEYS: state, outbox, and the population figures when there are figures to add
 * (store.c). ARGV: epoch, now ms, dedup cutoff ms, window ms, expected version
 * and epoch of the last writer ("" = any), "1" when the writer read no
 * referred_by (else "0"), nfields, nids,
 * field/value... (nfields pairs), then "d:<id>"/now ms... (nids pairs), nout,
 * id/payload..., nfig, field/delta... (added to the figures hash)
 * Returns the new version; -1 when a newer owner (higher epoch) wrote last: the
 * fence that stops a writer that lost its partition; -2 when the state is not the
 * one the writer computed from (another version or last writer, a referral linked
 * since, or one of the ids already seen within the window): nothing is written
 * and the writer reads the customer again. Version and epoch together name one
 * write: only the owner writes under its epoch, so a state it computed from its
 * own commit still in flight passes only if that commit landed.
 *
 * The dedup window lives in the state hash, one field "d:<id>" = when it was seen,
 * so the check is part of the HMGET and the record part of the HSET. "ix" is when
 * the oldest of them may leave the window: the first commit after it drops those
 * that did ("dx" = "1": "ix" is set). */
static const char TF_SCRIPT_COMMIT[] =
    /* Everything that could fail is checked before the first write: a script
     * stopped by an error keeps what it wrote, and a half commit would lose the
     * derived events of records it counts as applied. HMGET checks the state key's
     * type, and the outbox is written first. */
    "local nf, ni = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
    "local fi = 10\n"
    "local ii = fi + 2 * nf\n"
    "local oi = ii + 2 * ni + 1\n"
    "local no = tonumber(ARGV[oi - 1])\n"
    "local ask = {'ep', 'v', 'referred_by', 'ix', 'dx'}\n"
    "for k = 0, ni - 1 do ask[6 + k] = ARGV[ii + 2 * k] end\n"
    "local held = redis.call('HMGET', KEYS[1], unpack(ask))\n"
    "local cur, ver = tonumber(held[1] or '0'), tonumber(held[2] or '0')\n"
    "if not cur or not ver then\n"
    "  return redis.error_reply('TFSTATE ' .. KEYS[1] .. ': ep or v is not a number')\n"
    "end\n"
    "if cur > tonumber(ARGV[1]) then return -1 end\n"
    "if ARGV[5] ~= '' and (ver ~= tonumber(ARGV[5]) or cur ~= tonumber(ARGV[6])) then return -2 end\n"
    "if ARGV[7] == '1' and held[3] and held[3] ~= '' then return -2 end\n"
    "local now, cutoff, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "for k = 1, ni do\n"
    "  local at = held[5 + k]\n"
    "  if at and (tonumber(at) or 0) > cutoff then return -2 end\n"
    "end\n"
    "local fresh = held[5] ~= '1'\n"
    /* In slices: unpack() runs out of Lua stack past a few thousand values, and a
     * hot customer's batch may derive that many events. Only the first can fail. */
    "local j = 0\n"
    "while j < no do\n"
    "  local n = math.min(256, no - j)\n"
    "  local r = redis.pcall('HSET', KEYS[2], unpack(ARGV, oi + 2 * j, oi + 2 * (j + n) - 1))\n"
    "  if type(r) == 'table' and r.err then return redis.error_reply('TFSTATE ' .. KEYS[2] .. ': ' .. r.err) end\n"
    "  j = j + n\n"
    "end\n"
    "local vs, ix = string.format('%d', ver + 1), tonumber(held[4] or '0') or 0\n"
    /* Unused head slots repeat ep and v: one HSET call whatever it carries. */
    "local head = {'ep', ARGV[1], 'v', vs, 'ep', ARGV[1], 'v', vs}\n"
    "if not fresh and ix <= now then\n"
    "  local all, gone = redis.call('HGETALL', KEYS[1]), {}\n"
    "  for k = 1, #all, 2 do\n"
    "    local f = all[k]\n"
    "    if string.sub(f, 1, 2) == 'd:' and (tonumber(all[k + 1]) or 0) <= cutoff then gone[#gone + 1] = f end\n"
    "  end\n"
    "  for k = 1, #gone, 512 do redis.call('HDEL', KEYS[1], unpack(gone, k, math.min(k + 511, #gone))) end\n"
    "end\n"
    "if fresh then\n"
    "  head[5], head[6], head[7], head[8] = 'dx', '1', 'ix', string.format('%d', now + window)\n"
    "elseif ix <= now then\n"
    "  head[5], head[6] = 'ix', string.format('%d', now + window)\n"
    "end\n"
    "if nf + ni <= 2048 then\n"
    "  redis.call('HSET', KEYS[1], head[1], head[2], head[3], head[4], head[5], head[6], head[7], head[8],\n"
    "             unpack(ARGV, fi, oi - 2))\n"
    "else\n"
    "  for k = fi, oi - 2, 1024 do redis.call('HSET', KEYS[1], unpack(ARGV, k, math.min(k + 1023, oi - 2))) end\n"
    "  redis.call('HSET', KEYS[1], unpack(head))\n"
    "end\n"
    /* The figures never stop a customer: a figures key of the wrong type (only
     * someone else's write makes one) shows when the figures are read. */
    "local gi = oi + 2 * no\n"
    "for k = 0, (tonumber(ARGV[gi]) or 0) - 1 do\n"
    "  redis.pcall('HINCRBY', KEYS[3], ARGV[gi + 1 + 2 * k], ARGV[gi + 2 + 2 * k])\n"
    "end\n"
    "return ver + 1\n";

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
