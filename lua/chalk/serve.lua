-- serve.lua: chalk.serve (the REPL global `serve`), the serving stack of lesson 13 built from the core:
-- nn.CharGPT (chargpt.lua), a paged KV pool (serve_model.lua), the block pool and radix prefix
-- cache (serve_blocks.lua), and here the engine: static or continuous batching with recompute
-- preemption over a request trace, on a simulated clock and the wall clock.
--
--   engine = serve.Engine(lm, {block_size=4, blocks=64, scheduler="continuous", prefix_cache=true,
--                              max_batch=8})
--   engine:add("ca", {max_tokens=8, temperature=0})   engine:step()   r = engine:run(trace)
--   trace = serve.trace{n=24, rate=2000, seed=1}   -- Poisson arrivals (per simulated second)
--
-- The simulated clock charges every op of a step against serve.DEVICE: max(FLOPs / peak, bytes /
-- bandwidth) per op from the op table's cost columns (chalk.profile), plus a launch overhead per call.
local chalk = require "chalk"
local blocks = require "chalk.serve_blocks"
local model = require "chalk.serve_model"
local CharGPT = require "chalk.chargpt"

local serve = { CharGPT = CharGPT, BlockPool = blocks.BlockPool, RadixCache = blocks.RadixCache,
                PagedModel = model.PagedModel }

-- The device model of the simulated clock (a stated, round A100-like accelerator).
serve.DEVICE = { name = "A100-like", flops = 312e12, bandwidth = 2.0e12, launch = 5e-6 }

-- Seconds of a profile on serve.DEVICE, and its FLOPs and bytes.
function serve.cost(prof, dev)
  dev = dev or serve.DEVICE
  local t, flops, bytes = 0, 0, 0
  for _, r in ipairs(prof:ops()) do
    t = t + math.max(r.flops / dev.flops, r.bytes / dev.bandwidth) + r.calls * dev.launch
    flops, bytes = flops + r.flops, bytes + r.bytes
  end
  return t, flops, bytes
end

-- ---- traces --------------------------------------------------------------------------------------

-- serve.trace{n, rate, seed, prompt={lo,hi}, output={lo,hi}, prefix=""}: n requests with Poisson
-- arrivals (rate per simulated second), prompts made of dictionary words (prefix prepended: a shared
-- system prompt), uniform prompt and output lengths.
function serve.trace(o)
  o = o or {}
  local rand = CharGPT.rng(o.seed or 1)
  local words = o.words or require("chalk.data").words()
  local plo, phi = table.unpack(o.prompt or { 4, 12 })
  local olo, ohi = table.unpack(o.output or { 4, 16 })
  local t, out = 0, {}
  for i = 1, o.n or 16 do
    t = t + -math.log(1 - rand()) / (o.rate or 2000)
    local n = plo + math.floor(rand() * (phi - plo + 1))
    local p = ""
    while #p < n do p = p .. words[1 + math.floor(rand() * #words)] .. "." end
    out[i] = { arrival = t, prompt = (o.prefix or "") .. p:sub(1, n),
               max_tokens = olo + math.floor(rand() * (ohi - olo + 1)) }
  end
  return out
end

-- ---- the engine ----------------------------------------------------------------------------------
local Engine = {}
Engine.__index = Engine

local function blocks_for(n, S) return (n + S - 1) // S end

function serve.Engine(lm, o)
  o = o or {}
  local S, NB = o.block_size or 4, o.blocks or 64
  local cache = o.prefix_cache and blocks.RadixCache(S) or nil
  local e = setmetatable({ lm = lm, S = S, NB = NB, scheduler = o.scheduler or "continuous",
                           max_batch = o.max_batch or 8, profile = o.profile ~= false, cache = cache,
                           pool = blocks.BlockPool(NB, S, cache), model = model.PagedModel(lm, NB, S),
                           waiting = {}, running = {}, finished = {}, requests = {}, now = 0, iteration = 0,
                           gantt = {}, waste = { reserved = 0, internal = 0, paged = 0, used = 0, max_paged = 0, samples = 0 },
                           preemptions = 0, wall = 0 }, Engine)
  if e.scheduler ~= "static" and e.scheduler ~= "continuous" then
    error(("serve.Engine: scheduler must be \"static\" or \"continuous\", got %q"):format(e.scheduler), 2)
  end
  return e
end

