-- serve_blocks.lua: the KV block pool of serve.Engine (free list, reference counts, per-sequence
-- block tables) and the radix prefix cache over token blocks (LRU eviction of unreferenced leaves).
--
-- A physical block is in exactly one of three states:
--   in use      ref > 0: one or more sequences hold it in their block tables
--   evictable   ref == 0, but the prefix cache keeps it (its tokens may be matched again)
--   free        on the free list
-- pool:check() asserts free + evictable + in use = total after every engine step.
local M = {}

local Pool = {}
Pool.__index = Pool

-- serve.BlockPool(total, block_size [, cache]): cache is a RadixCache (or nil: no prefix cache).
function M.BlockPool(total, block_size, cache)
  local p = setmetatable({ total = total, block_size = block_size, ref = {}, free = {}, cache = cache,
                           allocs = 0, evictions = 0 }, Pool)
  for b = total, 1, -1 do p.free[#p.free + 1] = b; p.ref[b] = 0 end
  if cache then cache:set_refs(p.ref) end
  return p
end

function Pool:num_free() return #self.free end
function Pool:num_evictable() return self.cache and self.cache:evictable_count() or 0 end
-- Blocks a new allocation could take: free ones plus unreferenced cached ones.
function Pool:available() return #self.free + self:num_evictable() end

-- One block with ref 1, from the free list or by evicting the least recently used cached leaf;
-- nil when neither has one.
function Pool:alloc()
  if #self.free == 0 and self.cache then
    local b = self.cache:evict_one()
    if b then
      assert(self.ref[b] == 0, ("BlockPool: evicted block %d still has %d references"):format(b, self.ref[b]))
      self.free[#self.free + 1] = b
      self.evictions = self.evictions + 1
    end
  end
  local b = table.remove(self.free)
  if not b then return nil end
  self.ref[b] = 1
  self.allocs = self.allocs + 1
  return b
end

function Pool:retain(b) self.ref[b] = self.ref[b] + 1 end

-- Drops one reference; at zero the block returns to the free list unless the prefix cache holds it.
function Pool:release(b)
  assert(self.ref[b] > 0, ("BlockPool: block %d released with no reference"):format(b))
  self.ref[b] = self.ref[b] - 1
  if self.ref[b] == 0 and not (self.cache and self.cache:holds(b)) then self.free[#self.free + 1] = b end
end

-- Counts of the three states; fails loudly when they do not add up to the total.
function Pool:check(where)
  local in_use, evictable, seen = 0, 0, {}
  for _, b in ipairs(self.free) do
    if seen[b] or self.ref[b] ~= 0 then
      error(("BlockPool invariant broken%s: block %d on the free list twice or referenced"):format(
        where and (" after " .. where) or "", b), 2)
    end
    seen[b] = true
  end
  for b = 1, self.total do
    if self.ref[b] > 0 then in_use = in_use + 1
    elseif self.cache and self.cache:holds(b) then evictable = evictable + 1 end
  end
  local free = #self.free
  if free + evictable + in_use ~= self.total then
    error(("BlockPool invariant broken%s: free %d + evictable %d + in use %d ~= total %d"):format(
      where and (" after " .. where) or "", free, evictable, in_use, self.total), 2)
  end
  return { free = free, evictable = evictable, in_use = in_use, total = self.total }
end

-- ---- the radix prefix cache ------------------------------------------------------------------
-- A tree whose edges are full blocks of block_size tokens: the path from the root spells a prompt
-- prefix, and each node holds the physical block with that block's keys and values.
local Radix = {}
Radix.__index = Radix

function M.RadixCache(block_size)
  return setmetatable({ block_size = block_size, root = { children = {}, n = 0 }, by_block = {}, clock = 0,
                        matched = 0, queried = 0 }, Radix)
end

local function key_of(tokens, first, S)
  return table.concat(tokens, ",", first, first + S - 1)
end

function Radix:holds(b) return self.by_block[b] ~= nil end

-- The blocks of the longest cached prefix of tokens[1..limit] (whole blocks only), refreshing their
-- LRU time; counts the hit rate (matched tokens / queried tokens).
function Radix:match(tokens, limit)
  local S, node, blocks = self.block_size, self.root, {}
  self.clock = self.clock + 1
  for first = 1, limit - S + 1, S do
    local child = node.children[key_of(tokens, first, S)]
    if not child then break end
    child.last_used = self.clock
    blocks[#blocks + 1] = child.block
    node = child
  end
  return blocks
end

function Radix:record(matched, queried)
  self.matched, self.queried = self.matched + matched, self.queried + queried
end

function Radix:hit_rate() return self.queried > 0 and self.matched / self.queried or 0 end

-- Inserts the full blocks of tokens[1..limit] held in blocks (a block table); a block already in the
-- tree under the same prefix stays (the sequence's own copy is then not cached).
function Radix:insert(tokens, limit, blocks)
  local S, node = self.block_size, self.root
  self.clock = self.clock + 1
  local j = 1
  for first = 1, limit - S + 1, S do
    local key = key_of(tokens, first, S)
    local child = node.children[key]
    if not child then
      if self.by_block[blocks[j]] then break end -- that block already caches another prefix
      child = { children = {}, n = 0, parent = node, key = key, block = blocks[j] }
      node.children[key], node.n = child, node.n + 1
      self.by_block[blocks[j]] = child
    end
    child.last_used = self.clock
    node, j = child, j + 1
  end
end

-- The pool sets this: a function(block) -> its reference count.
function Radix:set_refs(ref) self.ref = ref end

function Radix:evictable_count()
  local n = 0
  for b in pairs(self.by_block) do if self.ref[b] == 0 then n = n + 1 end end
  return n
end

-- Removes the least recently used leaf whose block no sequence references; returns its block.
function Radix:evict_one()
  local best
  for b, node in pairs(self.by_block) do
    if node.n == 0 and self.ref[b] == 0 and (not best or node.last_used < best.last_used or
        (node.last_used == best.last_used and node.block < best.block)) then
      best = node
    end
  end
  if not best then return nil end
  assert(self.ref[best.block] == 0, "RadixCache: evicting a referenced block")
  best.parent.children[best.key], best.parent.n = nil, best.parent.n - 1
  self.by_block[best.block] = nil
  return best.block
end

-- Nodes as a list {depth, key, block, ref, parent index} in depth-first order (for pictures).
function Radix:nodes()
  local out = {}
  local function walk(node, depth, parent)
    local keys = {}
    for k in pairs(node.children) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local c = node.children[k]
      out[#out + 1] = { depth = depth, key = k, block = c.block, ref = self.ref[c.block], parent = parent }
      walk(c, depth + 1, #out)
    end
  end
  walk(self.root, 1, 0)
  return out
end

return M
