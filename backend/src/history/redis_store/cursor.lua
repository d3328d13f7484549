#!lua
-- Sets one read cursor of an identity, atomically: within one epoch the
-- higher number stays, another epoch replaces it, no epoch (an invitation)
-- leaves any; past the most cursors an identity keeps, the least recently
-- set one goes.
-- KEYS: 1 the identity's cursors (hash: group -> 'epoch:seq:updated').
-- ARGV: 1 group, 2 epoch, 3 seq, 4 now (ms), 5 most cursors kept.
-- Returns {epoch, seq, group forgotten ('': none)}: the cursor as it now
-- is, and the group whose cursor went to make room (its readers hash has
-- another hash tag: the caller updates it).
local epoch, seq, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local forgotten = ''
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local old_epoch, old_seq, old_updated = string.match(old, '^([^:]*):(%d+):(%d+)$')
  if epoch == '' and old_epoch then
    epoch, seq = old_epoch, tonumber(old_seq)
  elseif old_epoch == epoch and tonumber(old_seq) > seq then
    seq = tonumber(old_seq)
  end
  if old_updated and tonumber(old_updated) > now then
    now = tonumber(old_updated)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], epoch .. ':' .. string.format('%d', seq) .. ':' .. string.format('%d', now))
if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[5]) then
  -- At most one more than kept: one pass finds the least recently set.
  local all = redis.call('HGETALL', KEYS[1])
  local oldest_group, oldest_updated = nil, nil
  for i = 1, #all, 2 do
    local updated = tonumber(string.match(all[i + 1], ':(%d+)$') or '0')
    if oldest_group == nil or updated < oldest_updated
        or (updated == oldest_updated and all[i] < oldest_group) then
      oldest_group, oldest_updated = all[i], updated
    end
  end
  redis.call('HDEL', KEYS[1], oldest_group)
  forgotten = oldest_group
end
return {epoch, seq, forgotten}
