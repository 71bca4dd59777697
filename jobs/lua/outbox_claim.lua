-- outbox_claim.lua: claim due webhook deliveries (jobs.delivery.outbox.Outbox.claim). Each claimed id
-- comes due again one lease later and is tagged with the claimer's token; ids whose entry is gone are
-- dropped from the due set.
--
-- KEYS[1]  the due set (delivery id -> due time in ms)
--
-- ARGV[1]  now (ms)
-- ARGV[2]  lease (ms)
-- ARGV[3]  how many ids to claim at most
-- ARGV[4]  the claimer's token
-- ARGV[5]  the entry key prefix (the entry of delivery <id> is the hash <prefix><id>)
--
-- Returns the ids claimed.

local due, now, lease, limit, token, prefix = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
    ARGV[4], ARGV[5]
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
local claimed = {}
for _, id in ipairs(ids) do
  local entry = prefix .. id
  if redis.call('EXISTS', entry) == 1 then
    redis.call('ZADD', due, now + lease, id)
    redis.call('HSET', entry, 'claim', token)
    table.insert(claimed, id)
  else
    redis.call('ZREM', due, id)
  end
end
return claimed
