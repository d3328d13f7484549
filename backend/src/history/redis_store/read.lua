#!lua flags=no-writes
-- One consistent read of a group: its head and a range of its messages.
-- KEYS: 1 epoch, 2 seq, 3 log (stream), 4 base.
-- ARGV: 1 'after' or 'before', 2 the bound ('max': none), 3 most messages,
--       4 most bytes of text (at least one message).
-- Returns {} for no group, else {epoch, last, oldest (0: none), entries,
-- base}.
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  return {}
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
local oldest = 0
if first then
  oldest = tonumber(string.match(first[1], '^(%d+)'))
end
local count = tonumber(ARGV[3])
local entries = {}
if count > 0 then
  if ARGV[1] == 'after' then
    entries = redis.call('XRANGE', KEYS[3], '(' .. ARGV[2] .. '-0', '+', 'COUNT', count)
  else
    local bound = '+'
    if ARGV[2] ~= 'max' then
      bound = '(' .. ARGV[2] .. '-0'
    end
    entries = redis.call('XREVRANGE', KEYS[3], bound, '-', 'COUNT', count)
  end
end
local kept, bytes, limit = {}, 0, tonumber(ARGV[4])
for _, entry in ipairs(entries) do
  local size = 0
  for i = 1, #entry[2], 2 do
    if entry[2][i] == 'b' then
      size = tonumber(entry[2][i + 1])
    end
  end
  bytes = bytes + size
  if bytes > limit and #kept > 0 then
    break
  end
  kept[#kept + 1] = {entry[1], entry[2][2]}
end
return {epoch, last, oldest, kept, tonumber(redis.call('GET', KEYS[4]) or '0')}
