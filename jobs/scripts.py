"""The Lua scripts behind ``jobs.store``: every change of a run record is one of these, so it is atomic
with the writes that go with it (its message, indexes, concurrency slots)."""

#: Creates a run atomically: record, event, indexes and the Dramatiq message (written exactly as
#: dramatiq's dispatch.lua "enqueue" does: HSET ns:q.msgs id data; RPUSH ns:q id). One round trip,
#: and an Idempotency-Key that was already used returns the existing run id instead.
CREATE_SCRIPT = """
local run_key, event_key, runs, function_runs, active, idem, messages, queue = unpack(KEYS)
local run_id, run_json, event_json, idem_ttl, message_id, message, look_at = unpack(ARGV)
if idem ~= "" then
    local existing = redis.call("GET", idem)
    if existing then return existing end
    redis.call("SET", idem, run_id, "EX", idem_ttl)
end
redis.call("SET", run_key, run_json)
redis.call("SET", event_key, event_json)
redis.call("ZADD", runs, 0, run_id)
redis.call("ZADD", function_runs, 0, run_id)
redis.call("ZADD", active, look_at, run_id)
redis.call("HSET", messages, message_id, message)
redis.call("RPUSH", queue, message_id)
return run_id
"""


#: Writes a run record only if it still holds what the caller read, together with the caller's
#: extra commands. ARGV: old, new, a concurrency guard (slots key or "", limit, member), a wake-up
#: (waiting list or "", run key prefix, message hash, queue list, now in ms, queue name, actor
#: name), the command count, then per command its length and words. Returns {1, values of
#: KEYS[2..]} on success, {0, the current record} so the caller can retry without a read, or {2}
#: when the guard's slots are all taken. The wake-up gives the first run in the waiting list that
#: still waits a message (laid out as dispatch.lua's "enqueue" writes it; its args are the run's id
#: and current token).
CAS_SCRIPT = """
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
"""
