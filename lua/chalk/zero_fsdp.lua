-- zero_fsdp.lua: z:fsdp_step, stage 3 as FSDP: each module's parameters all-gathered just in time in
-- forward and again in backward, freed after use, the next module's gather issued first (prefetch).
--
--   z = dist.ZeRO(opt, world, {stage = 3, modules = {{1, 2}, {3, 4}}})   parameter indices per module
--   loss = z:fsdp_step(x, {f1, f2, ...}, loss_fn); z:step()
--     fm(h, p) runs module m on input h with its 16-bit leaves p (a list in the module's order);
--     loss_fn(out) returns the scalar loss. z.timeline lists this rank's events in order:
--     {kind = "gather"|"forward"|"backward"|"free", module = m, comm = live comm_buffer bytes}.
--
-- How backward works: a simulated worker cannot yield inside autograd's backward (its hooks run in C),
-- so the backward is driven from Lua module by module: the forward keeps only each module's input
-- (no graph), and backward regathers module m, recomputes its forward with grad from that input,
-- backpropagates the output gradient through it, reduce-scatters the module's gradient buckets into
-- this rank's shard and frees the gathered parameters. The recomputation costs one extra forward per
-- module (as activation checkpointing); the traffic is FSDP's: P gathered in forward, P again in
-- backward, P reduce-scattered: 3 (N-1)/N P elements per rank per step against 2 (N-1)/N P for 0-2.
local chalk = require "chalk"

-- All-gather module m's buckets into a fresh 16-bit tensor (category comm_buffer); its leaves.
local function gather(self, m)
  local mb, N, B, w = self.mod_buckets[m], self.N, self.B, self.world
  local n = (mb.last - mb.first + 1) * N * B
  local full = chalk.with_category("comm_buffer", function() return chalk.zeros(n):to(self.dtype) end)
  local own = self.p16:view(self.K, B)
  for k = mb.first, mb.last do
    self.buf:narrow(1, (w.rank - 1) * B + 1, B):copy_(own:select(1, k))
    w:all_gather(self.buf)
    full:narrow(1, (k - mb.first) * N * B + 1, N * B):copy_(self.buf)
  end
  local base, leaves = (mb.first - 1) * N * B, {}
  for i, k in ipairs(self.modules[m]) do
    local cnt = 1
    for _, d in ipairs(self.shapes[k]) do cnt = cnt * d end
    leaves[i] = full:narrow(1, self.offsets[k] - base + 1, cnt):view(table.unpack(self.shapes[k]))
  end
  return {full = full, leaves = leaves}
end

local function note(self, kind, m)
  collectgarbage("collect")
  self.timeline[#self.timeline + 1] = {kind = kind, module = m, comm = chalk.memory_stats().cpu.comm_buffer or 0}
end

-- Reduce-scatter module m's gradients (mean) into this rank's chunk of its buckets.
local function scatter(self, m, got)
  local mb, N, B, w = self.mod_buckets[m], self.N, self.B, self.world
  local flat = chalk.with_category("comm_buffer", function() return chalk.zeros(got.full:numel()):to(self.dtype) end)
  local base = (mb.first - 1) * N * B
  for i, k in ipairs(self.modules[m]) do
    local l = got.leaves[i]
    if l.grad then flat:narrow(1, self.offsets[k] - base + 1, l:numel()):copy_(l.grad:reshape(l:numel())) end
  end
  local mine = self.g16:view(self.K, B)
  for k = mb.first, mb.last do
    self.buf:copy_(flat:narrow(1, (k - mb.first) * N * B + 1, N * B)); w:reduce_scatter(self.buf, {op = "mean"})
    mine:select(1, k):copy_(self.buf:narrow(1, (w.rank - 1) * B + 1, B))
  end
end

local function fsdp_step(self, x, fns, loss_fn)
  if self.stage ~= 3 or not self.modules then
    error("z:fsdp_step: needs dist.ZeRO(..., {stage = 3, modules = {...}})", 2)
  end
  local M = #self.modules
  if #fns ~= M then error(("z:fsdp_step: %d module functions for %d modules"):format(#fns, M), 2) end
  self.timeline = {}
  local inputs, got, h = {}, {}, x
  chalk.no_grad(function()
    got[1] = gather(self, 1); note(self, "gather", 1)
    for m = 1, M do
      if m < M then got[m + 1] = gather(self, m + 1); note(self, "gather", m + 1) end -- prefetch
      inputs[m], h = h, fns[m](h, got[m].leaves); note(self, "forward", m)
      got[m] = nil; note(self, "free", m)
    end
  end)
  local out = h:detach():requires_grad_(true)
  local loss = loss_fn(out)
  loss:backward()
  local g = out.grad
  got[M] = chalk.no_grad(function() return gather(self, M) end); note(self, "gather", M)
  for m = M, 1, -1 do
    if m > 1 then got[m - 1] = chalk.no_grad(function() return gather(self, m - 1) end); note(self, "gather", m - 1) end
    for _, l in ipairs(got[m].leaves) do l:requires_grad_(true) end
    local hin = inputs[m]:detach()
    if m > 1 then hin:requires_grad_(true) end
    fns[m](hin, got[m].leaves):backward(g) -- recompute module m with grad, backpropagate through it
    g = m > 1 and hin.grad or nil
    chalk.no_grad(function() scatter(self, m, got[m]) end); note(self, "backward", m)
    got[m], inputs[m] = nil, nil; note(self, "free", m)
  end
  self.grads_ready = true
  return loss:item()
end

return function(Z) Z.fsdp_step = fsdp_step end
