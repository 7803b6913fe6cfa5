-- wrk script: post.lua with the model alias routed to the TLS upstream
-- (used only by the TLS measurement, once the relay supports it).
local src = debug.getinfo(1, "S").source:sub(2)
dofile((src:match("^(.*/)") or "./") .. "post.lua")
wrk.body = wrk.body:gsub('"model":"bench%-model"', '"model":"bench-tls"')
