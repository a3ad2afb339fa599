package redisstore

import "github.com/redis/go-redis/v9"

// Every script gets the key prefix as ARGV[1] and the store's clock as
// ARGV[2] (unix nanoseconds, zero-padded to 20 digits, like every time
// field, so that times compare as strings). Keys, under the prefix:
//
//	s:<fp>         hash: one session (fields below), TTL = its deadline
//	ge             the global epoch
//	pe:<principal> the principal's epoch
//	u:<principal>  sorted set: the principal's fingerprints by LastSeen
//	all            sorted set: every fingerprint by LastSeen
//	seq            the revocation counter
//	store          marks the prefix as a cordon store (see ExistingOnly)
//	revoke         the pub/sub channel for revocations
//
// Session fields: h (hex of the full hash), p principal, d data, v version,
// c created, ls last seen, id idle deadline, ex expires, ip, ua, ge, pe.
//
// The scripts compute key names from the prefix, so the store needs a single
// Redis server (or a primary with replicas), not Redis Cluster.
const luaLive = `
local prefix = ARGV[1]
local now = ARGV[2]
local function live(key)
  local f = redis.call('HMGET', key, 'id', 'ex', 'ge', 'pe', 'p')
  if not f[1] then return false end
  if f[1] <= now or f[2] <= now then return false end
  if tonumber(f[3]) < tonumber(redis.call('GET', prefix .. 'ge') or '0') then return false end
  if tonumber(f[4]) < tonumber(redis.call('GET', prefix .. 'pe:' .. f[5]) or '0') then return false end
  return true
end
local function ttl(key)
  local f = redis.call('HMGET', key, 'id', 'ex')
  local dl = f[1]
  if f[2] < dl then dl = f[2] end
  local n = tonumber(dl) or tonumber(now) or 0
  local ms = math.floor((n - (tonumber(now) or 0)) / 1000000) + 1000
  if ms < 1000 then ms = 1000 end
  redis.call('PEXPIRE', key, ms)
end
local function publish(payload)
  local seq = redis.call('INCR', prefix .. 'seq')
  redis.call('PUBLISH', prefix .. 'revoke', seq .. ' ' .. payload)
end
`

// create: ARGV[3] fp, 4 hash, 5 principal, 6 data, 7 created, 8 last seen,
// 9 idle, 10 expires, 11 ip, 12 ua, 13 score. Returns {ge, pe}, or false
// if a live session holds the fingerprint.
var createScript = redis.NewScript(luaLive + `
local key = prefix .. 's:' .. ARGV[3]
if redis.call('EXISTS', key) == 1 and live(key) then return false end
redis.call('DEL', key)
local ge = redis.call('GET', prefix .. 'ge') or '0'
local pe = redis.call('GET', prefix .. 'pe:' .. ARGV[5]) or '0'
redis.call('HSET', key, 'h', ARGV[4], 'p', ARGV[5], 'd', ARGV[6], 'v', '1', 'c', ARGV[7], 'ls', ARGV[8],
  'id', ARGV[9], 'ex', ARGV[10], 'ip', ARGV[11], 'ua', ARGV[12], 'ge', ge, 'pe', pe)
ttl(key)
redis.call('ZADD', prefix .. 'u:' .. ARGV[5], ARGV[13], ARGV[3])
redis.call('ZADD', prefix .. 'all', ARGV[13], ARGV[3])
redis.call('SET', prefix .. 'store', '1')
return {ge, pe}
`)

// fields is the order in which find returns a session's fields.
var fields = []string{"h", "p", "d", "v", "c", "ls", "id", "ex", "ip", "ua", "ge", "pe"}

// find: ARGV[3] expected hash (or empty for any), ARGV[4...] fingerprints.
// Returns, per fingerprint, the session's fields in the order of fields, or
// false if it is not live (or holds another hash).
var findScript = redis.NewScript(luaLive + `
local out = {}
for i = 4, #ARGV do
  local key = prefix .. 's:' .. ARGV[i]
  local f = false
  if live(key) then
    f = redis.call('HMGET', key, 'h', 'p', 'd', 'v', 'c', 'ls', 'id', 'ex', 'ip', 'ua', 'ge', 'pe')
    if ARGV[3] ~= '' and f[1] ~= ARGV[3] then f = false end
  end
  out[#out + 1] = f
end
return out
`)

// update: ARGV[3] fp, 4 hash, 5 version, 6 data, 7 idle, 8 last seen,
// 9 ip, 10 ua, 11 score. Returns {new version}, {-1} if not live, or
// {-2, stored version} on a version conflict.
var updateScript = redis.NewScript(luaLive + `
local key = prefix .. 's:' .. ARGV[3]
if not live(key) or redis.call('HGET', key, 'h') ~= ARGV[4] then return {-1} end
local v = redis.call('HGET', key, 'v')
if v ~= ARGV[5] then return {-2, tonumber(v)} end
redis.call('HSET', key, 'd', ARGV[6], 'id', ARGV[7], 'ls', ARGV[8], 'ip', ARGV[9], 'ua', ARGV[10])
local nv = redis.call('HINCRBY', key, 'v', 1)
ttl(key)
local p = redis.call('HGET', key, 'p')
redis.call('ZADD', prefix .. 'u:' .. p, 'XX', ARGV[11], ARGV[3])
redis.call('ZADD', prefix .. 'all', 'XX', ARGV[11], ARGV[3])
return {nv}
`)

