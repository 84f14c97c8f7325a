-- pytorch_names_spec.lua: the PyTorch names students type (issue 15): each op against torch (one
-- Python run for the ops, one per optimizer or module family), each differentiable one by finite
-- differences in f64, the in-place ops' version counters, `x == y`, nn and optim additions.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local nn, optim, F = chalk.nn, chalk.optim, chalk.nn.functional
local ref = require "torch_ref"

-- Largest |analytic - numeric| of d sum(w * f(x)) / dx by central differences (x f64).
local function gradcheck(f, x0)
  local x = x0:detach():clone()
  x.requires_grad = true
  local y = f(x)
  local w = chalk.linspace(0.5, 1.5, y:numel(), { dtype = "f64" }):reshape(y.shape)
  local g = chalk.grad((y * w):sum(), { x })[1]
  local worst, eps = 0, 1e-6
  local n = x:numel()
  for i = 1, n do
    local function at(delta)
      local xp = x0:detach():clone()
      local flat = xp:view(-1)
      flat[i] = flat[i]:item() + delta
      return chalk.no_grad(function() return (f(xp) * w):sum():item() end)
    end
    local num = (at(eps) - at(-eps)) / (2 * eps)
    worst = math.max(worst, math.abs(num - g:reshape(-1)[i]:item()))
  end
  return worst
end

local function close(a, b, tol) return ref.maxdiff(a, b) < (tol or 1e-9) end

