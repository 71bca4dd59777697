-- compare_and_set_many.lua: many compare-and-sets of run records in one call (jobs.store.RunStore.update_many),
-- each exactly as compare_and_set.lua does it (jobs.scripts prepends that script as the function
-- compare_and_set(KEYS, ARGV)). One call instead of one per run spares Redis a script call's set-up and the
-- caller a command's packing and parsing per run; each write still checks and writes its own record.
--
-- KEYS         every write's KEYS, one write after another
-- ARGV[1]      n, how many writes
-- ARGV[2..]    for each write, how many KEYS and how many ARGV it has (two numbers per write); then every
--              write's ARGV, one write after another
--
-- Returns one reply per write, each what compare_and_set.lua returns for it.

local n = tonumber(ARGV[1])
local replies, k, a = {}, 1, 2 + 2 * n
for w = 1, n do
    local nkeys, nargs = tonumber(ARGV[2 * w]), tonumber(ARGV[2 * w + 1])
    replies[w] = compare_and_set({unpack(KEYS, k, k + nkeys - 1)}, {unpack(ARGV, a, a + nargs - 1)})
    k, a = k + nkeys, a + nargs
end
return replies
