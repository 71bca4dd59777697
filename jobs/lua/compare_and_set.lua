-- compare_and_set.lua: write a run record only if it still holds what the caller read, together with the
-- caller's other writes (jobs.store.RunStore.update). Every change of a run is one call of this script.
--
-- KEYS[1]      the run record
-- KEYS[2..]    keys to read once written; their values are returned
--
-- ARGV[1]      the record as the caller read it
-- ARGV[2]      the new record
-- ARGV[3..5]   concurrency guard: slots sorted set ("" for none), how many slots, the member that needs one
-- ARGV[6..12]  wake-up: waiting list ("" for none), run key prefix, the queue's message hash and id list,
--              now (ms), queue name, actor name
-- ARGV[13]     how many commands follow; then each command as its word count and its words
--
-- Returns {1, values of KEYS[2..]} once written; {0, the current record} when the record changed (so
-- the caller can retry without a read); {2} when the guard's slots are all taken (nothing is written).
-- The wake-up gives the first run in the waiting list that still waits a message, laid out as
-- Dramatiq's "enqueue" writes it (its args are the run's id and current token).

local current = redis.call("GET", KEYS[1])
if current ~= ARGV[1] then return {0, current} end
local slots = ARGV[3]
if slots ~= "" and not redis.call("ZSCORE", slots, ARGV[5]) and redis.call("ZCARD", slots) >= tonumber(ARGV[4]) then
    return {2}
end
redis.call("SET", KEYS[1], ARGV[2])
local i = 14
for _ = 1, tonumber(ARGV[13]) do
    local length = tonumber(ARGV[i])
    redis.call(unpack(ARGV, i + 1, i + length))
    i = i + length + 1
end
local waiting = ARGV[6]
while waiting ~= "" do
    local id = redis.call("LPOP", waiting)
    if not id then break end
    local raw = redis.call("GET", ARGV[7] .. id)
    local ok, run = pcall(cjson.decode, raw or "")  -- never let a bad record fail the write it rides on
    if ok and type(run) == "table" and type(run.token) == "string" then
        if run.status == "queued" or run.status == "retrying" then
            local message_id = id .. "." .. run.token .. "." .. ARGV[10]
            redis.call("HSET", ARGV[8], message_id, cjson.encode({
                queue_name = ARGV[11], actor_name = ARGV[12], args = {id, run.token}, kwargs = {},
                options = {redis_message_id = message_id}, message_id = message_id,
                message_timestamp = tonumber(ARGV[10])}))
            redis.call("RPUSH", ARGV[9], message_id)
            break
        end
    end
end
local out = {1}
for k = 2, #KEYS do out[k] = redis.call("GET", KEYS[k]) end
return out
