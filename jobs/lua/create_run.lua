-- create_run.lua: create a run in one atomic step (jobs.store.RunStore.create): its record, its event,
-- its indexes and its Dramatiq message, or, for a delayed run, its entry in the due-time index instead
-- (jobs.delayed). A reused Idempotency-Key returns what the key holds instead, writing nothing: the
-- earlier run's id, then a space and the fingerprint of the request that made it.
--
-- KEYS[1]  run record                       KEYS[6]  idempotency key, or "" for none
-- KEYS[2]  the run's event                  KEYS[7]  the queue's message hash  } written as Dramatiq's
-- KEYS[3]  all runs (sorted set)            KEYS[8]  the queue's id list       } "enqueue" (jobs.broker)
-- KEYS[4]  the function's runs (sorted set) KEYS[9]  delayed runs by due time, or "": no message then
-- KEYS[5]  active runs (sorted set)         KEYS[10] the schedule's tick index, or "" (not a tick's run)
--
-- ARGV[1]  run id                           ARGV[6]  the encoded message
-- ARGV[2]  run record (JSON)                ARGV[7]  when the reaper should look at the run (ms)
-- ARGV[3]  event (JSON)                     ARGV[8]  the request's fingerprint, or "" (any request matches)
-- ARGV[4]  idempotency window (seconds)     ARGV[9]  with KEYS[9]: the run's due time (ms)
-- ARGV[5]  the message's Redis id           ARGV[10] with KEYS[10]: the tick (ms)
-- ARGV[11] the pub/sub channel that wakes idle consumers when the queue stops being empty (jobs.broker),
--          or, for a delayed run, the one that wakes the workers' timers; "" for none
-- KEYS[11..12], ARGV[12..14] (optional) a fence (jobs.writes.Fence): the run is created only while the lease
--          KEYS[11] holds ARGV[12] ("" for no lease), and field ARGV[13] is in hash KEYS[12] ("" for none) with
--          the value ARGV[14] ("" for any)
--
-- Returns the id of the run (this one), or what the idempotency key holds ("<run id>[ <fingerprint>]"); ""
-- when the lease is another's, "-" when the field is gone or holds another value (nothing written either way).

local run_key, event_key, runs, function_runs, active, idem, messages, queue, delayed, ticks = unpack(KEYS)
local run_id, run_json, event_json, idem_ttl, message_id, message, look_at, fingerprint, due, tick, nudge = unpack(ARGV)
if KEYS[11] and KEYS[11] ~= "" and redis.call("GET", KEYS[11]) ~= ARGV[12] then return "" end
if KEYS[12] and KEYS[12] ~= "" then
    local value = redis.call("HGET", KEYS[12], ARGV[13])
    if not value or (ARGV[14] ~= "" and value ~= ARGV[14]) then return "-" end
end
if idem ~= "" then
    local existing = redis.call("GET", idem)
    if existing then return existing end
    local held = run_id
    if fingerprint ~= "" then held = run_id .. " " .. fingerprint end
    redis.call("SET", idem, held, "EX", idem_ttl)
end
redis.call("SET", run_key, run_json)
redis.call("SET", event_key, event_json)
redis.call("ZADD", runs, 0, run_id)
redis.call("ZADD", function_runs, 0, run_id)
redis.call("ZADD", active, look_at, run_id)
if ticks ~= "" then redis.call("ZADD", ticks, tick, run_id) end
if delayed ~= "" then
    redis.call("ZADD", delayed, due, run_id)
    if nudge and nudge ~= "" then redis.call("PUBLISH", nudge, "") end
else
    redis.call("HSET", messages, message_id, message)
    -- Idle consumers wait for this nudge instead of polling; a queue that was not empty needs none (every
    -- consumer with a free thread fetches again before it waits).
    if redis.call("RPUSH", queue, message_id) == 1 and nudge and nudge ~= "" then
        redis.call("PUBLISH", nudge, "")
    end
end
return run_id
