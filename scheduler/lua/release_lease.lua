-- release_lease.lua: give the leader lease up, only if this scheduler holds it (scheduler.leader.Lease).
--
-- KEYS[1]  the lease key
-- ARGV[1]  the holder's id
--
-- Returns 1 if released, 0 if the lease is someone else's or gone.

if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
