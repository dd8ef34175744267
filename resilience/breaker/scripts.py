"""The breaker's state machine as Lua scripts run inside Redis.

Every change of state, counter, rolling window or half-open permit happens in
one of these scripts, so any number of gunicorn and Celery processes see one
breaker and never race: Redis runs a script atomically. Time is Redis `TIME`,
never a process's clock. Asking permission is one EVALSHA, recording a result
is one EVALSHA: the protected call itself runs with no lock held. A result's
reply carries the state, so a process that just heard "closed" may admit its
next call without asking again (core.py bounds how long that reply is trusted).

The CLOSED success path is the hot one (RECORD_CLOSED_OK) and is kept to four
commands (HMGET, TIME, two HINCRBY): the window is summed only when a failure
could trip the error rate, and pruned once per bucket, when a call opens a new one.

Keys (one breaker, one hash tag, so the scripts would also run on a cluster):
  KEYS[1] state   hash: state, forced, gen, consec, reopen, ho_ok, opened_at,
                  next_trial, and counters n_ok n_fail n_ignored n_rejected
                  n_transitions (calls = n_ok + n_fail + n_ignored)
  KEYS[2] permits sorted set of half-open trial tokens scored by expiry (ms):
                  a trial whose process died frees its permit at that time
  KEYS[3] window  hash of per-bucket counts "c:<bucket>" and "f:<bucket>",
                  buckets of window/10, for the error rate over the window
  KEYS[4] events  stream of transitions (bounded with MAXLEN ~)

`gen` grows on every transition: a result is applied to the state machine
only if the call was admitted under the current generation, so a slow call
admitted while CLOSED cannot, say, close a breaker that has opened since.

Every script returns the same reply shape, read by store.Reply:
  {allowed, state, forced, gen, consec, opened_at, next_trial, wcalls, wfails,
   permits (always 0: only PEEK counts them), event_id, from, to, reason, at}
except RECORD's hot path, which answers {gen} alone: allowed, closed, not
forced, no failure streak, nothing else to say.
"""

COMMON = r"""
local state_key, permits_key, window_key, events_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function num(v) if v then return tonumber(v) else return 0 end end

local function load(forced_default)
  local raw = redis.call('HMGET', state_key, 'state', 'forced', 'gen', 'consec', 'opened_at', 'next_trial')
  local h = {state = raw[1], forced = raw[2], gen = raw[3], consec = raw[4], opened_at = raw[5], next_trial = raw[6]}
  if not h.state then
    h.state = 'closed'
    h.forced = forced_default
    h.gen = '0'
    redis.call('HSET', state_key, 'state', 'closed', 'forced', forced_default, 'gen', '0', 'consec', '0')
  end
  h.forced = h.forced or ''
  return h
end

local function bucket_size(window_ms)
  return math.max(math.floor(window_ms / 10), 1)
end

local function window_sums(window_ms, prune)
  local bucket_ms = bucket_size(window_ms)
  local oldest = math.floor((now - window_ms) / bucket_ms)
  local raw = redis.call('HGETALL', window_key)
  local calls, fails = 0, 0
  for i = 1, #raw, 2 do
    local field, value = raw[i], tonumber(raw[i + 1])
    local bucket = tonumber(string.sub(field, 3))
    if bucket <= oldest then
      if prune then redis.call('HDEL', window_key, field) end
    elseif string.sub(field, 1, 1) == 'c' then
      calls = calls + value
    else
      fails = fails + value
    end
  end
  return calls, fails, bucket_ms
end

local event = {'', '', '', '', 0}

local function shown(h)
  if h.forced ~= '' then return 'forced_' .. h.forced end
  return h.state
end

local function add_event(from, to, reason, maxlen, wcalls, wfails, consec)
  redis.call('HINCRBY', state_key, 'n_transitions', 1)
  local id = redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
    'at', now, 'from', from, 'to', to, 'reason', reason,
    'consec', consec or 0, 'wcalls', wcalls or 0, 'wfails', wfails or 0)
  event = {id, from, to, reason, now}
end

local function transition(h, to, reason, maxlen, wcalls, wfails)
  local from = shown(h)
  h.gen = tostring(num(h.gen) + 1)
  h.state = to
  redis.call('HSET', state_key, 'state', to, 'gen', h.gen)
  add_event(from, to, reason, maxlen, wcalls, wfails, num(h.consec))
end

local function open_breaker(h, duration_ms, reason, maxlen, wcalls, wfails)
  transition(h, 'open', reason, maxlen, wcalls, wfails)
  h.opened_at = tostring(now)
  h.next_trial = tostring(now + duration_ms)
  redis.call('HSET', state_key, 'opened_at', h.opened_at, 'next_trial', h.next_trial, 'ho_ok', 0)
  redis.call('DEL', permits_key)
end

-- The hot path (acquire, record) passes the window counts it already has,
-- or zeros: reading the window costs an HGETALL, so only PEEK always does.
local function reply(h, allowed, wcalls, wfails)
  return {allowed, h.state, h.forced, num(h.gen), num(h.consec), num(h.opened_at), num(h.next_trial),
          wcalls or 0, wfails or 0, 0, event[1], event[2], event[3], event[4], event[5]}
end
"""