describe("PyTorch names against torch", function()
  chalk.manual_seed(5)
  local x = chalk.randn(3, 4, { dtype = "f64" })
  local b3 = chalk.randn(2, 3, 4, { dtype = "f64" })
  local c3 = chalk.randn(2, 4, 5, { dtype = "f64" })
  local q = chalk.randn(2, 2, 3, 4, { dtype = "f64" })
  local k = chalk.randn(2, 2, 5, 4, { dtype = "f64" })
  local sq = chalk.randn(4, 4, { dtype = "f64" })
  local v = chalk.randn(4, { dtype = "f64" })
  local u = chalk.randn(3, { dtype = "f64" })
  local dup = chalk.tensor({ { 3, 1, 3, 2 }, { 0, 0, 5, -1 } }, { dtype = "f64" })
  local out = ref.run({ x = x, b3 = b3, c3 = c3, q = q, k = k, sq = sq, v = v, u = u, dup = dup }, [[
    x, sq, v, u, dup = I["x"], I["sq"], I["v"], I["u"], I["dup"]
    O["mm"] = torch.mm(x, sq); O["bmm"] = torch.bmm(I["b3"], I["c3"])
    O["e_ik"] = torch.einsum("ij,jk->ik", x, sq); O["e_bik"] = torch.einsum("bij,bjk->bik", I["b3"], I["c3"])
    O["e_ji"] = torch.einsum("ij->ji", x); O["e_tr"] = torch.einsum("ii->", sq); O["e_sum"] = torch.einsum("ij->", x)
    O["e_dot"] = torch.einsum("i,i->", v, v); O["e_outer"] = torch.einsum("i,j->ij", u, v)
    O["e_att"] = torch.einsum("bhqd,bhkd->bhqk", I["q"], I["k"])
    s = torch.sort(dup, dim=1, stable=True); O["sort_v"] = s.values; O["sort_i"] = s.indices + 1
    s = torch.sort(dup, dim=1, descending=True, stable=True); O["sortd_v"] = s.values; O["sortd_i"] = s.indices + 1
    s = torch.sort(dup, dim=0, stable=True); O["sort0_i"] = s.indices + 1
    t = torch.topk(x, 2, dim=1); O["topk_v"] = t.values; O["topk_i"] = t.indices + 1
    t = torch.topk(x, 2, dim=0, largest=False); O["topks_v"] = t.values
    O["cumsum1"] = torch.cumsum(x, 0); O["cumsum2"] = torch.cumsum(x, 1)
    O["lse"] = torch.logsumexp(x, 1); O["lse0k"] = torch.logsumexp(x, 0, keepdim=True)
    O["mfill"] = x.masked_fill(x > 0, -2.0)
    O["triu"] = torch.triu(sq); O["triu1"] = torch.triu(sq, 1); O["tril"] = torch.tril(sq); O["tril_1"] = torch.tril(sq, -1)
    O["norm"] = torch.norm(x); O["norm1"] = x.norm(p=1, dim=1); O["norminf"] = x.norm(p=float("inf"), dim=0)
    O["norm3"] = x.norm(p=3); O["normk"] = x.norm(dim=1, keepdim=True)
    O["rep"] = x.repeat(2, 1, 3); O["rep2"] = v.repeat(3, 2)
    O["flip"] = torch.flip(x, [1]); O["flip01"] = torch.flip(x, [0, 1])
    O["all1"] = (dup != 0).all(1); O["any0"] = (dup != 0).any(0)
  ]])

  it("mm and bmm, with shape checks", function()
    assert.is_true(close(x:mm(sq), out.mm))
    assert.is_true(close(chalk.bmm(b3, c3), out.bmm))
    assert.has_error(function() x:mm(x) end, "mm: expected 2-D tensors [n, k] and [k, m], got [3, 4] and [3, 4]")
    assert.has_error(function() b3:bmm(x) end)
  end)

  it("einsum in its common forms", function()
    assert.is_true(close(chalk.einsum("ij,jk->ik", x, sq), out.e_ik))
    assert.is_true(close(chalk.einsum("bij,bjk->bik", b3, c3), out.e_bik))
    assert.is_true(close(chalk.einsum("ij->ji", x), out.e_ji))
    assert.is_true(close(chalk.einsum("ii->", sq), out.e_tr))
    assert.is_true(close(chalk.einsum("ij->", x), out.e_sum))
    assert.is_true(close(chalk.einsum("i,i->", v, v), out.e_dot))
    assert.is_true(close(chalk.einsum("i,j->ij", u, v), out.e_outer))
    assert.is_true(close(chalk.einsum("bhqd,bhkd->bhqk", q, k), out.e_att))
    assert.is_true(close(chalk.einsum("ij,jk", x, sq), out.e_ik)) -- implicit output
    assert.has_error(function() chalk.einsum("ij,jk->ik", x, x) end)
  end)

  it("sort, topk (1-based indices, stable ties) and cumsum", function()
    local sv, si = dup:sort(2)
    assert.is_true(close(sv, out.sort_v) and close(si, out.sort_i))
    sv, si = dup:sort{ dim = 2, descending = true }
    assert.is_true(close(sv, out.sortd_v) and close(si, out.sortd_i))
    assert.are.equal("i64", si.dtype)
    local _, s0 = dup:sort(1)
    assert.is_true(close(s0, out.sort0_i))
    local tv, ti = x:topk(2, 2)
    assert.is_true(close(tv, out.topk_v) and close(ti, out.topk_i))
    assert.is_true(close((x:topk(2, 1, false)), out.topks_v))
    assert.is_true(close(x:cumsum(1), out.cumsum1) and close(chalk.cumsum(x, 2), out.cumsum2))
    assert.is_true(close((chalk.sort(dup, 2)), out.sort_v) and close((chalk.topk(x, 2, 2)), out.topk_v))
    assert.are.equal("i64", chalk.tensor({ true, false, true }):cumsum(1).dtype)
    assert.has_error(function() x:topk(5, 2) end, "topk: k = 5 is out of range for dim 2 of size 4")
  end)

  it("logsumexp, masked_fill, triu, tril, norm", function()
    assert.is_true(close(x:logsumexp(2), out.lse) and close(x:logsumexp(1, true), out.lse0k))
    local big = chalk.tensor({ 1000, 1000 }, { dtype = "f64" })
    assert.is_true(math.abs(big:logsumexp(1):item() - (1000 + math.log(2))) < 1e-9) -- no overflow
    assert.is_true(close(x:masked_fill(x:gt(0), -2), out.mfill))
    assert.is_true(close(sq:triu(), out.triu) and close(sq:triu(1), out.triu1))
    assert.is_true(close(sq:tril(), out.tril) and close(sq:tril(-1), out.tril_1))
    assert.is_true(close(x:norm(), out.norm) and close(x:norm(1, 2), out.norm1))
    assert.is_true(close(x:norm(math.huge, 1), out.norminf) and close(x:norm(3), out.norm3))
    assert.is_true(close(x:norm{ dim = 2, keepdim = true }, out.normk))
  end)

  it("repeat, split, chunk, flip, all, any", function()
    assert.is_true(close(x["repeat"](x, 2, 1, 3), out.rep) and close(v:tile(3, 2), out.rep2))
    local parts = x:split(3, 2)
    assert.are.same({ { 3, 3 }, { 3, 1 } }, { { table.unpack(parts[1].shape) }, { table.unpack(parts[2].shape) } })
    local sizes = x:split({ 1, 2 }, 1)
    assert.is_true(close(sizes[2], x:narrow(1, 2, 2)))
    assert.are.equal(2, #x:chunk(2, 2))
    assert.are.equal(3, #x:chunk(3))
    assert.is_true(close(x:flip(2), out.flip) and close(x:flip({ 1, 2 }), out.flip01))
    assert.is_true(chalk.equal(dup:all(2), out.all1:bool()) and chalk.equal(dup:any(1), out.any0:bool()))
    assert.has_error(function() x:split({ 1, 1 }, 1) end, "split: sizes sum to 2 but dim 1 has size 3")
  end)
end)

describe("PyTorch names: gradients by finite differences (f64)", function()
  chalk.manual_seed(9)
  local x = chalk.randn(3, 4, { dtype = "f64" })
  local sq = chalk.randn(4, 4, { dtype = "f64" })
  local b3 = chalk.randn(2, 3, 4, { dtype = "f64" })
  local c3 = chalk.randn(2, 4, 2, { dtype = "f64" })
  local cases = {
    { "mm", function(t) return t:mm(sq) end, x },
    { "bmm", function(t) return t:bmm(c3) end, b3 },
    { "einsum ij,jk->ik", function(t) return chalk.einsum("ij,jk->ik", t, sq) end, x },
    { "einsum ii->", function(t) return chalk.einsum("ii->", t) end, sq },
    { "einsum ij->ji", function(t) return chalk.einsum("ij->ji", t) end, x },
    { "einsum i,j->ij", function(t) return chalk.einsum("i,j->ij", t, t) end, sq[1] },
    { "einsum bij,bjk->bik", function(t) return chalk.einsum("bij,bjk->bik", t, c3) end, b3 },
    { "sort", function(t) return (t:sort(2, true)) end, x },
    { "topk", function(t) return (t:topk(2, 1)) end, x },
    { "cumsum", function(t) return t:cumsum(2) end, x },
    { "cumsum twice (double backward of the row)", function(t) return t:cumsum(1):cumsum(1) end, x },
    { "logsumexp", function(t) return t:logsumexp(2) end, x },
    { "masked_fill", function(t) return t:masked_fill(x:gt(0), 0.5) end, x },
    { "triu", function(t) return t:triu(1) end, sq },
    { "tril", function(t) return t:tril() end, sq },
    { "norm", function(t) return t:norm() end, x },
    { "norm p=1 dim", function(t) return t:norm(1, 2) end, x },
    { "norm inf", function(t) return t:norm(math.huge, 1) end, x },
    { "norm p=3", function(t) return t:norm(3) end, x },
    { "repeat", function(t) return t["repeat"](t, 2, 1, 2) end, x },
    { "split", function(t) return t:split(3, 2)[2] end, x },
    { "chunk", function(t) return t:chunk(2, 1)[1] end, x },
    { "flip", function(t) return t:flip({ 1, 2 }) end, x },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local err = gradcheck(c[2], c[3])
      assert.is_true(err < 1e-6, c[1] .. ": gradient differs from finite differences by " .. err)
    end)
  end

  it("cumsum's row has its formula and refuses a CUDA tensor clearly", function()
    assert.are.equal("dx = reverse cumsum of g along dim", chalk.op_info("cumsum").grad)
    if chalk.cuda.is_available() then
      assert.has_error(function() chalk.ones(3, { device = "cuda" }):cumsum(1) end, "cumsum: no kernel for device cuda:0")
    end
  end)
end)

describe("PyTorch names: tolist, allclose, equal, multinomial", function()
  it("tolist, allclose and chalk.equal give Lua values", function()
    local x = chalk.tensor({ { 1, 2 }, { 3, 4 } })
    assert.are.same({ { 1, 2 }, { 3, 4 } }, x:tolist())
    assert.is_true(x:allclose(x + 1e-7))
    assert.is_false(x:allclose(x + 1e-3))
    local n = chalk.tensor({ 0 / 0, 1 })
    assert.is_false(n:allclose(n))
    assert.is_true(n:allclose(n, 1e-5, 1e-8, true))
    assert.is_true(chalk.equal(x, x:clone()))
    assert.is_false(chalk.equal(x, x:t()))
    assert.is_false(chalk.equal(x, chalk.ones(4)))
  end)

  it("multinomial draws by the probabilities, without replacement distinct", function()
    chalk.manual_seed(1)
    local p = chalk.tensor({ 0.1, 0.0, 0.6, 0.3 })
    local draws = p:multinomial(4000, true)
    assert.are.same({ 4000 }, { table.unpack(draws.shape) })
    assert.are.equal("i64", draws.dtype)
    local counts = chalk.one_hot(draws, 4):sum(1) / 4000
    assert.is_true(ref.maxdiff(counts, p) < 0.03)
    assert.are.equal(0, counts[2]:item())
    local rows = chalk.tensor({ { 0.5, 0.5, 0 }, { 0, 0.2, 0.8 } }):multinomial(2)
    for r = 1, 2 do
      local a, b = rows[r][1]:item(), rows[r][2]:item()
      assert.are_not.equal(a, b)
    end
    assert.is_true(rows[1]:le(2):all():item())
    assert.has_error(function() p:multinomial(4) end, "multinomial: cannot draw 4 samples without replacement from 3 non-zero categories")
  end)
end)

describe("PyTorch names: in place", function()
  it("add_, sub_, mul_, div_, exp_, clamp_, zero_ compute as torch and return x", function()
    local x = chalk.tensor({ 1, 2, 3 }, { dtype = "f64" })
    assert.are.equal(x, x:add_(1))
    x:sub_(chalk.tensor({ 1, 1, 1 }, { dtype = "f64" }), 0.5):mul_(2):div_(chalk.tensor({ 1, 2, 4 }, { dtype = "f64" }))
    assert.are.same({ 3, 2.5, 1.75 }, x:tolist())
    x:clamp_(2, 3)
    assert.are.same({ 3, 2.5, 2 }, x:tolist())
    x:exp_()
    assert.is_true(math.abs(x[3]:item() - math.exp(2)) < 1e-12)
    assert.are.same({ 0, 0, 0 }, x:zero_():tolist())
  end)

  it("bump the version counter, so a stale saved tensor fails backward", function()
    for _, name in ipairs({ "add_", "mul_", "exp_", "clamp_", "uniform_" }) do
      local w = chalk.ones(3, { requires_grad = true })
      local a = chalk.tensor({ 1, 2, 3 })
      local loss = (w * a):sum()
      local args = { add_ = { 1 }, mul_ = { 2 }, exp_ = {}, clamp_ = { 0, 1 }, uniform_ = {} }
      a[name](a, table.unpack(args[name]))
      local ok, err = pcall(function() loss:backward() end)
      assert.is_false(ok, name)
      assert.is_truthy(tostring(err):find("modified by an inplace operation", 1, true), name)
    end
  end)

  it("refuse a tensor that requires grad", function()
    local w = chalk.ones(3, { requires_grad = true })
    assert.has_error(function() w:mul_(2) end)
    chalk.no_grad(function() w:mul_(2) end)
    assert.are.same({ 2, 2, 2 }, w:tolist())
  end)

  it("uniform_ and normal_ draw from the context's Philox stream", function()
    chalk.manual_seed(3)
    local a = chalk.empty and chalk.empty(2000) or chalk.zeros(2000)
    a:uniform_(-2, 4)
    assert.is_true(a:min():item() >= -2 and a:max():item() < 4)
    assert.is_true(math.abs(a:mean():item() - 1) < 0.15)
    chalk.manual_seed(3)
    local b = chalk.zeros(2000):uniform_(-2, 4)
    assert.is_true(chalk.equal(a, b))
    local n = chalk.zeros(4000, { dtype = "f64" }):normal_(3, 2)
    assert.is_true(math.abs(n:mean():item() - 3) < 0.15 and math.abs(n:std():item() - 2) < 0.15)
  end)
end)

describe("x == y on tensors", function()
  it("raises an error that names x:eq(y) and chalk.equal", function()
    local x, y = chalk.ones(2), chalk.ones(2)
    local ok, err = pcall(function() return x == y end)
    assert.is_false(ok)
    assert.is_truthy(err:find("x:eq(y)", 1, true) and err:find("chalk.equal(x, y)", 1, true))
    assert.is_true(x == x) -- the same object: Lua never asks the metamethod
    assert.is_true(rawequal(x, x) and not rawequal(x, y))
    assert.is_false(x == 1)
  end)
end)

describe("nn additions", function()
  it("Identity, ModuleList, the loss modules and functional.one_hot", function()
    local x = chalk.randn(2, 3)
    assert.is_true(rawequal(nn.Identity()(x), x))
    local list = nn.ModuleList{ nn.Linear(3, 4), nn.ReLU() }
    list:append(nn.Linear(4, 2))
    assert.are.equal(3, #list)
    local h = x
    for _, m in ipairs(list) do h = m(h) end
    assert.are.same({ 2, 2 }, { table.unpack(h.shape) })
    assert.are.equal(3 * 4 + 4 + 4 * 2 + 2, list:num_parameters())
    assert.has_error(function() list(x) end)
    local y, t = chalk.randn(2, 3), chalk.tensor({ 3, 1 }, { dtype = "i64" })
    assert.are.equal(chalk.mse_loss(x, y):item(), nn.MSELoss()(x, y):item())
    assert.are.equal(chalk.cross_entropy(x, t):item(), nn.CrossEntropyLoss()(x, t):item())
    assert.is_true(chalk.equal(F.one_hot(t), chalk.tensor({ { 0, 0, 1 }, { 1, 0, 0 } }, { dtype = "i64" })))
    assert.are.same({ 2, 5 }, { table.unpack(F.one_hot(t, 5).shape) })
  end)

  it("BatchNorm1d/2d match torch: train output, running statistics, eval output, gradients", function()
    chalk.manual_seed(4)
    local x1 = chalk.randn(6, 3, { dtype = "f64" }) * 2 + 1
    local x2 = chalk.randn(4, 3, 5, 5, { dtype = "f64" }) - 0.5
    local bn1 = nn.BatchNorm1d(3, { momentum = 0.2 }):to("f64")
    local bn2 = nn.BatchNorm2d(3):to("f64")
    chalk.no_grad(function() bn2.weight:copy_(chalk.tensor({ 1.5, 0.5, 2 })); bn2.bias:copy_(chalk.tensor({ 0.1, -0.2, 0.3 }, { dtype = "f64" })) end)
    local y1 = bn1(x1); bn1(x1 * 0.5)
    local y2 = bn2(x2)
    local xg = x2:clone(); xg.requires_grad = true
    local w = chalk.linspace(-1, 1, x2:numel(), { dtype = "f64" }):reshape(x2.shape)
    bn2:train(); local gx = chalk.grad((bn2(xg) * w):sum(), { xg })[1]
    bn1:eval(); bn2:eval()
    local e1, e2 = bn1(x1), bn2(x2)
    local out = ref.run({ x1 = x1, x2 = x2, w = w }, [[
      bn1 = torch.nn.BatchNorm1d(3, momentum=0.2); bn2 = torch.nn.BatchNorm2d(3)
      with torch.no_grad():
          bn2.weight.copy_(torch.tensor([1.5, 0.5, 2])); bn2.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
      O["y1"] = bn1(I["x1"]); bn1(I["x1"] * 0.5); O["y2"] = bn2(I["x2"])
      xg = I["x2"].clone().requires_grad_(True); (bn2(xg) * I["w"]).sum().backward(); O["gx"] = xg.grad
      O["rm1"] = bn1.running_mean; O["rv1"] = bn1.running_var; O["rm2"] = bn2.running_mean; O["rv2"] = bn2.running_var
      bn1.eval(); bn2.eval(); O["e1"] = bn1(I["x1"]); O["e2"] = bn2(I["x2"])
    ]])
    assert.is_true(close(y1, out.y1) and close(y2, out.y2) and close(gx, out.gx))
    assert.is_true(close(bn1.running_mean, out.rm1) and close(bn1.running_var, out.rv1))
    assert.is_true(close(bn2.running_mean, out.rm2) and close(bn2.running_var, out.rv2))
    assert.is_true(close(e1, out.e1) and close(e2, out.e2))
    assert.has_error(function() bn2(x1) end)
  end)

  it("state_dict carries parameters and running statistics; chalk.save/load round-trips it", function()
    chalk.manual_seed(8)
    local function make() return nn.Sequential{ nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2) } end
    local a = make()
    a(chalk.randn(8, 3)) -- training step: moves the running statistics
    local sd = a:state_dict()
    assert.is_not_nil(sd["2.running_mean"])
    assert.is_not_nil(sd["2.weight"])
    local path = os.tmpname()
    chalk.save(sd, path)
    local b = make()
    b:load_state_dict(chalk.load(path))
    os.remove(path)
    for k, v in pairs(sd) do assert.is_true(chalk.equal(v, b:state_dict()[k]), k) end
    a:eval(); b:eval()
    local x = chalk.randn(5, 3)
    assert.is_true(chalk.equal(a(x), b(x)))
    sd["2.running_var"] = nil
    assert.has_error(function() make():load_state_dict(sd) end, "load_state_dict: missing key '2.running_var'")
  end)
end)

describe("optim additions", function()
  local function run_steps(make, torch_ctor)
    chalk.manual_seed(21)
    local p = nn.Parameter(chalk.randn(5, 3, { dtype = "f64" }), "p")
    local c = chalk.randn(5, 3, { dtype = "f64" })
    local init = p:detach():clone()
    local opt = make({ p })
    for _ = 1, 10 do
      opt:zero_grad();
      ((c * p * p):sum() + p:sin():sum()):backward()
      opt:step()
    end
    local out = ref.run({ p = init, c = c }, ([[
      p = I["p"].clone().requires_grad_(True)
      opt = %s
      for _ in range(10):
          opt.zero_grad()
          ((I["c"] * p * p).sum() + p.sin().sum()).backward()
          opt.step()
      O["p"] = p]]):format(torch_ctor))
    assert.is_true((p - init):abs():max():item() > 1e-3)
    return ref.maxdiff(p, out.p)
  end

  it("RMSprop matches torch to 1e-6 over 10 steps (plain, centered with momentum and decay)", function()
    assert.is_true(run_steps(function(ps) return optim.RMSprop(ps, { lr = 0.01 }) end, "torch.optim.RMSprop([p], lr=0.01)") < 1e-6)
    assert.is_true(run_steps(function(ps)
      return optim.RMSprop(ps, { lr = 0.02, alpha = 0.9, momentum = 0.5, centered = true, weight_decay = 0.1 })
    end, "torch.optim.RMSprop([p], lr=0.02, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)") < 1e-6)
  end)

  it("StepLR and CosineAnnealingLR follow torch's schedule", function()
    local p = nn.Parameter(chalk.zeros(1))
    local opt = optim.SGD({ p }, { lr = 0.1 })
    local step = optim.lr_scheduler.StepLR(opt, 3, 0.5)
    local seen = {}
    for i = 1, 7 do opt:step(); step:step(); seen[i] = step:get_last_lr()[1] end
    local opt2 = optim.SGD({ p }, { lr = 0.1 })
    local cos = optim.lr_scheduler.CosineAnnealingLR(opt2, 5, 0.01)
    local seen2 = {}
    for i = 1, 5 do opt2:step(); cos:step(); seen2[i] = opt2.param_groups[1].lr end
    local out = ref.run({}, [[
      p = torch.nn.Parameter(torch.zeros(1))
      o = torch.optim.SGD([p], lr=0.1); s = torch.optim.lr_scheduler.StepLR(o, 3, 0.5); a = []
      for _ in range(7):
          o.step(); s.step(); a.append(s.get_last_lr()[0])
      o = torch.optim.SGD([p], lr=0.1); s = torch.optim.lr_scheduler.CosineAnnealingLR(o, 5, 0.01); b = []
      for _ in range(5):
          o.step(); s.step(); b.append(o.param_groups[0]["lr"])
      O["a"] = torch.tensor(a); O["b"] = torch.tensor(b)]])
    assert.is_true(close(chalk.tensor(seen, { dtype = "f64" }), out.a, 1e-12))
    assert.is_true(close(chalk.tensor(seen2, { dtype = "f64" }), out.b, 1e-12))
    assert.has_error(function() optim.lr_scheduler.StepLR(opt, 0) end)
  end)
end)