-- engine:add(prompt, {max_tokens, temperature, top_k, seed, arrival}) -> the request (a table).
function Engine:add(prompt, o)
  o = o or {}
  local id = #self.requests + 1
  local r = { id = id, prompt = prompt, tokens = CharGPT.encode("." .. prompt), out = {},
              max_tokens = o.max_tokens or 8, temperature = o.temperature or 0, top_k = o.top_k,
              rand = CharGPT.rng((o.seed or 1) * 7919 + id), arrival = o.arrival or self.now, blocks = {},
              computed = 0, preempted = 0 }
  r.prompt_len = #r.tokens
  if r.prompt_len + r.max_tokens > self.lm.context then
    error(("serve.Engine:add: prompt %d + max_tokens %d exceed the context of %d"):format(r.prompt_len,
      r.max_tokens, self.lm.context), 2)
  end
  if blocks_for(r.prompt_len + r.max_tokens, self.S) > self.NB then
    error(("serve.Engine:add: %d tokens need more than the pool's %d blocks of %d"):format(
      r.prompt_len + r.max_tokens, self.NB, self.S), 2)
  end
  self.requests[id] = r
  self.waiting[#self.waiting + 1] = r
  return r
end

-- Frees a sequence's blocks; recompute preemption sends it back to the front of the queue.
function Engine:release(r)
  for _, b in ipairs(r.blocks) do self.pool:release(b) end
  r.blocks, r.computed = {}, 0
end

function Engine:preempt_newest()
  local victim, at = nil, nil
  for i, r in ipairs(self.running) do
    if not victim or r.id > victim.id then victim, at = r, i end
  end
  table.remove(self.running, at)
  victim.running = false
  self:release(victim)
  victim.preempted = victim.preempted + 1
  self.preemptions = self.preemptions + 1
  table.insert(self.waiting, 1, victim)
  return victim
end

-- Gives r blocks for all its tokens, preempting the newest running sequence while the pool is short.
-- false when r itself was preempted.
function Engine:grow(r)
  while #r.blocks < blocks_for(#r.tokens, self.S) do
    local b = self.pool:alloc()
    if b then
      r.blocks[#r.blocks + 1] = b
    else
      if self:preempt_newest() == r then return false end
    end
  end
  return true
end

-- Admits waiting requests that have arrived: continuous at every step while a batch slot and blocks
-- for the prompt exist; static only when nothing is running (the whole batch goes together).
function Engine:admit()
  if self.scheduler == "static" and #self.running > 0 then return {} end
  local admitted = {}
  while #self.waiting > 0 and #self.running < self.max_batch do
    local r = self.waiting[1]
    if r.arrival > self.now then break end
    local matched, idle = {}, 0
    if self.cache then matched = self.cache:match(r.tokens, #r.tokens - 1) end
    for _, b in ipairs(matched) do if self.pool.ref[b] == 0 then idle = idle + 1 end end
    if blocks_for(#r.tokens, self.S) - #matched > self.pool:available() - idle then break end
    table.remove(self.waiting, 1)
    r.running = true
    for _, b in ipairs(matched) do self.pool:retain(b) end
    r.blocks, r.computed = matched, #matched * self.S
    if self.cache and r.preempted == 0 then self.cache:record(r.computed, r.prompt_len - 1) end
    self.running[#self.running + 1] = r
    admitted[#admitted + 1] = r
  end
  return admitted
end

-- engine:step(): one iteration: admit, give every running sequence its blocks (preempting when
-- short), prefill the new ones, one decode token for the others, sample, retire finished ones.
-- Returns the number of tokens produced.
function Engine:step()
  local w0 = chalk.clock()
  if #self.running == 0 and #self.waiting > 0 and self.waiting[1].arrival > self.now then
    local next_arrival = math.huge
    for _, r in ipairs(self.waiting) do next_arrival = math.min(next_arrival, r.arrival) end
    self.now = next_arrival
  end
  self:admit()
  for _, r in ipairs({ table.unpack(self.running) }) do
    if r.running then self:grow(r) end
  end
  local prefills, decodes = {}, {}
  for _, r in ipairs(self.running) do
    if #r.tokens - r.computed > 1 or r.computed == 0 then prefills[#prefills + 1] = r
    else decodes[#decodes + 1] = r end
  end
  local rows = {}
  local function compute()
    chalk.no_grad(function()
      for _, r in ipairs(prefills) do rows[r] = self.model:prefill(r.tokens, r.blocks, r.computed) end
      if #decodes > 0 then
        local out = self.model:decode(decodes)
        for i, r in ipairs(decodes) do rows[r] = out[i] end
      end
    end)
  end
  local dt = 0
  if self.profile then
    local prof = chalk.profile(compute)
    dt = serve.cost(prof)
  else
    compute()
  end
  self.iteration = self.iteration + 1
  self.now = self.now + dt
  local produced, still = 0, {}
  local lane = { prefill = {}, decode = {} }
  for _, r in ipairs(prefills) do lane.prefill[#lane.prefill + 1] = r.id end
  for _, r in ipairs(decodes) do lane.decode[#lane.decode + 1] = r.id end
  self.gantt[self.iteration] = lane
  for _, r in ipairs(self.running) do
    r.computed = #r.tokens
    local id = CharGPT.pick(rows[r], r.temperature, r.top_k, r.rand)
    r.tokens[#r.tokens + 1] = id
    r.out[#r.out + 1] = id
    produced = produced + 1
    r.first_token = r.first_token or self.now
    if self.cache and not r.cached_prompt then   -- the prompt's full blocks join the prefix cache
      self.cache:insert(r.tokens, r.prompt_len, r.blocks)
      r.cached_prompt = true
    end
    if #r.out >= r.max_tokens then
      r.running = false
      r.finish = self.now
      self:release(r)
      self.finished[#self.finished + 1] = r
    else
      still[#still + 1] = r
      local len = #r.tokens
      self.waste.used = self.waste.used + len
      self.waste.reserved = self.waste.reserved + (r.prompt_len + r.max_tokens - len)
      self.waste.internal = self.waste.internal + (self.lm.context - r.prompt_len - r.max_tokens)
      local paged = blocks_for(len, self.S) * self.S - len
      self.waste.paged = self.waste.paged + paged
      self.waste.max_paged = math.max(self.waste.max_paged, paged)
    end
  end
  self.waste.samples = self.waste.samples + 1
  self.running = still
  self.pool:check("step " .. self.iteration)
  self.wall = self.wall + (chalk.clock() - w0)
  return produced
end

function Engine:done() return #self.waiting == 0 and #self.running == 0 end

local function percentile(xs, p)
  local s = { table.unpack(xs) }
  table.sort(s)
  return s[math.max(1, math.ceil(p * #s))]
end

-- engine:run(trace): adds the trace's requests (arrival times on the simulated clock), steps until
-- every one finished, returns the report: per request ttft, tpot, latency; throughput (tokens per
-- simulated second), mean and p99 latency, iterations, preemptions, prefix hit rate, waste.
function Engine:run(trace, o)
  o = o or {}
  for _, t in ipairs(trace or {}) do
    self:add(t.prompt, { max_tokens = t.max_tokens, temperature = o.temperature or t.temperature or 0,
                         seed = o.seed, arrival = t.arrival })
  end
  while not self:done() do self:step() end
  local lat, ttft, tpot, tokens, first = {}, {}, {}, 0, math.huge
  for i, r in ipairs(self.requests) do
    r.text = CharGPT.decode(r.out)
    r.ttft, r.latency = r.first_token - r.arrival, r.finish - r.arrival
    r.tpot = #r.out > 1 and (r.finish - r.first_token) / (#r.out - 1) or 0
    lat[i], ttft[i], tpot[i] = r.latency, r.ttft, r.tpot
    tokens = tokens + #r.out
    first = math.min(first, r.arrival)
  end
  local function mean(xs) local s = 0; for _, x in ipairs(xs) do s = s + x end; return s / #xs end
  local w = self.waste
  return { requests = self.requests, tokens = tokens, makespan = self.now - first,
           throughput = tokens / (self.now - first), mean_latency = mean(lat), p99_latency = percentile(lat, 0.99),
           mean_ttft = mean(ttft), mean_tpot = mean(tpot), iterations = self.iteration,
           preemptions = self.preemptions, hit_rate = self.cache and self.cache:hit_rate() or 0,
           wall = self.wall,
           waste = { reserved = w.reserved / w.samples, internal = w.internal / w.samples, paged = w.paged / w.samples, used = w.used / w.samples,
                     max_paged = w.max_paged } }
end

-- Speculative decoding (serve_speculative.lua, lesson 14).
local spec = require "chalk.serve_speculative"
serve.speculative, serve.controlled_draft = spec.speculative, spec.controlled_draft
serve.expected_tokens, serve.speedup = spec.expected_tokens, spec.speedup

-- Pictures (serve_draw.lua); viz.gantt, viz.blocks, viz.radix as api.md names them.
local draw = require "chalk.serve_draw"
serve.gantt, serve.draw_blocks, serve.draw_radix, serve.draw_waste = draw.gantt, draw.blocks, draw.radix, draw.waste
local sdraw = require "chalk.serve_spec_draw"
serve.draw_timeline, serve.draw_acceptance = sdraw.timeline, sdraw.acceptance
if type(chalk.viz) == "table" then
  chalk.viz.gantt, chalk.viz.blocks, chalk.viz.radix = draw.gantt, draw.blocks, draw.radix
end

return serve
