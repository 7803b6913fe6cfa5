-- wrk script: POST a ~300-byte chat completion body to every target.
-- Headers (client key, Portkey routing) come from wrk -H on the command
-- line. done() prints one machine-readable line for bench/bench.py.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench-model","messages":[{"role":"system","content":"You are a concise assistant."},' ..
    '{"role":"user","content":"In two sentences, explain why an API relay keeps upstream connections alive ' ..
    'between requests, and what it costs in memory."}],"max_tokens":64,"temperature":0.2,"stream":false}'

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
        "\"err_connect\":%d,\"err_read\":%d,\"err_write\":%d,\"err_status\":%d,\"err_timeout\":%d," ..
        "\"lat_min\":%d,\"lat_mean\":%.1f,\"lat_max\":%d,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d}\n",
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.min, latency.mean, latency.max,
        latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9)))
end
