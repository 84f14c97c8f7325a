-- nn_spec.lua: chalk.nn modules: registration and names, init, modes, state dicts, and every
-- layer's forward and backward against PyTorch on the same weights.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local nn = chalk.nn
local F = nn.functional
local ref = require "torch_ref"

local function names(model)
  local list = {}
  for name in model:named_parameters() do list[#list + 1] = name end
  return table.concat(list, " ")
end

-- Runs module m on x, backprops sum(y * w) for a fixed random w, and compares y, dx and every
-- parameter's gradient with torch's module built by `build` (python) from the same weights.
local function compare_with_torch(m, x, build, tol)
  tol = tol or 1e-4
  chalk.manual_seed(123)
  x = x:to("f64"):detach()
  x.requires_grad = true
  m:to("f64")
  local y = m(x)
  local w = chalk.randn(y.shape, { dtype = "f64" })
  ;(y * w):sum():backward()
  local inputs = { x = x, w = w }
  local pnames = {}
  for name, p in m:named_parameters() do
    local key = "p_" .. name:gsub("%.", "__")
    inputs[key] = p
    pnames[#pnames + 1] = name
  end
  local out = ref.run(inputs, build .. [[

params = dict(m.named_parameters())
with torch.no_grad():
    for k, v in I.items():
        if k.startswith("p_"):
            params[k[2:].replace("__", ".")].copy_(v)
x = I["x"].clone().requires_grad_(True)
y = m(x)
(y * I["w"]).sum().backward()
O["y"] = y
O["dx"] = x.grad
for k, p in params.items():
    O["g_" + k.replace(".", "__")] = p.grad
]])
  assert.is_true(ref.maxdiff(y, out.y) < tol, "forward differs from torch by " .. ref.maxdiff(y, out.y))
  assert.is_true(ref.maxdiff(x.grad, out.dx) < tol, "input gradient differs by " .. ref.maxdiff(x.grad, out.dx))
  for _, name in ipairs(pnames) do
    local p = nil
    for n, q in m:named_parameters() do if n == name then p = q end end
    local g = out["g_" .. name:gsub("%.", "__")]
    assert.is_not_nil(g, "torch has no parameter " .. name)
    local d = ref.maxdiff(p.grad, g)
    assert.is_true(d < tol, ("gradient of %s differs from torch by %g"):format(name, d))
  end
end

describe("nn.Module", function()
  it("registers children and parameters in order, named by path", function()
    chalk.manual_seed(0)
    local model = nn.Sequential { nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2) }
    assert.are.equal("1.weight 1.bias 3.weight 3.bias", names(model))
    for name, p in model:named_parameters() do
      assert.are.equal(name, p.name)
      assert.is_true(p.requires_grad)
      assert.is_true(p.is_leaf)
    end
    assert.are.equal(4 * 3 + 3 + 3 * 2 + 2, model:num_parameters())
    assert.are.equal(4, #model:parameters())
    assert.are.equal(3, #model)
    assert.are.equal(model[1], model:children()[1])
  end)

  it("names parameters by their full path in user-defined modules", function()
    local MLP = nn.Module:extend("MLP")
    function MLP:__init(d)
      self.layers = nn.Sequential { nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1) }
      self.norm = nn.LayerNorm(d)
    end
    function MLP:forward(x) return self.layers(self.norm(x)) end
    local m = MLP(5)
    assert.are.equal("layers.1.weight layers.1.bias layers.3.weight layers.3.bias norm.weight norm.bias", names(m))
    assert.are.equal("layers.1.weight", m.layers[1].weight.name)
    assert.are.same({ 7, 1 }, m(chalk.randn(7, 5)).shape)
    local paths = {}
    for path in m:named_modules() do paths[#paths + 1] = path end
    assert.are.equal(",layers,layers.1,layers.2,layers.3,norm", table.concat(paths, ","))
  end)

  it("prints submodules like PyTorch's repr", function()
    local model = nn.Sequential { nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 10) }
    assert.are.equal([[
Sequential(
  (1): Linear(in_features=784, out_features=256, bias=true)
  (2): ReLU()
  (3): Dropout(p=0.1)
  (4): Linear(in_features=256, out_features=10, bias=true)
)]], tostring(model))
    local nested = nn.Sequential { nn.Sequential { nn.Conv2d(1, 4, 3, { padding = 1 }) }, nn.Flatten() }
    assert.are.equal([[
Sequential(
  (1): Sequential(
    (1): Conv2d(1, 4, kernel_size=3, stride=1, padding=1)
  )
  (2): Flatten()
)]], tostring(nested))
  end)

  it("tags parameters in the memory log", function()
    local before = chalk.memory_stats().cpu.parameter or 0
    local lin = nn.Linear(100, 50)
    local after = chalk.memory_stats().cpu.parameter
    assert.are.equal((100 * 50 + 50) * 4, after - before)
    lin = nil
  end)

  it("refuses a plain tensor assigned over a parameter", function()
    local lin = nn.Linear(2, 2)
    assert.has_error(function() lin.weight = chalk.zeros(2, 2) end)
    lin.weight = nn.Parameter(chalk.zeros(2, 2))
    assert.are.equal(0, lin.weight:abs():sum():item())
    assert.are.equal("weight bias", names(lin))
  end)

  it("switches train and eval recursively", function()
    local model = nn.Sequential { nn.Linear(2, 2), nn.Dropout(0.5) }
    assert.is_true(model[2].training)
    model:eval()
    assert.is_false(model.training)
    assert.is_false(model[2].training)
    model:train()
    assert.is_true(model[2].training)
  end)

  it("initialises identically from the same seed", function()
    chalk.manual_seed(7)
    local a = nn.Linear(6, 4)
    chalk.manual_seed(7)
    local b = nn.Linear(6, 4)
    assert.are.equal(0, (a.weight - b.weight):abs():max():item())
    assert.are.equal(0, (a.bias - b.bias):abs():max():item())
    local c = nn.Linear(6, 4)
    assert.is_true((a.weight - c.weight):abs():max():item() > 0)
  end)

  it("draws Linear weights within PyTorch's bound 1/sqrt(in)", function()
    chalk.manual_seed(1)
    local lin = nn.Linear(400, 300)
    local bound = 1 / math.sqrt(400)
    assert.is_true(lin.weight:abs():max():item() <= bound)
    -- uniform on [-b, b] has variance b^2/3
    local var = lin.weight:var():item()
    assert.is_true(math.abs(var - bound * bound / 3) < 0.05 * bound * bound / 3, "variance " .. var)
  end)

  it("has Kaiming and Xavier initialisers with the textbook variances", function()
    chalk.manual_seed(2)
    local w = chalk.zeros(512, 256)
    nn.init.kaiming_normal_(w)
    local std = w:var():sqrt():item()
    assert.is_true(math.abs(std - math.sqrt(2 / 256)) < 0.02 * math.sqrt(2 / 256), "kaiming std " .. std)
    nn.init.xavier_uniform_(w)
    local bound = math.sqrt(6 / (256 + 512))
    assert.is_true(w:abs():max():item() <= bound)
    assert.is_true(math.abs(w:var():item() - bound * bound / 3) < 0.05 * bound * bound / 3)
    nn.init.kaiming_uniform_(w, { nonlinearity = "tanh" })
    assert.is_true(w:abs():max():item() <= 5 / 3 * math.sqrt(3 / 256))
  end)

  it("moves to another dtype keeping names, tags and leaves", function()
    local model = nn.Sequential { nn.Linear(3, 2) }
    model:to("f64")
    assert.are.equal("f64", model[1].weight.dtype)
    assert.are.equal("1.weight", model[1].weight.name)
    assert.is_true(model[1].weight.requires_grad and model[1].weight.is_leaf)
    assert.are.equal("f64", model(chalk.randn(4, 3, { dtype = "f64" })).dtype)
  end)

  it("round-trips a state dict and checks its keys and shapes", function()
    chalk.manual_seed(3)
    local a = nn.Sequential { nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2) }
    local b = nn.Sequential { nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2) }
    local x = chalk.randn(5, 3)
    assert.is_true((a(x) - b(x)):abs():max():item() > 0)
    b:load_state_dict(a:state_dict())
    assert.are.equal(0, (a(x) - b(x)):abs():max():item())
    local sd = a:state_dict()
    sd["3.bias"] = nil
    assert.has_error(function() b:load_state_dict(sd) end, nil)
    sd = a:state_dict()
    sd["1.weight"] = chalk.zeros(2, 2)
    local ok, err = pcall(b.load_state_dict, b, sd)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("1.weight", 1, true))
  end)

  it("zero_grad forgets gradients", function()
    local lin = nn.Linear(2, 1)
    lin(chalk.ones(1, 2)):sum():backward()
    assert.is_not_nil(lin.weight.grad)
    lin:zero_grad()
    assert.is_nil(lin.weight.grad)
  end)
