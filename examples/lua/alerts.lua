-- rawrxd.alerts: the default soak rules over a simulated 3-hour soak whose VRAM starts leaking
-- after an hour; notifications go to Slack when $RAWRXD_SLACK_WEBHOOK is set.
--     rawrxd examples/lua/alerts.lua [--rules scripts/alerts/default.lua]
local rx = require "rawrxd"

local webhooks = {}
if os.getenv("RAWRXD_SLACK_WEBHOOK") then
  webhooks[1] = { kind = "slack", url_env = "RAWRXD_SLACK_WEBHOOK" }
end
local a = rx.alerts.new { rules = rx.args.rules or "scripts/alerts/default.lua",
                          webhooks = webhooks }
local t0 = os.time()
for i = 0, 360 do
  local t = i * 30
  local leak = math.max(0, t - 3600) / 3600 * 60          -- 60 MB/h from the first hour on
  for _, tr in ipairs(a:observe { ts = t0 + t, vram_own_mb = 4000 + leak, rss_mb = 900,
                                  tokens_per_s = 40, requests_ok = i * 10, requests_failed = 0 }) do
    print(("%5d s  %-12s %-9s %s"):format(t, tr.rule, tr.kind, tr.message))
  end
end
a:flush(5)
local s = a:stats()
print(("notifications: %d sent, %d failed, %d dropped"):format(s.sent, s.failed, s.dropped))
