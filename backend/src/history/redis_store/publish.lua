#!lua
-- Stores one message of a group, atomically, and announces it.
-- KEYS: 1 epoch, 2 seq, 3 log (stream), 4 bytes, 5 ids (hash), 6 this
--       message's dedup record after trimming, 7 the set of groups, 8 base
--       (the last number before this epoch).
-- ARGV: 1 group, 2 message id, 3 message JSON, 4 text bytes, 5 now (ms),
--       6 max messages (0: none), 7 max bytes (0: none), 8 max groups
--       (0: none), 9 dedup window (ms), 10 a new epoch, if one is needed,
--       11 the epoch this node last saw, 12 the number it last saw in it,
--       13 the channel, 14 the digest of the text (hex).
-- Returns {'new', seq, epoch}, {'dup', seq, epoch, same text (1 or 0)} or
-- {'quota'}.
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  local max_groups = tonumber(ARGV[8])
  if max_groups > 0 and redis.call('SISMEMBER', KEYS[7], ARGV[1]) == 0
      and redis.call('SCARD', KEYS[7]) >= max_groups then
    return {'quota'}
  end
  epoch = ARGV[10]
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[8])
  redis.call('SET', KEYS[1], epoch)
  redis.call('SADD', KEYS[7], ARGV[1])
end
-- A repeated id: the same text (by digest) or another one. A retained
-- message's digest is in its entry; a removed one's in its dedup record,
-- `seq:digest`.
local seen, digest = redis.call('HGET', KEYS[5], ARGV[2]), nil
if seen then
  local entry = redis.call('XRANGE', KEYS[3], seen .. '-0', seen .. '-0')[1]
  if entry then
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'd' then digest = entry[2][i + 1] end
    end
  end
else
  local old = redis.call('GET', KEYS[6])
  if old then
    seen, digest = string.match(old, '^(%d+):?(%x*)$')
  end
end
if seen then
  -- Without a digest to compare (none was ever written without one; only
  -- a hand-made entry lacks it) the repeat counts as a resend.
  local same = (not digest or digest == '' or digest == ARGV[14]) and 1 or 0
  return {'dup', tonumber(seen), epoch, same}
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[11] == epoch and tonumber(ARGV[12]) > last then
  -- The store went back (a restored snapshot, or the last second lost in
  -- a crash): the numbers given out from here on belong to a new epoch,
  -- and start above every number a node saw, so none is given twice.
  epoch = ARGV[10]
  redis.call('SET', KEYS[1], epoch)
  redis.call('SET', KEYS[2], ARGV[12])
  redis.call('SET', KEYS[8], ARGV[12])
  last = tonumber(ARGV[12])
end
-- The number is taken only once the entry is in: a script that stops
-- half-way leaves no number given out without its message. (Formatted
-- with %d: Lua would write large numbers as 1e+14.)
local seq = string.format('%d', last + 1)
redis.call('XADD', KEYS[3], seq .. '-0', 'm', ARGV[3], 'i', ARGV[2], 'b', ARGV[4], 't', ARGV[5], 'd', ARGV[14])
redis.call('SET', KEYS[2], seq)
redis.call('HSET', KEYS[5], ARGV[2], seq)
local bytes = redis.call('INCRBY', KEYS[4], tonumber(ARGV[4]))
local max_messages, max_bytes = tonumber(ARGV[6]), tonumber(ARGV[7])
-- Retention: the oldest go while there are too many or too large; the
-- newest always stays. A removed message's id is still recognized until
-- it is a dedup window old.
while true do
  local count = redis.call('XLEN', KEYS[3])
  if count <= 1 or not ((max_messages > 0 and count > max_messages) or (max_bytes > 0 and bytes > max_bytes)) then
    break
  end
  local oldest = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
  local fields = {}
  for i = 1, #oldest[2], 2 do
    fields[oldest[2][i]] = oldest[2][i + 1]
  end
  redis.call('XDEL', KEYS[3], oldest[1])
  bytes = redis.call('DECRBY', KEYS[4], tonumber(fields['b']))
  redis.call('HDEL', KEYS[5], fields['i'])
  local keep = tonumber(ARGV[9]) - (tonumber(ARGV[5]) - tonumber(fields['t']))
  if keep > 0 then
    local record = string.match(oldest[1], '^(%d+)') .. ':' .. (fields['d'] or '')
    redis.call('SET', 'rc:{' .. ARGV[1] .. '}:old:' .. fields['i'], record, 'PX', keep)
  end
end
redis.call('PUBLISH', ARGV[13], epoch .. '\n' .. seq .. '\n' .. ARGV[3])
return {'new', last + 1, epoch}
