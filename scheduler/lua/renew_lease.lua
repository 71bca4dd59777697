-- renew_lease.lua: extend the leader lease, only if this scheduler still holds it (scheduler.leader.Lease).
--
-- KEYS[1]  the lease key
-- ARGV[1]  the holder's id (the key's value while it holds the lease)
-- ARGV[2]  the new time to live (ms)
--
-- Returns 1 if extended, 0 if the lease is someone else's or gone.

if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
