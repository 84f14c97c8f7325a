-- zero.lua: dist.ZeRO, sharded mixed-precision Adam (ZeRO stages 0-3) on a world's ranks.
--
--   z = dist.ZeRO(optim.Adam(params, {lr=}), world, {stage = 0|1|2|3, dtype = "bf16"|"f16", bucket = 4096})
--   z:gather()        stage 3: all-gathers the 16-bit parameters for this step (other stages: nothing)
--   z.params[k]       16-bit leaves shaped like the optimizer's parameters: compute with them (:to("f32"))
--   loss:backward(); z:step()   gradients reduced (stage 0 all_reduce; from stage 1 reduce_scatter,
--                     from stage 2 into the gradient shard), Adam in f32 on the master shard, the 16-bit parameters updated (and
--                     all-gathered from stage 1); stage 3 then frees the gathered parameters
--   z:memory()        this rank's live bytes by category (the allocator's, chalk.memory_stats) with
--                     the padded element count, the padding and the communication buffer's bytes
--
-- Layout: the P parameters are one flat vector padded to Pp = K N B (K buckets of N B elements, B
-- per rank per bucket). Rank r owns elements (r-1) B + 1 .. r B of every bucket: the chunk a ring
-- reduce_scatter leaves on it and all_gather fills from it. Model states per rank (16-bit p and g,
-- f32 master, m, v): stage 0 16 Pp; 1: 4 Pp + 12 Pp/N; 2: 2 Pp + 14 Pp/N; 3: 16 Pp/N bytes.
-- Collectives reduce f32 (the transport's reductions), so each bucket passes through one f32
-- communication buffer of N B elements; it, the gathered parameters and the transient full gradient
-- are allocated under the memory category "comm_buffer" (measured apart from the model states).
-- Stage 3 through z:gather() gathers every parameter once per step and keeps it through backward
-- (2P of traffic); with opts.modules, z:fsdp_step (zero_fsdp.lua) is FSDP: each module gathered just
-- in time in forward and again in backward, freed after use, prefetching the next (3P).
local chalk = require "chalk"

local Z = {}
Z.__index = Z

local function tag(t, c) return chalk.tag(t, c) end

function Z.new(opt, world, o)
  o = o or {}
  local stage, dtype = o.stage or 0, o.dtype or "bf16"
  if stage ~= 0 and stage ~= 1 and stage ~= 2 and stage ~= 3 then error("dist.ZeRO: stage must be 0, 1, 2 or 3", 3) end
  if dtype ~= "bf16" and dtype ~= "f16" then error("dist.ZeRO: dtype must be bf16 or f16", 3) end
  local g = opt.param_groups and opt.param_groups[1]
  if not g then error("dist.ZeRO(optimizer, world, opts): optimizer is an optim.Adam", 3) end
  local N, B = world.size, o.bucket or 4096
  local self = setmetatable({stage = stage, dtype = dtype, world = world, N = N, B = B, lr = g.lr,
    b1 = g.betas[1], b2 = g.betas[2], eps = g.eps, t = 0, shapes = {}, offsets = {}}, Z)
  -- o.modules = {{1, 2}, {3, 4}}: parameter indices per module, in order; each module starts on a
  -- bucket boundary so stage 3 gathers it alone (zero_fsdp.lua); its padding is counted in Pp
  local starts, P, at = {}, 0, 0
  for m, ks in ipairs(o.modules or {}) do starts[ks[1]] = m end
  self.mod_buckets = {}
  for k, p in ipairs(g.params) do
    if starts[k] then
      at = (at + N * B - 1) // (N * B) * (N * B)
      self.mod_buckets[starts[k]] = {first = at // (N * B) + 1}
      if starts[k] > 1 then self.mod_buckets[starts[k] - 1].last = at // (N * B) end
    end
    self.shapes[k], self.offsets[k] = p.shape, at
    at, P = at + p:numel(), P + p:numel()
  end
  local K = (at + N * B - 1) // (N * B)
  if #self.mod_buckets > 0 then self.mod_buckets[#self.mod_buckets].last = K end
  self.modules, self.P, self.K, self.Pp = o.modules, P, K, K * N * B
  local full = chalk.zeros(self.Pp)
  for k, p in ipairs(g.params) do full:narrow(1, self.offsets[k] + 1, p:numel()):copy_(p:detach():reshape(p:numel())) end
  chalk.with_category("comm_buffer", function() self.buf = chalk.zeros(N * B) end) -- the comm buffer
  local function owned(t) return t:view(K, N, B):select(2, world.rank):contiguous():view(K * B) end
  self.owned = owned
  local opt_state = function(t) return tag(t, "optimizer state") end
  if stage == 0 then self.master = opt_state(full:clone()) else self.master = opt_state(owned(full)) end
  self.m = opt_state(chalk.zeros(self.master:numel()))
  self.v = opt_state(chalk.zeros(self.master:numel()))
  if stage == 3 then self.p16 = tag(self.master:to(dtype), "parameter")
  else self.p16 = tag(full:to(dtype), "parameter"); self:_leaves(self.p16) end
  local gn = stage >= 2 and K * B or self.Pp
  self.g16 = tag(chalk.zeros(gn):to(dtype), "gradient")
  return self
end

function Z:_leaves(flat16)
  self.params = {}
  for k, sh in ipairs(self.shapes) do
    local n = 1
    for _, d in ipairs(sh) do n = n * d end
    self.params[k] = flat16:narrow(1, self.offsets[k] + 1, n):view(table.unpack(sh)):requires_grad_(true)
  end
end

-- Bucket k (1-based) of a flat vector of Pp elements.
function Z:_bucket(t, k) return t:narrow(1, (k - 1) * self.N * self.B + 1, self.N * self.B) end

function Z:gather()
  if self.stage ~= 3 then return self.params end
  local full = chalk.with_category("comm_buffer", function() return chalk.zeros(self.Pp):to(self.dtype) end)
  local own = self.p16:view(self.K, self.B)
  for k = 1, self.K do
    self.buf:narrow(1, (self.world.rank - 1) * self.B + 1, self.B):copy_(own:select(1, k))
    self.world:all_gather(self.buf)
    self:_bucket(full, k):copy_(self.buf)
  end
  self.full = full
  self:_leaves(full)
  return self.params
end

-- The gradients as one flat 16-bit vector of Pp elements (a transient full copy for stages 2-3).
function Z:_flat_grads(into)
  for k, p in ipairs(self.params) do
    if p.grad then into:narrow(1, self.offsets[k] + 1, p:numel()):copy_(p.grad:reshape(p:numel())) end
    p.grad = nil
  end
  return into
end

function Z:step()
  local w, N, B, K = self.world, self.N, self.B, self.K
  chalk.no_grad(function()
    if self.grads_ready then -- stage 3 by modules: zero_fsdp.lua reduce-scattered them in backward
      self.grads_ready = false
    elseif self.stage <= 1 then -- stage 0: all-reduce every bucket (mean) into the full 16-bit gradient;
      self.g16:zero_()         -- stage 1: reduce-scatter (the owned chunk is all Adam reads here)
      self:_flat_grads(self.g16)
      for k = 1, K do
        self.buf:copy_(self:_bucket(self.g16, k))
        if self.stage == 0 then w:all_reduce(self.buf, {op = "mean"}) else w:reduce_scatter(self.buf, {op = "mean"}) end
        self:_bucket(self.g16, k):copy_(self.buf)
      end
    else -- reduce-scatter every bucket (mean): this rank keeps its chunk
      local full = chalk.with_category("comm_buffer", function() return chalk.zeros(self.Pp):to(self.dtype) end)
      self:_flat_grads(full)
      local mine = self.g16:view(K, B)
      for k = 1, K do
        self.buf:copy_(self:_bucket(full, k)); w:reduce_scatter(self.buf, {op = "mean"})
        mine:select(1, k):copy_(self.buf:narrow(1, (w.rank - 1) * B + 1, B))
      end
    end
    -- Adam in f32 on what this rank owns
    local g = (self.stage == 1) and self.owned(self.g16):to("f32") or self.g16:to("f32")
    self.t = self.t + 1
    local b1, b2 = self.b1, self.b2
    self.m:copy_(self.m * b1 + g * (1 - b1))
    self.v:copy_(self.v * b2 + g * g * (1 - b2))
    local bc1, bc2 = 1 - b1 ^ self.t, 1 - b2 ^ self.t
    self.master:copy_(self.master - self.m * (self.lr / bc1) / (self.v:sqrt() * (1 / math.sqrt(bc2)) + self.eps))
    if self.stage == 0 then self.p16:copy_(self.master)
    elseif self.stage == 3 then self.p16:copy_(self.master); self.full, self.params = nil, nil
    else -- write the owned chunk of every bucket, then all-gather the buckets
      local own = self.master:view(K, B)
      for k = 1, K do
        self.buf:narrow(1, (w.rank - 1) * B + 1, B):copy_(own:select(1, k))
        w:all_gather(self.buf)
        self:_bucket(self.p16, k):copy_(self.buf)
      end
    end
  end)
end

-- This rank's live bytes by category (the allocator's), with the layout's sizes.
function Z:memory()
  collectgarbage("collect") -- tensors no longer referenced are freed first
  local cpu = chalk.memory_stats().cpu
  return {parameter = cpu.parameter, gradient = cpu.gradient, optimizer = cpu["optimizer state"],
    comm = cpu.comm_buffer or 0, temporary = cpu.temporary, activation = cpu.activation,
    P = self.P, Pp = self.Pp, padding = self.Pp - self.P}
end

require("chalk.zero_fsdp")(Z) -- z:fsdp_step: stage 3 gathering module by module (FSDP)
return Z
