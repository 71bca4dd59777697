-- compare_and_set.lua: write a run record only if it still holds what the caller read, together with the
-- caller's other writes (jobs.store.RunStore.update). Every change of a run is one call of this script.
--
-- KEYS[1]      the run record
-- KEYS[2..]    keys to read once written: their values are returned
--
-- ARGV[1]      expected: the record as the caller read it
-- ARGV[2]      new: the record to write
-- ARGV[3]      the plan, as one JSON array of strings (one argument, so a call costs the caller little to pack):
--   [1..3]     the concurrency guard: slots (a sorted set, "" for none), limit, member
--              (write only if member holds one of the limit slots, or one is free)
--   [4..9]     the wake-up, after the write: waiting (a list of run ids, "" for none), run key prefix,
--              the runs queue's message hash and id list (jobs.broker), message (Dramatiq's encoding
--              of the wake-up message, with @run@ @token@ @id@ @now@ to fill in), now (ms)
--   [10]       nudge: the pub/sub channel that wakes idle consumers, published when this write makes the
--              runs queue stop being empty ("" for none)
--   [11]       the commands to apply with the write, each a list of words; {"@IF", key, field, value, n}
--              applies the next n commands only if hash key's field is value (jobs.writes.Writes.only_while)
--              Or ARGV[3] is "" and the same come one argument each from ARGV[4]: the ten values, then how
--              many commands, then each command as its word count and its words (for words that are not
--              UTF-8, which JSON cannot carry).
--
-- Returns {1, values of KEYS[2..]} once written; {0, the current record} when the record had changed (the
-- caller retries without a read); {2} when the guard found every slot taken (nothing is written).
-- The wake-up gives the first run in the waiting list that still waits a message; it is queued as
-- Dramatiq's "enqueue" does (HSET into the hash, RPUSH onto the list).

local record_key = KEYS[1]
local expected, new = ARGV[1], ARGV[2]
local plan
if ARGV[3] ~= "" then
    plan = cjson.decode(ARGV[3])
else
    plan = {unpack(ARGV, 4, 13)}
    local commands, i = {}, 15
    for n = 1, tonumber(ARGV[14]) do
        local length = tonumber(ARGV[i])
        commands[n] = {unpack(ARGV, i + 1, i + length)}
        i = i + length + 1
    end
    plan[11] = commands
end
local slots, limit, member = plan[1], tonumber(plan[2]), plan[3]
local waiting, run_prefix, messages, queue, message, now = plan[4], plan[5], plan[6], plan[7], plan[8], plan[9]
local nudge, commands = plan[10], plan[11]

local current = redis.call("GET", record_key)
if current ~= expected then return {0, current} end
if slots ~= "" and not redis.call("ZSCORE", slots, member) and redis.call("ZCARD", slots) >= limit then
    return {2}
end
redis.call("SET", record_key, new)
local queued = redis.call("LLEN", queue)
local skip = 0
for _, command in ipairs(commands) do
    if skip > 0 then
        skip = skip - 1
    elseif command[1] == "@IF" then
        if redis.call("HGET", command[2], command[3]) ~= command[4] then skip = tonumber(command[5]) end
    else
        redis.call(unpack(command))
    end
end
while waiting ~= "" do
    local id = redis.call("LPOP", waiting)
    if not id then break end
    local raw = redis.call("GET", run_prefix .. id)
    local ok, run = pcall(cjson.decode, raw or "")  -- never let a bad record fail the write it rides on
    if ok and type(run) == "table" and type(run.token) == "string" then
        if run.status == "queued" or run.status == "retrying" then
            local message_id = id .. "." .. run.token .. "." .. now
            local body = string.gsub(message, "@(%a+)@", {run = id, token = run.token, id = message_id, now = now})
            redis.call("HSET", messages, message_id, body)
            redis.call("RPUSH", queue, message_id)
            break
        end
    end
end
if queued == 0 and nudge ~= "" and redis.call("LLEN", queue) > 0 then redis.call("PUBLISH", nudge, "") end
local out = {1}
for k = 2, #KEYS do out[k] = redis.call("GET", KEYS[k]) end
return out
