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
 * For the scripts that write an entry: `store` sets it with its `PX` ("" for none); `index` adds it
 * to a tag set that then lives at least as long as the entry; `unindex` takes it out of the sets
 * of the tags in `v` (an entry's payload), `prefix` being the tag sets' key without the tag.
 */
const writing = `
local function store(entry, payload, px)
  if px == "" then
    redis.call("SET", entry, payload)
  else
    redis.call("SET", entry, payload, "PX", px)
  end
end
local function index(set, entry, px)
  local fresh = redis.call("EXISTS", set) == 0
  redis.call("SADD", set, entry)
  if px == "" then
    redis.call("PERSIST", set)
  else
    local left = redis.call("PTTL", set)
    if fresh or (left >= 0 and left < tonumber(px)) then
      redis.call("PEXPIRE", set, px)
    end
  end
end
local function tagsOf(v)
  local tags = string.match(v, "^[^\\t]*\\t[^\\t]*\\t([^\\n]*)")
  if tags == nil or tags == "[]" then return {} end
  return cjson.decode(tags)
end
local function unindex(v, entry, prefix)
  for _, t in ipairs(tagsOf(v)) do redis.call("SREM", prefix .. t, entry) end
end
local function expiry(v)
  return string.match(v, "^[^\\t]*")
end
`

/**
 * Publishes `message` on `channel` ("" for none) unless `self` (the marker of `channel` of the
 * writer's subscriber, `Subscriber.self`) shows that the only subscriber of `channel` is the
 * writer's own connection, which skips its own messages: then nobody would hear it. The marker is
 * subscribed and unsubscribed in the same command as the channel, so one subscriber on it means
 * that connection holds the channel right now, whatever the writer believed when it sent the
 * script (a store closing with a put in flight, a reconnection). Delivering a message to oneself
 * costs a put at concurrency 1 about a third of its throughput. A subscriber that comes later
 * starts from the next message it hears, so the left-out numbers are no gap to anyone.
 */
const announcing = `
local function announce(channel, self, message)
  if channel == "" then return end
  if self ~= "" then
    local counts = redis.call("PUBSUB", "NUMSUB", channel, self)
    if counts[2] == 1 and counts[4] == 1 then return end
  end
  redis.call("PUBLISH", channel, message)
end
`

/**
 * KEYS: entry, lease, tag sets. ARGV: payload, px ("" for none), channel ("" for none), message,
 * lease token, self (see `announcing`). A put (token "") drops the key's lease, so a fetch in
 * flight does not write over it; a fetch's write (its token) stores only while the lease is still
 * its own. Returns 1 when stored. The message goes out either way, so the bus never sees a gap.
 */
export const put = script(
  "put",
  `${writing}${announcing}
if ARGV[5] == "" then
  redis.call("DEL", KEYS[2])
elseif redis.call("GET", KEYS[2]) ~= ARGV[5] then
  announce(ARGV[3], ARGV[6], ARGV[4])
  return 0
end
store(KEYS[1], ARGV[1], ARGV[2])
for i = 3, #KEYS do index(KEYS[i], KEYS[1], ARGV[2]) end
announce(ARGV[3], ARGV[6], ARGV[4])
return 1
`
)

/**
 * Untagged puts of one bucket. KEYS: the entry of each put, then the lease of each (all dropped in
 * one `DEL`, as in `put`). ARGV: channel ("" for none), message, self (see `announcing`), then a
 * payload and a px ("" for none) per entry.
 */
export const putMany = script(
  "putMany",
  `${announcing}
local n = #KEYS / 2
for i = 1, n do
  local px = ARGV[2 * i + 3]
  if px == "" then
    redis.call("SET", KEYS[i], ARGV[2 * i + 2])
  else
    redis.call("SET", KEYS[i], ARGV[2 * i + 2], "PX", px)
  end
end
redis.call("DEL", unpack(KEYS, n + 1))
announce(ARGV[1], ARGV[3], ARGV[2])
return n
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

/**
 * KEYS: entry, lease, the new entry's tag sets. ARGV: expected payload ("" for no live entry), now,
 * new payload ("" to delete), px, tag-set prefix, channel, message. Writes only while the key holds
 * exactly the expected payload, live (or, expecting none, holds no live entry); the old entry
 * leaves its tag sets, the new one joins its own, the lease is dropped as by a put. Returns 1 when
 * written.
 */
export const compareAndSet = script(
  "compareAndSet",
  `${helpers}${writing}
local v = redis.call("GET", KEYS[1])
local now = tonumber(ARGV[2])
if ARGV[1] == "" then
  if v and live(expiry(v), now) then return 0 end
elseif v ~= ARGV[1] or not live(expiry(v), now) then
  return 0
end
if v then unindex(v, KEYS[1], ARGV[5]) end
if ARGV[3] == "" then
  if v then redis.call("UNLINK", KEYS[1]) end
else
  store(KEYS[1], ARGV[3], ARGV[4])
  for i = 3, #KEYS do index(KEYS[i], KEYS[1], ARGV[4]) end
end
redis.call("DEL", KEYS[2])
if ARGV[6] ~= "" then redis.call("PUBLISH", ARGV[6], ARGV[7]) end
return 1
`
)

/**
 * KEYS: entry, lease. ARGV: now, tag-set prefix, channel, message. Removes the live entry with its
 * tag-set memberships and lease, and returns its payload; nil (and nothing changed) when none is live.
 */
export const take = script(
  "take",
  `${helpers}${writing}
local v = redis.call("GET", KEYS[1])
if not v or not live(expiry(v), tonumber(ARGV[1])) then return false end
unindex(v, KEYS[1], ARGV[2])
redis.call("UNLINK", KEYS[1])
redis.call("DEL", KEYS[2])
if ARGV[3] ~= "" then redis.call("PUBLISH", ARGV[3], ARGV[4]) end
return v
`
)

/**
 * KEYS: entry. ARGV: now, new expiresAt ("" for none), px, tag-set prefix, channel, message.
 * Rewrites the live entry's expiry (header and `PX`), value untouched, its tag sets living as long.
 * Returns 1, or 0 when no entry is live.
 */
export const touch = script(
  "touch",
  `${helpers}${writing}
local v = redis.call("GET", KEYS[1])
if not v or not live(expiry(v), tonumber(ARGV[1])) then return 0 end
store(KEYS[1], ARGV[2] .. string.sub(v, #expiry(v) + 1), ARGV[3])
for _, t in ipairs(tagsOf(v)) do index(ARGV[4] .. t, KEYS[1], ARGV[3]) end
if ARGV[5] ~= "" then redis.call("PUBLISH", ARGV[5], ARGV[6]) end
return 1
`
)

/**
 * For values whose numbers are JSON numbers. KEYS: entry, lease, the tag sets of a created entry.
 * ARGV: by, now, the created entry's header, its px, channel, message. Adds `by` to the live entry's
 * number, keeping its header and TTL, or writes `by` under the created header when none is live.
 * Returns `{1, sum}`, or `{0}` when the value is not a number or the sum is not finite (nothing
 * changed). The sum is text, the shortest of `%.15g`, `%.16g`, `%.17g` that reads back as the same
 * double (`%.17g` always does; an integer stays an integer), since Lua would truncate a number reply.
 */
export const increment = script(
  "increment",
  `${helpers}${writing}
local function finite(n)
  return n ~= nil and n == n and n ~= math.huge and n ~= -math.huge
end
-- Only JSON's number text: tonumber alone also reads hex, spaces, "inf" and "nan".
local function number(text)
  if text == nil or not string.match(text, "^%-?%d[%d%.eE+-]*$") then return nil end
  return tonumber(text)
end
local v = redis.call("GET", KEYS[1])
local n = 0
local header = nil
if v and live(expiry(v), tonumber(ARGV[2])) then
  local text
  header, text = string.match(v, "^([^\\n]*)\\n(.*)$")
  n = number(text)
  if not finite(n) then return {0} end
end
local sum = n + tonumber(ARGV[1])
if not finite(sum) then return {0} end
local text
for _, format in ipairs({"%.15g", "%.16g", "%.17g"}) do
  text = string.format(format, sum)
  if tonumber(text) == sum then break end
end
if header then
  redis.call("SET", KEYS[1], header .. "\\n" .. text, "KEEPTTL")
else
  store(KEYS[1], ARGV[3] .. "\\n" .. text, ARGV[4])
  for i = 3, #KEYS do index(KEYS[i], KEYS[1], ARGV[4]) end
end
redis.call("DEL", KEYS[2])
if ARGV[5] ~= "" then redis.call("PUBLISH", ARGV[5], ARGV[6]) end
return {1, text}
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

export const all: ReadonlyArray<Script> = [
  put,
  putMany,
  remove,
  invalidateTag,
  sweepTag,
  countLive,
  compareAndSet,
  take,
  touch,
  increment,
  publish,
  release
]

/** Runs `script` by hash, loading it when the server does not know it (after a restart). */
export const run = (
  client: Redis | Cluster,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>
): Promise<unknown> => new Promise((resolve, reject) => runCallback(client, script, keys, args, resolve, reject))

/**
 * `run` answered by callbacks: no promise of its own between the reply and its reader (the
 * writes' hot path). Keys and arguments go to ioredis as one array, which it sends as they stand.
 */
export const runCallback = (
  client: Redis | Cluster,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>,
  onReply: (reply: unknown) => void,
  onFailure: (error: unknown) => void
): void => {
  const argv = (keys as Array<string | number>).concat(args) as Array<string>
  client.evalsha(script.sha, keys.length, argv).then(onReply, (error: unknown) => {
    if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
      client.eval(script.lua, keys.length, argv).then(onReply, onFailure)
    } else onFailure(error)
  })
}