# ARGV: forced_default, half_open_max, permit_ttl_ms, token, window_ms, maxlen
ACQUIRE = (
    COMMON
    + r"""
local forced_default, half_open_max, permit_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local token, window_ms, maxlen = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local h = load(forced_default)

if h.forced == 'open' then
  redis.call('HINCRBY', state_key, 'n_rejected', 1)
  return reply(h, 0)
end
if h.forced == 'closed' then
  return reply(h, 1)
end
if h.state == 'open' then
  if now < num(h.next_trial) then
    redis.call('HINCRBY', state_key, 'n_rejected', 1)
    return reply(h, 0)
  end
  transition(h, 'half_open', 'open duration elapsed', maxlen)
  redis.call('HSET', state_key, 'ho_ok', 0)
  redis.call('DEL', permits_key)
end
if h.state == 'half_open' then
  redis.call('ZREMRANGEBYSCORE', permits_key, '-inf', now)
  if redis.call('ZCARD', permits_key) < half_open_max then
    redis.call('ZADD', permits_key, now + permit_ttl, token)
    redis.call('PEXPIRE', permits_key, permit_ttl)
    return reply(h, 1)
  end
  -- All trial slots are taken: the next chance is when one frees up.
  local first = redis.call('ZRANGE', permits_key, 0, 0, 'WITHSCORES')
  h.next_trial = first[2]
  redis.call('HINCRBY', state_key, 'n_rejected', 1)
  return reply(h, 0)
end
return reply(h, 1)
"""
)

# ARGV: forced_default, outcome (ok|fail|ignored), call_gen, token, failure_threshold,
#       error_rate_pct, window_ms, min_calls, open_ms, backoff, max_open_ms,
#       half_open_max, maxlen, kind
# The hot path, placed before COMMON so that it skips COMMON's setup (its
# closures and TIME cost more than the work itself): a success in plain CLOSED,
# admitted under the current generation, with no failure streak to reset,
# changes two counters and nothing else. Anything else falls through to the
# full script below. Same ARGV as RECORD.
RECORD_CLOSED_OK = r"""
if ARGV[2] == 'ok' and ARGV[4] == '' then
  local s = redis.call('HMGET', KEYS[1], 'state', 'forced', 'gen', 'consec')
  if s[1] == 'closed' and (s[2] or '') == '' and s[3] == ARGV[3] and (s[4] or '0') == '0' then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local window_ms = tonumber(ARGV[7])
    local bucket_ms = math.max(math.floor(window_ms / 10), 1)
    redis.call('HINCRBY', KEYS[1], 'n_ok', 1)
    if redis.call('HINCRBY', KEYS[3], 'c:' .. math.floor(now / bucket_ms), 1) == 1 then
      -- A new bucket (once per bucket): drop those that left the window, as window_sums does.
      local oldest = math.floor((now - window_ms) / bucket_ms)
      for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
        if tonumber(string.sub(field, 3)) <= oldest then redis.call('HDEL', KEYS[3], field) end
      end
      redis.call('PEXPIRE', KEYS[3], window_ms + bucket_ms)
    end
    return {tonumber(s[3])}  -- the short reply: closed, not forced, no streak, this generation
  end
end
"""