// touch: ARGV[3] fp, 4 hash, 5 last seen, 6 idle, 7 ip, 8 ua, 9 score.
// Returns 1, or 0 if not live.
var touchScript = redis.NewScript(luaLive + `
local key = prefix .. 's:' .. ARGV[3]
if not live(key) or redis.call('HGET', key, 'h') ~= ARGV[4] then return 0 end
local idle = ARGV[6]
local ex = redis.call('HGET', key, 'ex')
if ex < idle then idle = ex end
redis.call('HSET', key, 'ls', ARGV[5], 'id', idle, 'ip', ARGV[7], 'ua', ARGV[8])
ttl(key)
local p = redis.call('HGET', key, 'p')
redis.call('ZADD', prefix .. 'u:' .. p, 'XX', ARGV[9], ARGV[3])
redis.call('ZADD', prefix .. 'all', 'XX', ARGV[9], ARGV[3])
return 1
`)

// del: ARGV[3] fp, 4 hash, 5 payload. Deletes the session if it holds the
// hash and publishes the payload. Returns 1 if it deleted.
var deleteScript = redis.NewScript(luaLive + `
local key = prefix .. 's:' .. ARGV[3]
if redis.call('HGET', key, 'h') ~= ARGV[4] then return 0 end
local p = redis.call('HGET', key, 'p')
redis.call('DEL', key)
redis.call('ZREM', prefix .. 'u:' .. p, ARGV[3])
redis.call('ZREM', prefix .. 'all', ARGV[3])
publish(ARGV[5])
return 1
`)

// revokeFPs: ARGV[3] payload, ARGV[4...] fingerprints. Deletes them;
// publishes if any existed. Returns how many were live.
var revokeFPsScript = redis.NewScript(luaLive + `
local n, deleted = 0, 0
for i = 4, #ARGV do
  local key = prefix .. 's:' .. ARGV[i]
  local p = redis.call('HGET', key, 'p')
  if p then
    if live(key) then n = n + 1 end
    redis.call('DEL', key)
    redis.call('ZREM', prefix .. 'u:' .. p, ARGV[i])
    redis.call('ZREM', prefix .. 'all', ARGV[i])
    deleted = deleted + 1
  end
end
if deleted > 0 then publish(ARGV[3]) end
return n
`)

// revokeEpoch: ARGV[3] epoch key suffix ('ge' or 'pe:<principal>'),
// ARGV[4] payload. Bumps the epoch and publishes.
var revokeEpochScript = redis.NewScript(luaLive + `
redis.call('INCR', prefix .. ARGV[3])
publish(ARGV[4])
return 1
`)

// sweep: ARGV[3...] fingerprints from the "all" set. Deletes those not
// live and drops members whose session is gone. Returns how many sessions
// it deleted.
var sweepScript = redis.NewScript(luaLive + `
local n = 0
for i = 3, #ARGV do
  local key = prefix .. 's:' .. ARGV[i]
  local p = redis.call('HGET', key, 'p')
  if not p then
    redis.call('ZREM', prefix .. 'all', ARGV[i])
  elseif not live(key) then
    redis.call('DEL', key)
    redis.call('ZREM', prefix .. 'u:' .. p, ARGV[i])
    redis.call('ZREM', prefix .. 'all', ARGV[i])
    n = n + 1
  end
end
return n
`)

// sweepIndex: ARGV[3] principal, ARGV[4...] fingerprints from the
// principal's set "u:<principal>". Drops members whose session is gone
// (deleted by its Redis TTL, which does not touch the sets) or belongs to
// someone else, and deletes sessions that are not live. Returns how many
// sessions it deleted.
var sweepIndexScript = redis.NewScript(luaLive + `
local set = prefix .. 'u:' .. ARGV[3]
local n = 0
for i = 4, #ARGV do
  local key = prefix .. 's:' .. ARGV[i]
  local p = redis.call('HGET', key, 'p')
  if p ~= ARGV[3] then
    redis.call('ZREM', set, ARGV[i])
  elseif not live(key) then
    redis.call('DEL', key)
    redis.call('ZREM', set, ARGV[i])
    redis.call('ZREM', prefix .. 'all', ARGV[i])
    n = n + 1
  end
end
return n
`)

// countLive: ARGV[3...] fingerprints. Returns how many are live sessions.
var countLiveScript = redis.NewScript(luaLive + `
local n = 0
for i = 3, #ARGV do
  if live(prefix .. 's:' .. ARGV[i]) then n = n + 1 end
end
return n
`)

// revokePrincipal: ARGV[3] principal, ARGV[4] payload. Counts the
// principal's live sessions, bumps the principal's epoch and publishes, in
// one script. Returns the count.
var revokePrincipalScript = redis.NewScript(luaLive + `
local n = 0
for _, fp in ipairs(redis.call('ZRANGE', prefix .. 'u:' .. ARGV[3], 0, -1)) do
  local key = prefix .. 's:' .. fp
  if redis.call('HGET', key, 'p') == ARGV[3] and live(key) then n = n + 1 end
end
redis.call('INCR', prefix .. 'pe:' .. ARGV[3])
publish(ARGV[4])
return n
`)