end)

describe("nn layers against torch", function()
  it("Linear", function()
    chalk.manual_seed(10)
    compare_with_torch(nn.Linear(5, 3), chalk.randn(4, 5), "m = torch.nn.Linear(5, 3)")
  end)

  it("Linear without bias on a 3-d input", function()
    compare_with_torch(nn.Linear(5, 3, { bias = false }), chalk.randn(2, 4, 5),
      "m = torch.nn.Linear(5, 3, bias=False)")
  end)

  it("a Sequential MLP with ReLU, GELU, Tanh, Sigmoid", function()
    local m = nn.Sequential { nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 5), nn.Tanh(),
      nn.Linear(5, 4), nn.Sigmoid() }
    compare_with_torch(m, chalk.randn(3, 6), [[
m = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.GELU(),
    torch.nn.Linear(8, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4), torch.nn.Sigmoid())
# chalk names children 1..n, torch 0..n-1
m = torch.nn.Sequential(torch.nn.Identity(), *m)]])
  end)

  it("LayerNorm", function()
    local m = nn.LayerNorm(6)
    chalk.no_grad(function()
      m.weight:copy_(chalk.randn(6))
      m.bias:copy_(chalk.randn(6))
    end)
    compare_with_torch(m, chalk.randn(2, 3, 6), "m = torch.nn.LayerNorm(6)")
  end)

  it("Embedding with 1-based indices", function()
    chalk.manual_seed(4)
    local m = nn.Embedding(7, 3)
    m:to("f64")
    local idx = chalk.tensor({ { 1, 7, 3 }, { 3, 3, 2 } }, { dtype = "i64" })
    local y = m(idx)
    local w = chalk.randn(y.shape, { dtype = "f64" })
    ;(y * w):sum():backward()
    local out = ref.run({ weight = m.weight, idx = idx, w = w }, [[
m = torch.nn.Embedding(7, 3)
with torch.no_grad(): m.weight.copy_(I["weight"])
y = m(I["idx"] - 1)
(y * I["w"]).sum().backward()
O["y"] = y; O["g"] = m.weight.grad]])
    assert.is_true(ref.maxdiff(y, out.y) < 1e-12)
    assert.is_true(ref.maxdiff(m.weight.grad, out.g) < 1e-12)
  end)

  it("Conv2d with stride and padding, then MaxPool2d and Flatten", function()
    chalk.manual_seed(5)
    local m = nn.Sequential { nn.Conv2d(2, 3, 3, { stride = 1, padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(3, 2, 2, { stride = 2 }), nn.Flatten() }
    compare_with_torch(m, chalk.randn(2, 2, 8, 8), [[
m = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Conv2d(2, 3, 3, stride=1, padding=1), torch.nn.ReLU(),
    torch.nn.MaxPool2d(2), torch.nn.Conv2d(3, 2, 2, stride=2), torch.nn.Flatten())]])
  end)

  it("a causal Transformer block matches a hand-written torch block", function()
    chalk.manual_seed(6)
    local m = nn.TransformerBlock(8, 2)
    chalk.no_grad(function()
      for _, ln in ipairs { m.ln1, m.ln2 } do
        ln.weight:copy_(chalk.randn(8) * 0.5 + 1)
        ln.bias:copy_(chalk.randn(8) * 0.1)
      end
    end)
    compare_with_torch(m, chalk.randn(2, 5, 8), [[
import math
class Attn(torch.nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h = h; s.qkv = torch.nn.Linear(d, 3 * d); s.proj = torch.nn.Linear(d, d)
    def forward(s, x):
        B, T, d = x.shape; h = s.h; dh = d // h
        q, k, v = s.qkv(x).split(d, dim=2)
        q, k, v = [t.reshape(B, T, h, dh).transpose(1, 2) for t in (q, k, v)]
        att = q @ k.transpose(2, 3) / math.sqrt(dh)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        return s.proj((att @ v).transpose(1, 2).reshape(B, T, d))
class Block(torch.nn.Module):
    def __init__(s, d, h):
        super().__init__()
        s.ln1 = torch.nn.LayerNorm(d); s.attn = Attn(d, h); s.ln2 = torch.nn.LayerNorm(d)
        s.mlp = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))
    def forward(s, x):
        x = x + s.attn(s.ln1(x))
        return x + s.mlp(s.ln2(x))
m = Block(8, 2)]], 1e-8)
  end)

  it("the Transformer block is causal: the future does not change the past", function()
    chalk.manual_seed(8)
    local m = nn.TransformerBlock(8, 2)
    local x = chalk.randn(1, 6, 8)
    local y1 = m(x)
    local x2 = x:clone()
    chalk.no_grad(function() x2[1][5] = chalk.randn(8) end) -- change position 5
    local y2 = m(x2)
    local d = (y1 - y2):abs():sum(3) -- [1,6]
    for t = 1, 4 do assert.are.equal(0, d[1][t]:item(), "position " .. t .. " saw the future") end
    assert.is_true(d[1][5]:item() > 0 and d[1][6]:item() > 0)
  end)
