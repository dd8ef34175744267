"""The cache's Lua scripts (run by Redis in one step each): tag version
bumps and reads. A tag's version is seeded from Redis TIME (µs) when it is
first bumped or read, so a version that expired or was lost with a restarted
Redis never comes back to a value an old entry carries."""

# INCR each tag; a version that did not exist is seeded from Redis TIME (µs)
# so it can never repeat a value an old entry carries; the TTL is refreshed.
BUMP_SCRIPT = """
local t = redis.call('TIME')
local seed = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('INCR', key)
  if v == 1 then
    v = seed
    redis.call('SET', key, v)
  end
  redis.call('EXPIRE', key, ARGV[1])
  out[i] = v
end
return out
"""
# Read versions, seeding any missing one (same rule as BUMP_SCRIPT).
READ_TAGS_SCRIPT = """
local vals = redis.call('MGET', unpack(KEYS))
local t = nil
for i, v in ipairs(vals) do
  if not v then
    if not t then
      local now = redis.call('TIME')
      t = tonumber(now[1]) * 1000000 + tonumber(now[2])
    end
    redis.call('SET', KEYS[i], t, 'NX', 'EX', ARGV[1])
    vals[i] = redis.call('GET', KEYS[i])
  end
end
return vals
"""