RECORD = (
    RECORD_CLOSED_OK
    + COMMON
    + r"""
local forced_default, outcome, call_gen, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local threshold, rate_pct, window_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local min_calls, open_ms, backoff = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local max_open_ms, half_open_max, maxlen, kind = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13], ARGV[14]
local h = load(forced_default)

if token ~= '' then redis.call('ZREM', permits_key, token) end
if outcome == 'ok' then
  redis.call('HINCRBY', state_key, 'n_ok', 1)
elseif outcome == 'fail' then
  redis.call('HINCRBY', state_key, 'n_fail', 1)
else
  -- A neutral result (our own 4xx) neither resets nor adds to the failure
  -- count; its half-open permit has been released above.
  redis.call('HINCRBY', state_key, 'n_ignored', 1)
  return reply(h, 1)
end
if h.forced ~= '' or call_gen ~= h.gen then
  return reply(h, 1)
end

local wcalls, wfails = 0, 0
if h.state == 'closed' then
  local bucket_ms = bucket_size(window_ms)
  local bucket = math.floor(now / bucket_ms)
  if redis.call('HINCRBY', window_key, 'c:' .. bucket, 1) == 1 then
    -- The first call of a bucket: drop the buckets that left the window and
    -- keep the hash for one window from now (once per bucket, not per call).
    window_sums(window_ms, true)
    redis.call('PEXPIRE', window_key, window_ms + bucket_ms)
  end
  if outcome == 'fail' then
    redis.call('HINCRBY', window_key, 'f:' .. bucket, 1)
    h.consec = tostring(redis.call('HINCRBY', state_key, 'consec', 1))
    wcalls, wfails = window_sums(window_ms, false)
    if num(h.consec) >= threshold then
      open_breaker(h, open_ms, h.consec .. ' consecutive failures (last: ' .. kind .. ')', maxlen, wcalls, wfails)
    elseif wcalls >= min_calls and wfails * 100 >= rate_pct * wcalls then
      local pct = math.floor(wfails * 100 / wcalls + 0.5)
      open_breaker(h, open_ms, 'error rate ' .. pct .. '% over ' .. wcalls .. ' calls in '
        .. math.floor(window_ms / 1000) .. ' s', maxlen, wcalls, wfails)
    end
  elseif num(h.consec) ~= 0 then
    h.consec = '0'
    redis.call('HSET', state_key, 'consec', 0)
  end
elseif h.state == 'half_open' then
  if outcome == 'fail' then
    local reopen = redis.call('HINCRBY', state_key, 'reopen', 1)
    local duration = math.min(open_ms * (backoff ^ reopen), max_open_ms)
    if duration < open_ms then duration = open_ms end
    open_breaker(h, math.floor(duration), 'trial call failed (' .. kind .. ')', maxlen)
  else
    local ok = redis.call('HINCRBY', state_key, 'ho_ok', 1)
    if ok >= half_open_max then
      transition(h, 'closed', ok .. ' trial call(s) succeeded', maxlen)
      h.consec = '0'
      redis.call('HSET', state_key, 'consec', 0, 'reopen', 0, 'ho_ok', 0, 'opened_at', 0, 'next_trial', 0)
      h.opened_at, h.next_trial = '0', '0'
      redis.call('DEL', permits_key, window_key)
    end
  end
end
return reply(h, 1, wcalls, wfails)
"""
)

# ARGV: forced_default, action (open|closed|reset), reason, window_ms, maxlen
FORCE = (
    COMMON
    + r"""
local forced_default, action, reason, window_ms, maxlen = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local h = load(forced_default)
if action == 'reset' then
  transition(h, 'closed', reason, maxlen)
  h.forced, h.consec, h.opened_at, h.next_trial = '', '0', '0', '0'
  redis.call('HSET', state_key, 'forced', '', 'consec', 0, 'reopen', 0, 'ho_ok', 0, 'opened_at', 0, 'next_trial', 0)
  redis.call('DEL', permits_key, window_key)
else
  -- Forced states keep the underlying state untouched; a new generation makes
  -- the results of calls already in flight neutral for the state machine.
  local from = shown(h)
  h.gen = tostring(num(h.gen) + 1)
  h.forced = action
  redis.call('HSET', state_key, 'forced', action, 'gen', h.gen)
  redis.call('DEL', permits_key)
  add_event(from, 'forced_' .. action, reason, maxlen, 0, 0, num(h.consec))
end
return reply(h, 1)
"""
)

# Read-only. ARGV: forced_default, window_ms
PEEK = (
    COMMON
    + r"""
local raw = redis.call('HGETALL', state_key)
local h = {}
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
if h.state == nil then h.state = 'closed'; h.forced = ARGV[1] end
h.forced = h.forced or ''
local wcalls, wfails = window_sums(tonumber(ARGV[2]), false)
return {1, h.state, h.forced, num(h.gen), num(h.consec), num(h.opened_at), num(h.next_trial), wcalls, wfails,
        redis.call('ZCARD', permits_key), now,
        num(h.n_ok) + num(h.n_fail) + num(h.n_ignored), num(h.n_ok), num(h.n_fail), num(h.n_ignored),
        num(h.n_rejected), num(h.n_transitions)}
"""
)
