-- schedule_write.lua: one write of the scheduler to a schedule's state (jobs.schedules.state.ScheduleState).
-- A scheduler cut off from Redis mid-tick may have its writes land after another took the lead; so a write
-- lands only while its fence holds, only for a schedule that still exists, and never moves a tick back.
--
-- KEYS[1]  the schedule's state hash
-- KEYS[2]  its list of skipped ticks
-- KEYS[3]  the leader lease, or "" for no fence
-- KEYS[4]  the revisions of the schedules created through the API (a hash by name; for one stored before
--          revisions, the schedules themselves), or "" for a schedule from a file
-- ARGV[1]  the lease's holder (with KEYS[3])
-- ARGV[2]  the schedule's name in KEYS[4] (it must still be there)
-- ARGV[3]  the write, as JSON, any of:
--   setnx    {field: value}    set where absent
--   forward  {field: ISO}      set where absent or not later (ISO 8601 UTC, one width: text order is time order)
--   set      {field: value}
--   del      [field]
--   skips    {"count", "last" (ISO, forward), "entries" (newest last), "cap"}
-- ARGV[4]  with KEYS[4]: the schedule's revision, or "" for any (it must still be this creation of the name)
--
-- Returns 1 when written, 0 when the fence does not hold, 2 when the schedule is gone or was created anew
-- (nothing written).

if KEYS[3] ~= "" and redis.call("GET", KEYS[3]) ~= ARGV[1] then return 0 end
if KEYS[4] ~= "" then
    local revision = redis.call("HGET", KEYS[4], ARGV[2])
    if not revision or (ARGV[4] ~= "" and revision ~= ARGV[4]) then return 2 end
end
local state, write = KEYS[1], cjson.decode(ARGV[3])

local function forward(field, value)
    local current = redis.call("HGET", state, field)
    if not current or current <= value then redis.call("HSET", state, field, value) end
end

for field, value in pairs(write.setnx or {}) do redis.call("HSETNX", state, field, value) end
for field, value in pairs(write.forward or {}) do forward(field, value) end
for field, value in pairs(write.set or {}) do redis.call("HSET", state, field, value) end
for _, field in ipairs(write.del or {}) do redis.call("HDEL", state, field) end
local skips = write.skips
if skips then
    redis.call("HINCRBY", state, "skipped", skips.count)
    forward("last_skipped", skips.last)
    redis.call("LPUSH", KEYS[2], unpack(skips.entries))
    redis.call("LTRIM", KEYS[2], 0, skips.cap - 1)
end
return 1
