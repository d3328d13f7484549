#!lua
-- A node saw numbers of a group beyond what Redis now holds: the store
-- went back (the last second of a crash lost, an old snapshot restored).
-- Starts a new epoch whose numbers continue above every number seen, so
-- that none is given twice under one epoch; unless another node did so
-- already.
-- KEYS: 1 epoch, 2 seq, 3 base.  ARGV: 1 the epoch seen, 2 the number seen, 3 a new
-- epoch.  Returns 1 if it started one.
if redis.call('GET', KEYS[1]) == ARGV[1] and tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[2])
  return 1
end
return 0
