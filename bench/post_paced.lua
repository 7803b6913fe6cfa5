-- wrk script: the same POST as post.lua, paced. Each connection waits a
-- random 10-30 ms (mean 20 ms) before each request, so -c4 gives about
-- 4 / (20 ms + latency) ~ 190 req/s whatever the target's speed.
local src = debug.getinfo(1, "S").source:sub(2)
dofile((src:match("^(.*/)") or "./") .. "post.lua")

function delay()
    return math.random(10, 30)
end
