-- generate.lua: chalk's side of bench/serve: tokens/s of lm:generate with the KV cache (greedy, no
-- stop at ".") for nn.CharGPT{layers=2, heads=4, dim=64, context=32}, batch B, median of R runs.
--   build/chalk bench/serve/generate.lua B R [cpu|cuda]   -> prints "chalk B tokens_per_s"
local B, R, dev = tonumber(arg[1]) or 1, tonumber(arg[2]) or 5, arg[3] or "cpu"
chalk.manual_seed(1)
local lm = nn.CharGPT { layers = 2, heads = 4, dim = 64, context = 32 }
if dev ~= "cpu" then lm:to(dev) end
local prompts = {}
for b = 1, B do prompts[b] = "ca" end
local function once()
  local _, st = lm:generate(B == 1 and "ca" or prompts, { max_tokens = 29, temperature = 0, stop = false })
  return st.tokens / st.seconds
end
once()
local rates = {}
for i = 1, R do rates[i] = once() end
table.sort(rates)
print(("chalk %d %.1f"):format(B, rates[(R + 1) // 2]))
