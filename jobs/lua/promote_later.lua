-- promote_later.lua: move the delayed messages whose time has come onto the runs queue (jobs.broker.RunBroker).
-- A delayed message (a retry, a run waiting for a concurrency slot) keeps its body in the queue's message hash
-- from the start, under its own id; only its id waits, in a sorted set scored by its due time (ms). Every
-- worker's timer calls this at the head's due time; it is atomic, so each message is queued once.
--
-- KEYS[1]  the delayed ids (sorted set, id -> due ms)    KEYS[3]  the queue's message hash
-- KEYS[2]  the runs queue (list of ids)
-- ARGV[1]  now (ms)    ARGV[2]  at most this many    ARGV[3]  the channel that wakes idle consumers ("" for none)
--
-- Returns {how many were queued, the due time of the next one, or false}.

local later, queue, messages = KEYS[1], KEYS[2], KEYS[3]
local now, limit, nudge = ARGV[1], tonumber(ARGV[2]), ARGV[3]

local ids = redis.call("ZRANGEBYSCORE", later, "-inf", now, "LIMIT", 0, limit)
local moved = 0
if #ids > 0 then
    redis.call("ZREM", later, unpack(ids))
    local before = redis.call("LLEN", queue)
    for _, id in ipairs(ids) do
        if redis.call("HEXISTS", messages, id) == 1 then  -- acked or dropped meanwhile: nothing to run
            redis.call("RPUSH", queue, id)
            moved = moved + 1
        end
    end
    if before == 0 and moved > 0 and nudge ~= "" then redis.call("PUBLISH", nudge, "") end
end
local head = redis.call("ZRANGE", later, 0, 0, "WITHSCORES")
return {moved, head[2] or false}
