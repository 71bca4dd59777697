-- log_read.lua: a run's new log lines, its line count and whether it is active, in one round trip
-- (jobs.log_tail.LogTail.read). Lines are numbered by the count of lines ever written, so numbers stay
-- put when the capped list drops its oldest lines: line k is list item k - (count - length).
--
-- KEYS[1]  the log (a capped list)          KEYS[4]  the run record
-- KEYS[2]  the count of lines ever written  KEYS[5]  the run's progress hash
-- KEYS[3]  active runs (sorted set)
--
-- ARGV[1]  the number of the first line wanted
-- ARGV[2]  how many lines at most
-- ARGV[3]  the run id
-- ARGV[4]  "1" to also return a fingerprint of the run record and the progress hash
--
-- Returns {count, number of the oldest line kept, 1 if active else 0, lines, record fingerprint or
-- false, progress fields}.

local log, count, active_runs, record_key, progress_key = unpack(KEYS)
local wanted, most, run_id, with_state = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4] == '1'
local length = redis.call('LLEN', log)
local total = tonumber(redis.call('GET', count) or '0')
if total < length then total = length end  -- lines written before the count existed
local first = total - length
local start = wanted - first
if start < 0 then start = 0 end
local lines = {}
if wanted < total then
  lines = redis.call('LRANGE', log, start, start + most - 1)
end
local active = redis.call('ZSCORE', active_runs, run_id) and 1 or 0
local record, progress = false, {}
if with_state then
  record = redis.call('GET', record_key)
  if record then record = redis.sha1hex(record) end  -- a fingerprint: the record may be large
  progress = redis.call('HGETALL', progress_key)
end
return {total, first, active, lines, record, progress}