end)

describe("Dropout", function()
  it("zeroes about p of the inputs in training and scales the rest by 1/(1-p)", function()
    chalk.manual_seed(9)
    local d = nn.Dropout(0.25)
    local y = d(chalk.ones(200, 100))
    local zeros = y:eq(0):to("f32"):sum():item()
    assert.is_true(math.abs(zeros / 20000 - 0.25) < 0.02, "dropped fraction " .. zeros / 20000)
    local kept = y:max():item()
    assert.is_true(math.abs(kept - 1 / 0.75) < 1e-6)
  end)

  it("is the identity in eval mode", function()
    local d = nn.Dropout(0.5)
    d:eval()
    local x = chalk.randn(10, 10)
    assert.are.equal(0, (d(x) - x):abs():max():item())
  end)
end)

describe("nn.functional", function()
  it("losses and activations match torch", function()
    chalk.manual_seed(11)
    local logits = chalk.randn(6, 4, { dtype = "f64" })
    local target = chalk.tensor({ 1, 4, 2, 2, 3, 4 }, { dtype = "i64" })
    local a, b = chalk.randn(3, 5, { dtype = "f64" }), chalk.randn(3, 5, { dtype = "f64" })
    local out = ref.run({ logits = logits, target = target, a = a, b = b }, [[
F = torch.nn.functional
t = I["target"] - 1
O["ce"] = F.cross_entropy(I["logits"], t)
O["nll"] = F.nll_loss(F.log_softmax(I["logits"], -1), t)
O["mse"] = F.mse_loss(I["a"], I["b"])
O["softmax"] = F.softmax(I["a"], -1)
O["log_softmax"] = F.log_softmax(I["a"], 1)
O["gelu"] = F.gelu(I["a"])
O["relu"] = F.relu(I["a"])
O["ln"] = F.layer_norm(I["a"], (5,), None, None, 1e-5)
O["lin"] = F.linear(I["a"], I["b"], I["b"][:, 0])]])
    assert.is_true(ref.maxdiff(F.cross_entropy(logits, target), out.ce) < 1e-12)
    assert.is_true(ref.maxdiff(F.nll_loss(F.log_softmax(logits, -1), target), out.nll) < 1e-12)
    assert.is_true(ref.maxdiff(F.mse_loss(a, b), out.mse) < 1e-12)
    assert.is_true(ref.maxdiff(F.softmax(a, -1), out.softmax) < 1e-12)
    assert.is_true(ref.maxdiff(F.log_softmax(a, 2), out.log_softmax) < 1e-12)
    assert.is_true(ref.maxdiff(F.gelu(a), out.gelu) < 1e-12)
    assert.is_true(ref.maxdiff(F.relu(a), out.relu) < 1e-12)
    assert.is_true(ref.maxdiff(F.layer_norm(a, 5), out.ln) < 1e-10)
    assert.is_true(ref.maxdiff(F.linear(a, b, b:select(2, 1)), out.lin) < 1e-12)
  end)

  it("dropout with p=0 or training=false returns the values unchanged", function()
    local x = chalk.randn(4, 4)
    assert.are.equal(0, (F.dropout(x, 0.5, false) - x):abs():max():item())
    assert.are.equal(0, (F.dropout(x, 0) - x):abs():max():item())
  end)
end)
