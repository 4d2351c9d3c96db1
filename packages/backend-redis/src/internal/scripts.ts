/**
 * The Lua scripts that keep an entry, its tag sets and the bus message about them consistent. Each
 * touches keys of one bucket only (one hash tag), so it also runs on a Redis Cluster.
 *
 * An entry is stored as `<expiresAt>\t<version>\t<tags as JSON>\n<encoded value>`, `expiresAt`
 * empty when the entry never expires. Tag sets may hold members that no longer carry the tag (an
 * overwrite does not read the old tags): every script checks the entry's own tags before acting on
 * a member, and `sweepTag` drops the stale ones.
 */
import type { Cluster, Redis } from "ioredis"
import { createHash } from "node:crypto"

export interface Script {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

const script = (name: string, lua: string): Script => ({
  name,
  lua,
  sha: createHash("sha1").update(lua).digest("hex")
})

const helpers = `
local function parse(v)
  return string.match(v, "^([^\\t]*)\\t[^\\t]*\\t([^\\n]*)")
end
local function carries(tags, tag)
  if tags == nil or tags == "[]" then return false end
  for _, t in ipairs(cjson.decode(tags)) do
    if t == tag then return true end
  end
  return false
end
local function live(e, now)
  return e == "" or tonumber(e) > now
end
`

/**
 * KEYS: entry, lease, tag sets. ARGV: payload, px ("" for none), channel ("" for none), message,
 * lease token. A put (token "") drops the key's lease, so a fetch in flight does not write over it;
 * a fetch's write (its token) stores only while the lease is still its own. Returns 1 when stored.
 * The message goes out either way, so the bus never sees a gap.
 */
export const put = script(
  "put",
  `
if ARGV[5] == "" then
  redis.call("DEL", KEYS[2])
elseif redis.call("GET", KEYS[2]) ~= ARGV[5] then
  if ARGV[3] ~= "" then redis.call("PUBLISH", ARGV[3], ARGV[4]) end
  return 0
end
local px = ARGV[2]
if px == "" then
  redis.call("SET", KEYS[1], ARGV[1])
else
  redis.call("SET", KEYS[1], ARGV[1], "PX", px)
end
for i = 3, #KEYS do
  local fresh = redis.call("EXISTS", KEYS[i]) == 0
  redis.call("SADD", KEYS[i], KEYS[1])
  if px == "" then
    redis.call("PERSIST", KEYS[i])
  else
    local left = redis.call("PTTL", KEYS[i])
    if fresh or (left >= 0 and left < tonumber(px)) then
      redis.call("PEXPIRE", KEYS[i], px)
    end
  end
end
if ARGV[3] ~= "" then redis.call("PUBLISH", ARGV[3], ARGV[4]) end
return 1
`
)

/**
 * Untagged puts of one bucket. KEYS: an entry and its lease per put (each lease is dropped, as in
 * `put`). ARGV: channel ("" for none), message, then a payload and a px ("" for none) per entry.
 */
export const putMany = script(
  "putMany",
  `
for i = 1, #KEYS / 2 do
  local px = ARGV[2 * i + 2]
  if px == "" then
    redis.call("SET", KEYS[2 * i - 1], ARGV[2 * i + 1])
  else
    redis.call("SET", KEYS[2 * i - 1], ARGV[2 * i + 1], "PX", px)
  end
  redis.call("DEL", KEYS[2 * i])
end
if ARGV[1] ~= "" then redis.call("PUBLISH", ARGV[1], ARGV[2]) end
return #KEYS / 2
`
)

/**
 * KEYS: entry, lease (dropped, as by `put`). ARGV: channel, message. Returns the removed entry's
 * `expiresAt` field, or nil.
 */
export const remove = script(
  "remove",
  `
local v = redis.call("GET", KEYS[1])
if v then redis.call("UNLINK", KEYS[1]) end
redis.call("DEL", KEYS[2])
if ARGV[1] ~= "" then redis.call("PUBLISH", ARGV[1], ARGV[2]) end
if v then return string.match(v, "^[^\\t]*") end
return false
`
)

/** KEYS: tag set. ARGV: tag, now, channel, message. Returns how many live entries were removed. */
export const invalidateTag = script(
  "invalidateTag",
  `${helpers}
local now = tonumber(ARGV[2])
local removed = 0
for _, k in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  local v = redis.call("GET", k)
  if v then
    local e, tags = parse(v)
    if carries(tags, ARGV[1]) then
      redis.call("UNLINK", k)
      if live(e, now) then removed = removed + 1 end
    end
  end
end
redis.call("UNLINK", KEYS[1])
if ARGV[3] ~= "" then redis.call("PUBLISH", ARGV[3], ARGV[4]) end
return removed
`
)

/** KEYS: tag set. ARGV: tag, now. Drops members that are gone, expired or no longer tagged. */
export const sweepTag = script(
  "sweepTag",
  `${helpers}
local now = tonumber(ARGV[2])
local dropped = 0
for _, k in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  local v = redis.call("GET", k)
  local keep = false
  if v then
    local e, tags = parse(v)
    keep = carries(tags, ARGV[1]) and live(e, now)
  end
  if not keep then
    redis.call("SREM", KEYS[1], k)
    dropped = dropped + 1
  end
end
return dropped
`
)

/**
 * KEYS: entries of one bucket. ARGV: now. Counts the live ones, reading only their headers; a key
 * that is gone or holds something else than an entry does not count.
 */
export const countLive = script(
  "countLive",
  `
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #KEYS do
  local h = redis.call("GETRANGE", KEYS[i], 0, 31)
  local e = string.match(h, "^(%d*)\\t")
  if e and (e == "" or tonumber(e) > now) then n = n + 1 end
end
return n
`
)

/** KEYS: any key of the bucket (routes the call). ARGV: channel, message. */
export const publish = script(
  "publish",
  `
redis.call("PUBLISH", ARGV[1], ARGV[2])
return 1
`
)

/** KEYS: lease. ARGV: token, channel ("" for none), message. Releases the lease if still ours. */
export const release = script(
  "release",
  `
if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end
if ARGV[2] ~= "" then redis.call("PUBLISH", ARGV[2], ARGV[3]) end
return 1
`
)

export const all: ReadonlyArray<Script> = [put, putMany, remove, invalidateTag, sweepTag, countLive, publish, release]

/** Runs `script` by hash, loading it when the server does not know it (after a restart). */
export const run = (
  client: Redis | Cluster,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>
): Promise<unknown> =>
  client.evalsha(script.sha, keys.length, ...keys, ...args).catch((error: unknown) =>
    error instanceof Error && error.message.startsWith("NOSCRIPT")
      ? client.eval(script.lua, keys.length, ...keys, ...args)
      : Promise.reject(error)
  )
