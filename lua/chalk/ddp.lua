-- ddp.lua: dist.DDP, data parallelism with gradient buckets all-reduced during backward.
--
--   ddp = dist.DDP(model, world, {bucket_mb = 25, algo = "ring"})
--   loss = loss_fn(ddp(x), y)    -- ddp(x) is model(x) (after waiting for the last step's buckets)
--   loss:backward()               -- buckets start as their gradients become ready
--   ddp:wait()                    -- every bucket reduced: each .grad is the mean over ranks
--   opt:step()
--
-- At construction every parameter is broadcast from rank 1, so all ranks start equal. Parameters
-- are put into buckets in reverse order (PyTorch's choice: backward makes the last layer's
-- gradients first), a bucket closing once it holds bucket_mb MiB. A gradient-ready hook on the
-- worker's context copies each leaf's gradient into its bucket's flat buffer; a full bucket starts
-- an asynchronous all_reduce (op mean) on the worker's communication stream, in bucket order.
-- Hooks run inside backward and cannot yield: the hook starts the collective and runs it as far as
-- it goes without waiting (sim: its sends are posted; mpi: MPI_Isend/Irecv of the executor, tested
-- without blocking), and ddp:wait() finishes it (sim: yielding to the scheduler). A backward-end
-- hook starts the buckets whose parameters got no gradient (their part stays zero). On sim the
-- bucket's messages are stamped on the stream from the bucket's launch time, while the worker's
-- compute clock goes on through the rest of backward (see dist.lua: the clocks).
--
-- Invariants: every rank launches the same buckets in the same order (bucket index), so collective
-- numbers agree; one backward per ddp:wait() (gradient accumulation across backwards is not
-- supported: wait() after each).
local chalk = require "chalk"
local core = require "chalk.dist_core"

local DDP = {}
DDP.__index = DDP

local function bytes_of(p)
  local size = {f32 = 4, f64 = 8, f16 = 2, bf16 = 2}
  return p:numel() * (size[p.dtype] or 4)
end

function DDP.new(dist, model, world, o)
  if getmetatable(world) ~= dist.World then error("dist.DDP(model, world, opts): world is a dist world", 3) end
  o = o or {}
  local mb = o.bucket_mb or 25
  if type(mb) ~= "number" or mb <= 0 then error("dist.DDP: bucket_mb must be a positive number of MiB", 3) end
  local params = model:parameters()
  if #params == 0 then error("dist.DDP: the model has no parameters", 3) end
  local self = setmetatable({module = model, world = world, algo = o.algo or "ring", bucket_mb = mb,
                             params = params, buckets = {}, of = {}, next_launch = 1, pending = false}, DDP)
  chalk.no_grad(function()
    for _, p in ipairs(params) do world:broadcast(p.data, 1) end
  end)
  -- buckets over the parameters in reverse order
  local cap, b = mb * 1024 * 1024, nil
  for i = #params, 1, -1 do
    local p = params[i]
    if not b or b.bytes >= cap or p.dtype ~= b.dtype then
      b = {index = #self.buckets + 1, params = {}, offsets = {}, numel = 0, bytes = 0, dtype = p.dtype, ready = 0}
      self.buckets[#self.buckets + 1] = b
    end
    b.params[#b.params + 1] = p
    b.offsets[#b.params] = b.numel + 1
    b.numel, b.bytes = b.numel + p:numel(), b.bytes + bytes_of(p)
    self.of[core.tensor_id(p)] = {bucket = b, slot = #b.params}
  end
  for _, bk in ipairs(self.buckets) do
    bk.flat = chalk.zeros(bk.numel, {dtype = bk.dtype, device = bk.params[1].device}) -- on nccl: the rank's GPU
    bk.seen = {}
  end
  self.ctx = chalk.context.current()
  self.hooks = {
    self.ctx:on_grad_ready(function(leaf) self:_ready(leaf) end),
    self.ctx:on_backward_end(function() self:_launch_rest() end),
  }
  return self
end

-- Starts every complete bucket from next_launch on, in bucket order.
function DDP:_launch_ready(all)
  while self.next_launch <= #self.buckets do
    local b = self.buckets[self.next_launch]
    if not all and b.ready < #b.params then return end
    b.handle = self.world:all_reduce(b.flat, {op = "mean", algo = self.algo, async = true})
    self.next_launch, self.pending = self.next_launch + 1, true
  end
end

-- Gradient-ready hook: the leaf's gradient is complete; copy it into its bucket.
function DDP:_ready(leaf)
  local at = self.of[core.tensor_id(leaf)]
  if not at then return end -- a leaf that is not one of this model's parameters
  local b, k = at.bucket, at.slot
  if b.seen[k] then
    error("dist.DDP: a parameter's gradient became ready twice before ddp:wait() "
          .. "(call ddp:wait() after each backward)", 0)
  end
  local p = b.params[k]
  b.flat:narrow(1, b.offsets[k], p:numel()):copy_(leaf.grad:reshape(p:numel()))
  b.seen[k], b.ready = true, b.ready + 1
  self:_launch_ready(false)
end

-- Backward-end hook: buckets with parameters that got no gradient go now (their part is zero).
function DDP:_launch_rest()
  if self.next_launch > 1 or self.buckets[1].ready > 0 then self:_launch_ready(true) end
end

-- Waits for every bucket and writes the averaged gradients into each parameter's .grad.
function DDP:wait()
  if not self.pending then return self end
  for _, b in ipairs(self.buckets) do
    if b.handle then b.handle:wait() end
  end
  chalk.no_grad(function()
    for _, b in ipairs(self.buckets) do
      for k, p in ipairs(b.params) do
        local g = b.flat:narrow(1, b.offsets[k], p:numel()):reshape(p.shape)
        if p.grad then p.grad:copy_(g) else p.grad = g:clone() end
      end
      b.flat:zero_()
      b.ready, b.seen, b.handle = 0, {}, nil
    end
  end)
  self.next_launch, self.pending = 1, false
  return self
end

-- ddp(x, ...): the model's forward, after the previous step's buckets are in.
function DDP:__call(...)
  self:wait()
  return self.module(...)
end

function DDP:parameters() return self.module:parameters() end

-- Bucket sizes, for pictures and prints: {{params = n, bytes = b}, ...} in launch order.
function DDP:bucket_sizes()
  local out = {}
  for i, b in ipairs(self.buckets) do out[i] = {params = #b.params, bytes = b.bytes} end
  return out
end

-- Removes the hooks (the model keeps working alone).
function DDP:close()
  for _, id in ipairs(self.hooks or {}) do self.ctx:remove_hook(id) end
  self.hooks = nil
end

function DDP:__tostring()
  return ("DDP(%d parameters in %d buckets of <= %g MiB, %s, rank %d of %d)"):format(#self.params, #self.buckets,
    self.bucket_mb, self.algo, self.world.rank, self.world.size)
end

return DDP
