-- chalk/help.lua: help(f) and :help NAME: what a public function does, its signature, an example,
-- and for an op its gradient; and the "did you mean" line under a call of a name that is nil.
--
--   local help = require "chalk.help"
--   help(chalk.randn)  help "viz.step"  help "matmul"  help "ops"   -- print the entry
--   help.entry(x) -> entry | nil, candidates    the entry for a name or a function value
--   help.op_info(name) -> {arity=, devices=, backward=, flags=, gradient=} | nil   (the op table)
--   help.suggest(message) -> line | nil          for "attempt to call a nil value (method 'x')"
--
-- Entries cover every function of /work/shared/api.md that exists in this build; a test checks
-- each entry's name resolves (tests/repl/test_help.sh). Names are written as a user reaches
-- them: chalk.f, nn.X, viz.f, x:method (a tensor), model:method, opt:method, prof:method, g:method.
local chalk = require "chalk"

local M = {}

-- { name, signature, description, example [, op = the op-table row it runs] }
local entries = {
  -- making tensors
  { "chalk.tensor", "chalk.tensor(data [, {dtype=, device=, requires_grad=, name=}])",
    "A tensor from a number or nested Lua tables; f32 unless dtype says otherwise.",
    'x = chalk.tensor({{1, 2}, {3, 4}}, {dtype = "f64", requires_grad = true})' },
  { "chalk.zeros", "chalk.zeros(d1, d2, ... [, opts])", "A tensor of zeros of that shape.", "chalk.zeros(2, 3)" },
  { "chalk.ones", "chalk.ones(d1, d2, ... [, opts])", "A tensor of ones of that shape.", "chalk.ones(2, 3)" },
  { "chalk.full", "chalk.full(shape, value [, opts])", "A tensor of one value.", "chalk.full({2, 3}, 7)" },
  { "chalk.eye", "chalk.eye(n [, m] [, opts])", "The identity matrix (n x m).", "chalk.eye(3)" },
  { "chalk.arange", "chalk.arange(start, stop [, step] [, opts])",
    "start, start+step, ... below stop (as torch.arange).", "chalk.arange(0, 10)  --> 0 .. 9" },
  { "chalk.linspace", "chalk.linspace(a, b, n [, opts])", "n evenly spaced values from a to b, both included.",
    "chalk.linspace(0, 1, 5)" },
  { "chalk.rand", "chalk.rand(d1, d2, ... [, opts])", "Uniform samples in [0, 1) (Philox: the same on CPU and GPU).",
    "chalk.manual_seed(0); u = chalk.rand(2, 3)" },
  { "chalk.randn", "chalk.randn(d1, d2, ... [, {dtype=, device=, requires_grad=}])",
    "Standard normal samples N(0, 1), from the seeded Philox stream: the same numbers on CPU and GPU.",
    "chalk.manual_seed(0); x = chalk.randn(2, 3)", op = "randn" },
  { "chalk.randint", "chalk.randint(lo, hi, shape [, opts])", "Integers uniform in [lo, hi) (i64).",
    "chalk.randint(0, 10, {4})" },
  { "chalk.manual_seed", "chalk.manual_seed(n)", "Reseed the random stream: the same draws follow every time.",
    "chalk.manual_seed(42)" },
  { "chalk.rng_state", "chalk.rng_state() --> {seed=, offset=}; chalk.set_rng_state(s)",
    "The random stream's position: save it in a checkpoint, restore it to draw the same numbers.",
    "s = chalk.rng_state(); a = chalk.randn(3); chalk.set_rng_state(s); b = chalk.randn(3)  -- a == b" },
  -- fields and small methods
  { "x.shape", "x.shape --> {d1, d2, ...}", "The sizes, one per dimension (a fresh Lua table).", "chalk.zeros(2, 3).shape  --> {2, 3}" },
  { "x.dtype", 'x.dtype --> "f32"', "The element type: f32, f64, f16, bf16, i32, i64, i8, bool.", 'x:to("f64").dtype' },
  { "x.device", 'x.device --> "cpu"', 'Where the data lives: "cpu" or "cuda".', "x.device" },
  { "x.grad", "x.grad --> tensor | nil", "The gradient backward accumulated into a leaf; nil until one is computed.",
    "loss:backward(); print(w.grad)" },
  { "x.T", "x.T", "The transpose of a matrix, as x:transpose(1, 2): a view, no copy.", "x.T:is_contiguous()  --> false" },
  { "x.requires_grad", "x.requires_grad --> bool",
    "Whether operations on x are recorded for backward (a leaf made with requires_grad = true).",
    'w = chalk.randn(3, {requires_grad = true}); print(w.requires_grad)' },
  { "x.name", 'x.name = "h1"', "A label shown in pictures (viz.graph) and error messages.", 'h.name = "h1"' },
  { "x:numel", "x:numel() --> n", "The number of elements.", "chalk.zeros(2, 3):numel()  --> 6" },
  { "x:dim", "x:dim() --> n", "The number of dimensions.", "chalk.zeros(2, 3):dim()  --> 2" },
  { "x:size", "x:size([d]) --> n | {sizes}", "The size of dimension d (1-based, -1 the last), or all sizes.", "x:size(1)" },
  { "x:stride", "x:stride([d])", "Elements to skip to move one step along each dimension.", "x:transpose(1, 2):stride()" },
  { "x:item", "x:item() --> number", "The value of a one-element tensor as a Lua number.", "loss:item()" },
  { "x:totable", "x:totable() --> nested tables", "The values as nested Lua tables.", "chalk.eye(2):totable()" },
  -- views
  { "x:view", "x:view(d1, d2, ...)", "The same storage seen with another shape (-1 infers one size); needs a contiguous x.",
    "chalk.arange(0, 12):view(3, -1)", op = "view" },
  { "x:reshape", "x:reshape(d1, d2, ...)", "view when the strides allow it, else a copy.", "x:reshape(4, -1)" },
  { "x:transpose", "x:transpose(d1, d2)", "Swap two dimensions; a view (no copy), so usually not contiguous.",
    "x:transpose(1, 2):is_contiguous()  --> false", op = "transpose" },
  { "x:permute", "x:permute(d1, d2, ...)", "Reorder all dimensions; a view.", "x:permute(2, 1, 3)", op = "permute" },
  { "x:narrow", "x:narrow(dim, start, len)", "A slice of len entries along dim from start (1-based); a view.",
    "x:narrow(1, 2, 3)", op = "narrow" },
  { "x:select", "x:select(dim, i)", "Index i along dim, dropping that dimension; a view (x[i] is select(1, i)).",
    "x:select(2, 1)", op = "select" },
  { "x:expand", "x:expand(d1, d2, ...)", "Broadcast size-1 dimensions to larger sizes with stride 0: no copy.",
    "chalk.ones(3, 1):expand(3, 4)", op = "expand" },
  { "x:unsqueeze", "x:unsqueeze(d)", "Insert a size-1 dimension at d.", "x:unsqueeze(1)" },
  { "x:squeeze", "x:squeeze([d])", "Drop size-1 dimensions (or just d).", "x:squeeze(1)" },
  { "x:contiguous", "x:contiguous()", "x itself when its layout is row-major, else a row-major copy.",
    "x:transpose(1, 2):contiguous()", op = "copy" },
  { "x:is_contiguous", "x:is_contiguous() --> bool", "Whether the strides are row-major with no gaps.", "x.T:is_contiguous()" },
  -- math
  { "x:matmul", "x:matmul(y)  (also chalk.matmul(x, y))",
    "Matrix product; batched over leading dimensions, which broadcast.",
    "chalk.randn(2, 3):matmul(chalk.randn(3, 4))  --> 2x4", op = "matmul" },
  { "x:exp", "x:exp()", "e^x elementwise.", "chalk.tensor{0, 1}:exp()", op = "exp" },
  { "x:log", "x:log()", "Natural logarithm elementwise.", "x:log()", op = "log" },
  { "x:sqrt", "x:sqrt()", "Square root elementwise.", "x:sqrt()", op = "sqrt" },
  { "x:abs", "x:abs()", "|x| elementwise.", "x:abs()", op = "abs" },
  { "x:sin", "x:sin()", "sin elementwise.", "x:sin()", op = "sin" },
  { "x:cos", "x:cos()", "cos elementwise.", "x:cos()", op = "cos" },
  { "x:tanh", "x:tanh()", "tanh elementwise.", "x:tanh()", op = "tanh" },
  { "x:sigmoid", "x:sigmoid()", "1 / (1 + e^-x) elementwise.", "x:sigmoid()", op = "sigmoid" },
  { "x:relu", "x:relu()", "max(x, 0) elementwise.", "x:relu()", op = "relu" },
  { "x:gelu", "x:gelu()", "x * Phi(x) (tanh approximation) elementwise.", "x:gelu()", op = "gelu" },
  { "x:pow", "x:pow(p)  (also x ^ p)", "x to the power p elementwise.", "x:pow(2)", op = "pow" },
  { "x:clamp", "x:clamp(lo, hi)", "Limit every value to [lo, hi].", "x:clamp(-1, 1)", op = "clamp" },
  { "x:sum", "x:sum([dim [, keepdim]])", "Sum of all elements, or along dim.", "x:sum(2, true)", op = "sum" },
  { "x:mean", "x:mean([dim [, keepdim]])", "Mean of all elements, or along dim.", "x:mean(1)", op = "mean" },
  { "x:max", "x:max([dim [, keepdim]])", "Largest element, or the largest along dim.", "x:max(2)", op = "max" },
  { "x:min", "x:min([dim [, keepdim]])", "Smallest element, or the smallest along dim.", "x:min(2)", op = "min" },
  { "x:argmax", "x:argmax([dim [, keepdim]])", "Index (1-based) of the largest element along dim.", "logits:argmax(2)",
    op = "argmax" },
  { "x:var", "x:var([dim [, keepdim]])", "Variance (unbiased, as torch).", "x:var(1)", op = "var" },
  { "x:softmax", "x:softmax(dim)", "e^x / sum e^x along dim, computed stably (max subtracted first).",
    "logits:softmax(2)", op = "softmax" },
  { "x:log_softmax", "x:log_softmax(dim)", "log of softmax along dim, stably.", "logits:log_softmax(2)",
    op = "log_softmax" },
  { "x:eq", "x:eq(y)  (also :ne :lt :le :gt :ge)", "Elementwise comparison; a bool tensor.", "x:gt(0)", op = "eq" },
  { "x:lt", "x:lt(y)", "Elementwise x < y; a bool tensor.", "x:lt(0)", op = "lt" },
  { "x:le", "x:le(y)", "Elementwise x <= y; a bool tensor.", "x:le(0)", op = "le" },
  { "x:gt", "x:gt(y)", "Elementwise x > y; a bool tensor.", "x:gt(0)", op = "gt" },
  { "x:ge", "x:ge(y)", "Elementwise x >= y; a bool tensor.", "x:ge(0)", op = "ge" },
  { "chalk.where", "chalk.where(cond, a, b)", "a where cond is true, else b (broadcast).",
    "chalk.where(x:gt(0), x, 0)", op = "where" },
  { "chalk.cat", "chalk.cat({a, b, ...}, dim)", "Join tensors along an existing dimension.", "chalk.cat({a, b}, 1)" },
  { "chalk.stack", "chalk.stack({a, b, ...}, dim)", "Join tensors along a new dimension.", "chalk.stack({a, b}, 1)" },
  { "x:gather", "x:gather(dim, index)", "out[i][j] = x[i][index[i][j]] for dim 2 (1-based indices).",
    "logp:gather(2, y:unsqueeze(2))", op = "gather" },
  { "x:index_select", "x:index_select(dim, index)", "The entries of x at the 1-based indices along dim.",
    "x:index_select(1, chalk.tensor({3, 1}, {dtype = \"i64\"}))", op = "index_select" },
  -- autograd
  { "x:backward", "loss:backward([grad] [, {retain_graph=}])",
    "Reverse-mode sweep from loss: accumulates d loss/d leaf into each leaf's .grad. A scalar seeds 1.",
    "loss = (w * x):sum(); loss:backward(); print(w.grad)" },
  { "x:zero_grad", "x:zero_grad()", "Forget the accumulated .grad of x.", "w:zero_grad()" },
  { "x:detach", "x:detach()", "The same values, cut off from the graph (no gradient flows).", "y = x:detach()" },
  { "x:requires_grad_", "x:requires_grad_([flag])", "Mark a leaf so operations on it are recorded.", "w:requires_grad_(true)" },
  { "chalk.no_grad", "chalk.no_grad(function() ... end)", "Run the function with recording off (no graph, no saved tensors).",
    "chalk.no_grad(function() w = w - 0.1 * w.grad end)" },
  { "chalk.grad", "chalk.grad(out, {a, b, ...} [, {create_graph=}]) --> {da, db, ...}",
    "Gradients of out with respect to the inputs, without touching .grad; with create_graph they are graphs too.",
    "dx = chalk.grad(y, {x}, {create_graph = true})[1]" },
  -- devices
  { "x:to", 'x:to(device | dtype)', 'A copy on another device ("cuda", "cpu") or with another dtype.', 'x:to("cuda")' },
  { "x:cuda", "x:cuda()", 'x:to("cuda").', "x:cuda()" },
  { "x:cpu", "x:cpu()", 'x:to("cpu").', "x:cpu()" },
  { "chalk.cuda.is_available", "chalk.cuda.is_available() --> bool", "Whether a CUDA GPU can be used.",
    "if chalk.cuda.is_available() then x = x:cuda() end" },
  { "chalk.cuda.device_count", "chalk.cuda.device_count() --> n", "The number of CUDA GPUs.", "chalk.cuda.device_count()" },
  { "chalk.cuda.synchronize", "chalk.cuda.synchronize()", "Wait for every queued GPU kernel (do it before reading a clock).",
    "chalk.cuda.synchronize()" },
  -- nn, optim, data
  { "nn.Sequential", "nn.Sequential{ m1, m2, ... }", "Modules applied in order; model[1] is the first.",
    "model = nn.Sequential{ nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10) }" },
  { "nn.Linear", "nn.Linear(in, out [, {bias=}])", "y = x W^T + b, with W out x in (Kaiming-uniform init).",
    "layer = nn.Linear(3, 4); y = layer(chalk.randn(2, 3))" },
  { "nn.ReLU", "nn.ReLU()", "The module form of x:relu().", "nn.ReLU()" },
  { "nn.Tanh", "nn.Tanh()", "The module form of x:tanh().", "nn.Tanh()" },
  { "nn.GELU", "nn.GELU()", "The module form of x:gelu().", "nn.GELU()" },
  { "nn.LayerNorm", "nn.LayerNorm(d)", "Normalize the last dimension to mean 0, variance 1, then scale and shift.",
    "nn.LayerNorm(64)" },
  { "nn.Embedding", "nn.Embedding(n, d)", "A table of n vectors of size d, indexed by 1-based ids.", "nn.Embedding(27, 16)" },
  { "nn.Dropout", "nn.Dropout(p)", "Zero each value with probability p in training (scale the rest by 1/(1-p)).",
    "nn.Dropout(0.1)" },
  { "nn.Conv2d", "nn.Conv2d(cin, cout, k [, {stride=, padding=}])", "2-D convolution over NCHW images.",
    "nn.Conv2d(1, 8, 3, {padding = 1})" },
  { "nn.TransformerBlock", "nn.TransformerBlock(d, heads [, {mlp=4, dropout=0}])",
    "A pre-norm GPT block: x + attn(ln1(x)), then x + mlp(ln2(x)); causal self-attention.",
    "block = nn.TransformerBlock(64, 4); y = block(chalk.randn(1, 16, 64))" },
  { "nn.functional.cross_entropy", "nn.functional.cross_entropy(logits, labels)",
    "Mean of -log softmax(logits)[label]; labels are 1-based class ids (i64).",
    "loss = nn.functional.cross_entropy(model(x), y)", op = "cross_entropy" },
  { "nn.functional.mse_loss", "nn.functional.mse_loss(pred, target)", "Mean of (pred - target)^2.",
    "nn.functional.mse_loss(y_hat, y)", op = "mse_loss" },
  { "nn.functional.nll_loss", "nn.functional.nll_loss(logp, labels)", "Mean of -logp[label] (after log_softmax).",
    "nn.functional.nll_loss(x:log_softmax(2), y)", op = "nll_loss" },
  { "model:parameters", "model:parameters() --> {tensors}", "Every parameter, in order (for an optimizer).",
    "optim.SGD(model:parameters(), {lr = 0.1})" },
  { "model:named_parameters", "for name, p in model:named_parameters() do ... end", 'Parameters with names like "1.weight".',
    "for n, p in model:named_parameters() do print(n, p.shape) end" },
  { "model:to", 'model:to("cuda" | dtype)', "Move or convert every parameter and buffer (build the optimizer after).",
    'model:to("f64")' },
  { "model:train", "model:train()", "Training mode (dropout on).", "model:train()" },
  { "model:eval", "model:eval()", "Evaluation mode (dropout off).", "model:eval()" },
  { "optim.SGD", "optim.SGD(params, {lr=, momentum=, weight_decay=})", "Stochastic gradient descent: p -= lr * grad (with momentum).",
    "opt = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})" },
  { "optim.Adam", "optim.Adam(params, {lr=, betas=, eps=})", "Adam: per-parameter steps from running means of g and g^2.",
    "opt = optim.Adam(model:parameters(), {lr = 1e-3})" },
  { "optim.AdamW", "optim.AdamW(params, {lr=, weight_decay=})", "Adam with decoupled weight decay.",
    "opt = optim.AdamW(model:parameters(), {lr = 1e-3, weight_decay = 0.01})" },
  { "opt:zero_grad", "opt:zero_grad()", "Clear every parameter's .grad before the next backward.", "opt:zero_grad()" },
  { "opt:step", "opt:step()", "Update every parameter from its .grad.", "opt:zero_grad(); loss:backward(); opt:step()" },
  { "data.fashion_mnist", 'data.fashion_mnist("train" | "test") --> X, Y',
    "Fashion-MNIST: X n x 784 f32 in [0, 1], Y labels 1..10 (i64).", 'X, Y = data.fashion_mnist("train")' },
  { "data.loader", "data.loader(X, Y, {batch=, shuffle=})", "Iterate over mini-batches.",
    "for xb, yb in data.loader(X, Y, {batch = 128, shuffle = true}) do ... end" },
  { "data.words", "data.words() --> {words}", "The system word list, lowercase a-z only.", "words = data.words()" },
  -- the PyTorch names (chalk/pytorch.lua, nn_extra.lua, optim_extra.lua; argsort and cumsum are op rows)
  { "x:mm", "x:mm(y)  (also chalk.mm)", "Matrix product of two 2-D tensors [n, k] x [k, m] (matmul with a shape check).",
    "chalk.randn(2, 3):mm(chalk.randn(3, 4))", op = "matmul" },
  { "x:bmm", "x:bmm(y)  (also chalk.bmm)", "Batched matrix product [b, n, k] x [b, k, m].", "a:bmm(b)", op = "matmul" },
  { "chalk.einsum", 'chalk.einsum("ij,jk->ik", a [, b])',
    "Einstein summation over one or two operands: repeated letters take diagonals, missing ones are summed, one batched matmul contracts.",
    'chalk.einsum("bhqd,bhkd->bhqk", q, k)', op = "matmul" },
  { "x:argsort", "x:argsort([dim [, descending]]) --> i64", "The 1-based positions that sort x along dim (stable; NaN last).",
    "chalk.tensor({3, 1, 2}):argsort()  --> {2, 3, 1}", op = "argsort" },
  { "x:sort", "x:sort([dim [, descending]]) --> values, indices", "Sorted values and their 1-based indices (stable), as torch.sort.",
    "v, i = x:sort(2, true)", op = "gather" },
  { "x:topk", "x:topk(k [, dim [, largest]]) --> values, indices", "The k largest (largest=false: smallest) along dim, sorted.",
    "v, i = logits:topk(5)", op = "gather" },
  { "x:cumsum", "x:cumsum(dim)  (also chalk.cumsum)", "Running sum along dim; integers sum into i64.",
    "chalk.tensor({1, 2, 3}):cumsum(1)  --> {1, 3, 6}", op = "cumsum" },
  { "x:logsumexp", "x:logsumexp(dim [, keepdim])", "log(sum(exp(x))) along dim, shifted by the max so it never overflows.",
    "logits:logsumexp(2)" },
  { "x:masked_fill", "x:masked_fill(mask, value)", "x with value where the bool mask is true (broadcast); the gradient flows elsewhere.",
    "scores:masked_fill(mask, -math.huge)", op = "where" },
  { "x:triu", "x:triu([k])", "The upper triangle (entries with col - row >= k) of the last two dims, zeros elsewhere.",
    "chalk.ones(3, 3):triu(1)", op = "where" },
  { "x:tril", "x:tril([k])", "The lower triangle (col - row <= k) of the last two dims.", "chalk.ones(3, 3):tril()", op = "where" },
  { "x:multinomial", "p:multinomial(n [, replacement]) --> i64", "n 1-based class draws per row of probabilities (Philox stream).",
    "chalk.tensor({0.2, 0.8}):multinomial(10, true)" },
  { "x:tolist", "x:tolist() --> nested tables | number", "The values as Lua tables (as x:totable()).", "x:tolist()" },
  { "x:all", "x:all([dim [, keepdim]]) --> bool tensor", "Whether every element (along dim) is non-zero.", "x:gt(0):all():item()" },
  { "x:any", "x:any([dim [, keepdim]]) --> bool tensor", "Whether some element (along dim) is non-zero.", "x:ne(x):any()  -- any NaN?" },
  { "x:allclose", "x:allclose(y [, rtol=1e-5 [, atol=1e-8 [, equal_nan]]]) --> boolean", "|x - y| <= atol + rtol |y| everywhere.",
    "a:allclose(b)" },
  { "chalk.equal", "chalk.equal(x, y) --> boolean", "Same shape and every element equal (x == y on tensors raises: use this or x:eq(y)).",
    "chalk.equal(x, x:clone())  --> true" },
  { "x:norm", "x:norm([p=2 [, dim [, keepdim]]])", "The p-norm (2, 1, math.huge, any p > 0) of all of x or along dims.",
    "w:norm()  w:norm(1, 2)" },
  { "x:repeat", 'x["repeat"](x, r1, r2, ...)  (also x:tile(...))', "Tile x r_d times along each dim (repeat is a Lua keyword).",
    "x:tile(2, 1)" },
  { "x:tile", "x:tile(r1, r2, ...)", "torch's x.repeat: tile x r_d times along each dim.", "chalk.ones(2, 3):tile(2, 2).shape  --> {4, 6}" },
  { "x:split", "x:split(size | {sizes} [, dim=1]) --> {views}", "Views of size elements along dim (the last may be shorter).",
    "a, b = table.unpack(x:split(2))", op = "narrow" },
  { "x:chunk", "x:chunk(n [, dim=1]) --> {views}", "n views of (nearly) equal size along dim.", "q, k, v = table.unpack(qkv:chunk(3, 3))",
    op = "narrow" },
  { "x:flip", "x:flip(dim | {dims})", "x reversed along the dims.", "x:flip(2)", op = "index_select" },
  { "x:add_", "x:add_(y [, alpha])", "x += alpha y in place (bumps x's version: a saved x makes backward fail).", "x:add_(1)" },
  { "x:sub_", "x:sub_(y [, alpha])", "x -= alpha y in place.", "x:sub_(y)" },
  { "x:mul_", "x:mul_(y)", "x *= y in place.", "x:mul_(0.5)" },
  { "x:div_", "x:div_(y)", "x /= y in place.", "x:div_(x:norm())" },
  { "x:exp_", "x:exp_()", "x = exp(x) in place.", "x:exp_()" },
  { "x:clamp_", "x:clamp_(lo, hi)", "Clamp x in place.", "x:clamp_(-1, 1)" },
  { "x:zero_", "x:zero_()", "Fill x with zeros in place.", "w.grad:zero_()" },
  { "x:uniform_", "x:uniform_([a=0 [, b=1]])", "Fill x with uniform samples in [a, b) from the seeded Philox stream.", "w:uniform_(-0.1, 0.1)" },
  { "x:normal_", "x:normal_([mean=0 [, std=1]])", "Fill x with normal samples from the seeded Philox stream.", "w:normal_(0, 0.02)" },
  { "nn.functional.one_hot", "F.one_hot(idx [, num_classes])", "1-based class indices to one-hot rows (i64).",
    "F.one_hot(chalk.tensor({3, 1}, {dtype = \"i64\"}), 4)", op = "one_hot" },
  { "nn.Identity", "nn.Identity()", "Returns its input (a placeholder layer).", "nn.Sequential{nn.Linear(4, 4), nn.Identity()}" },
  { "nn.ModuleList", "nn.ModuleList{m1, m2, ...}", "Registers modules (their parameters are found) without a forward; list:append(m).",
    "for _, m in ipairs(list) do x = m(x) end" },
  { "nn.BatchNorm1d", "nn.BatchNorm1d(C [, {eps=1e-5, momentum=0.1, affine=true}])",
    "Normalizes each of C channels of [N, C] or [N, C, L] by batch statistics (train) or running ones (eval).",
    "bn = nn.BatchNorm1d(64); bn:eval()" },
  { "nn.BatchNorm2d", "nn.BatchNorm2d(C [, opts])", "BatchNorm over [N, C, H, W], statistics per channel.", "nn.BatchNorm2d(16)" },
  { "nn.MSELoss", "nn.MSELoss()", "Mean squared error as a module: loss_fn(pred, target).", "loss = nn.MSELoss()(pred, y)" },
  { "nn.CrossEntropyLoss", "nn.CrossEntropyLoss()", "Cross entropy of logits and 1-based class targets, as a module.",
    "loss = nn.CrossEntropyLoss()(logits, y)" },
  { "model:state_dict", "model:state_dict() --> {path = tensor}", "Parameters and running statistics by path (views sharing storage).",
    'chalk.save(model:state_dict(), "m.chalk")' },
  { "model:load_state_dict", "model:load_state_dict(sd [, strict=true])", "Copy a state dict's values in; missing or unexpected keys are errors.",
    'model:load_state_dict(chalk.load("m.chalk"))' },
  { "optim.RMSprop", "optim.RMSprop(params, {lr=1e-2, alpha=0.99, eps=1e-8, momentum=, centered=, weight_decay=})",
    "Divides the step by a running RMS of the gradient.", "optim.RMSprop(model:parameters(), {lr = 1e-3})" },
  { "optim.lr_scheduler.StepLR", "optim.lr_scheduler.StepLR(opt, step_size [, gamma=0.1])",
    "Multiply the learning rate by gamma every step_size calls of sched:step().", "sched = optim.lr_scheduler.StepLR(opt, 10)" },
  { "optim.lr_scheduler.CosineAnnealingLR", "optim.lr_scheduler.CosineAnnealingLR(opt, T_max [, eta_min=0])",
    "The learning rate follows half a cosine from its start to eta_min over T_max steps.",
    "sched = optim.lr_scheduler.CosineAnnealingLR(opt, 100); sched:step()" },
  -- seeing
  { "viz.graph", "viz.graph(tensor | Graph [, {backward=, file=, format=, collapse=}]) --> path",
    "Draw the autodiff graph that made tensor (with backward=true the backward graph beside it), or a captured Graph.",
    'viz.graph(loss, {backward = true, file = "loss.png"})' },
  { "viz.step", "viz.step(loss [, {file=}])", "Backprop one node at a time: a picture per node, the current one lit.",
    "viz.step(loss)" },
  { "viz.memory", "viz.memory(prof [, {file=}])", "Memory timeline of a profile, stacked by category, the peak marked.",
    "viz.memory(chalk.profile(function() train_step() end))" },
  { "viz.trace", "viz.trace(prof [, {file=}])", "Timeline of the ops of a profile per device and stream.", "viz.trace(prof)" },
  { "chalk.profile", "chalk.profile(fn, ...) --> prof", "Run fn recording every op (time, FLOPs, bytes) and memory event, after a full GC.",
    "prof = chalk.profile(function() loss:backward() end); prof:print{top = 8}" },
  { "prof:print", "prof:print([{top=N}])", "The op table of a profile; top keeps the N ops that took longest.",
    "prof:print{top = 8}" },
  { "prof:export_chrome", "prof:export_chrome(path)", "The profile as a Chrome trace (opens in Perfetto).",
    'prof:export_chrome("step.json")' },
  { "chalk.capture", "chalk.capture(fn) --> Graph", "Record the ops fn runs as a Graph to optimize, plan and replay.",
    "g = chalk.capture(function() y = (x * 2):relu():sum() end)" },
  { "g:optimize", 'g:optimize{"dce", "cse", "fuse", ...}', "Run graph passes; returns what each changed.",
    'g:optimize{"dce", "cse", "fuse"}' },
  { "g:plan_memory", "g:plan_memory() --> plan", "Assign buffers offsets in one arena, reusing dead ones.", "plan = g:plan_memory()" },
  { "g:replay", "g:replay()", "Run the captured graph again (after optimizing).", "g:replay()" },
  { "g:superoptimize", "g:superoptimize{depth=3, budget=200000} --> res",
    "Search programs of up to depth ops equal to the graph's tail (tested mod a prime, then in floats); res.best is the cheapest.",
    "res = g:superoptimize{depth = 3}; print(res.best)" },
  { "sim.systolic", 'sim.systolic(R, C, {dataflow="weight"|"input"|"output"}) --> grid',
    "A cycle-level R x C systolic array: P, st = grid:matmul(A, B) (st.cycles, st.folds, st.utilization); grid:frames(A, B).",
    'grid = sim.systolic(4, 4); P, st = grid:matmul(chalk.randint(0, 5, {6, 4}), chalk.randint(0, 5, {4, 4}))' },
  { "chalk.ops", "chalk.ops() --> list", "Every op of the op table; printed, a table of arity, devices, backward.",
    "print(chalk.ops())" },
  { "chalk.save", "chalk.save(value, path)", "Write a tensor or a table of tensors to a file.", 'chalk.save(model:state_dict(), "w.chalk")' },
  { "chalk.load", "chalk.load(path)", "Read back what chalk.save wrote.", 'w = chalk.load("w.chalk")' },
}

local by_name = {}
for _, e in ipairs(entries) do
  e.name, e.signature, e.description, e.example = e[1], e[2], e[3], e[4]
  by_name[e.name] = e
end
M.entries = entries

-- How a receiver in an entry name is reached, to check the entry exists (a sample object).
local receivers = {
  x = function() return chalk.Tensor end,
  model = function() return rawget(_G, "nn") and nn.Module end,
  opt = function() return rawget(_G, "optim") and optim.Optimizer end,
}

-- The op table's row for an op, as a table of its columns (arity, devices, backward, flags and,
-- the gradient formula and the implementations), as chalk.op_info gives it; nil for a non-op.
function M.op_info(name)
  local ok, info = pcall(chalk.op_info, name)
  if ok and type(info) == "table" then return info end
  return nil
end

-- The gradient formula of an op row (its grad column).
local function gradient_of(info)
  return type(info.grad) == "string" and info.grad ~= "" and info.grad or nil
end

-- Function values (and class tables: nn.Linear) to names, built on first use (help(chalk.randn)).
local reverse
local function function_names()
  if reverse then return reverse end
  reverse = {}
  local function scan(prefix, sep, t)
    if type(t) ~= "table" then return end
    for k, v in pairs(t) do
      if type(k) == "string" and type(v) == "function" then
        local name = prefix .. sep .. k
        if by_name[name] and not reverse[v] then reverse[v] = name end
      end
    end
  end
  for _, e in ipairs(entries) do
    local prefix, sep = e.name:match("^(.-)([.:])[%w_]+$")
    local key = e.name:match("[%w_]+$")
    local ok, owner = pcall(M.resolve_owner, prefix, sep)
    local f = ok and type(owner) == "table" and (rawget(owner, key) or owner[key]) or nil
    if (type(f) == "function" or type(f) == "table") and not reverse[f] then reverse[f] = e.name end
  end
  scan("chalk", ".", chalk)
  return reverse
end

-- The table that holds an entry's function: chalk.cuda for "chalk.cuda", chalk.Tensor for "x".
function M.resolve_owner(prefix, sep)
  if sep == ":" then
    local r = receivers[prefix]
    if r then return r() end
    return nil
  end
  local t = _G
  for part in prefix:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

-- Whether the thing an entry names exists in this build.
function M.exists(e)
  local prefix, sep, key = e.name:match("^(.-)([.:])([%w_]+)$")
  if not prefix then return false end
  if sep == "." and prefix == "x" then -- a tensor field
    local ok, v = pcall(function() return chalk.tensor(1)[key] end)
    return ok and (v ~= nil or key == "grad" or key == "name")
  end
  local owner = M.resolve_owner(prefix, sep)
  if prefix == "prof" then
    local p = chalk.profile(function() end)
    return p[key] ~= nil
  end
  if prefix == "g" then
    local g = chalk.capture(function() return chalk.ones(1) + 1 end)
    return g[key] ~= nil
  end
  return type(owner) == "table" and owner[key] ~= nil
end

-- Edit distance (optimal string alignment: insert, delete, replace, swap two neighbours).
local function distance(a, b)
  if a == b then return 0 end
  local before, prev = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        cur[j] = math.min(cur[j], before[j - 2] + 1) -- two letters swapped: one edit
      end
    end
    before, prev = prev, cur
  end
  return prev[#b]
end
M.distance = distance

-- The names in list nearest to word (at most 3): within an edit distance of a third of its
-- length (at least 1), or containing it / contained in it when both have 4 letters or more.
local function nearest(word, list)
  local best, scored = math.max(1, #word // 3), {}
  local w = word:lower()
  for _, cand in ipairs(list) do
    local c = cand:lower()
    local d = distance(w, c)
    if #w >= 4 and #c >= 4 and (c:find(w, 1, true) or w:find(c, 1, true)) then d = math.min(d, 1) end
    if d <= best then scored[#scored + 1] = { cand, d } end
  end
  table.sort(scored, function(p, q)
    if p[2] ~= q[2] then return p[2] < q[2] end
    return p[1] < q[1]
  end)
  local out, seen = {}, {}
  for _, s in ipairs(scored) do
    if not seen[s[1]] and #out < 3 then
      out[#out + 1] = s[1]
      seen[s[1]] = true
    end
  end
  return out
end
M.nearest = nearest

-- The entry for x: a function value, a full name ("viz.step", "x:matmul"), or a short one
-- ("matmul", "randn", "step"). Returns nil and the nearest names when there is none.
function M.entry(x)
  if type(x) == "function" or type(x) == "table" then
    local name = function_names()[x]
    if name then return by_name[name] end
    return nil, {}
  end
  if type(x) ~= "string" then return nil, {} end
  x = x:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%(%)$", "")
  if by_name[x] then return by_name[x] end
  local short = x:match("[%w_]+$") or x
  local alias = x:gsub("^chalk%.Tensor[.:]", "x:"):gsub("^torch%.", "chalk."):gsub("^F%.", "nn.functional.")
  if by_name[alias] then return by_name[alias] end
  for _, e in ipairs(entries) do -- a short name: prefer tensors' and chalk's own
    if e.name:match("[%w_]+$") == short and (e.name:match("^x[:.]") or e.name:match("^chalk%.")) then return e end
  end
  for _, e in ipairs(entries) do
    if e.name:match("[%w_]+$") == short then return e end
  end
  local names = {}
  for _, e in ipairs(entries) do names[#names + 1] = e.name:match("[%w_]+$") end
  local near, full = nearest(short, names), {}
  for _, n in ipairs(near) do full[#full + 1] = M.entry(n).name end
  return nil, full
end

-- The entry as the lines help prints.
function M.format(e)
  local lines = { e.name .. ": " .. e.description, "  " .. e.signature, "  example: " .. e.example }
  local op = e.op
  if op then
    local info = M.op_info(op)
    if info then
      local grad = gradient_of(info)
      if grad then
        lines[#lines + 1] = "  gradient: " .. grad
      elseif info.backward then
        lines[#lines + 1] = ("  gradient: %s (op %s in chalk.ops())"):format(
          info.backward == "yes" and "defined" or tostring(info.backward), op)
      end
    end
  end
  local others = {}
  local short = e.name:match("[%w_]+$")
  for _, o in ipairs(entries) do
    if o ~= e and o.name:match("[%w_]+$") == short then others[#others + 1] = o.name end
  end
  if #others > 0 then lines[#lines + 1] = "  see also: " .. table.concat(others, ", ") end
  return table.concat(lines, "\n")
end

local function list_all()
  local groups, order = {}, {}
  for _, e in ipairs(entries) do
    local g = e.name:match("^(.-)[.:][%w_]+$")
    if not groups[g] then
      groups[g] = {}
      order[#order + 1] = g
    end
    table.insert(groups[g], e.name:match("[%w_]+$"))
  end
  local lines = { "help NAME (or :help NAME) for one of:" }
  for _, g in ipairs(order) do
    local sep = g:match("^%a+$") and #g <= 5 and (g == "x" or g == "model" or g == "opt" or g == "prof" or g == "g")
      and ":" or "."
    local line = ("  %-15s"):format(g .. sep)
    for _, name in ipairs(groups[g]) do
      if #line + 1 + #name > 98 then
        lines[#lines + 1] = line
        line = (" "):rep(17)
      end
      line = line .. " " .. name
    end
    lines[#lines + 1] = line
  end
  lines[#lines + 1] = "  :help ops lists every op with its devices and gradient"
  return table.concat(lines, "\n")
end

-- help(x): print what x is; help() lists the names; help "ops" prints the op table.
function M.help(...)
  local x = ...
  if x == nil and select("#", ...) > 0 then
    print("help got nil: that name holds nothing (help() lists the names, :help ops the ops)")
    return
  end
  if x == nil or x == "" then
    print(list_all())
    return
  end
  if x == "ops" then
    print(chalk.ops())
    print("help NAME for one op (help \"matmul\"): signature, example, gradient")
    return
  end
  local e, near = M.entry(x)
  if e then
    print(M.format(e))
    return
  end
  local what = type(x) == "string" and ("%q"):format(x) or ("this " .. type(x))
  if type(x) == "string" and M.op_info(x) then
    local info = M.op_info(x)
    print(("%s is an op (arity %s, devices %s, backward %s); it has no help entry yet"):format(
      x, tostring(info.arity), tostring(info.devices), tostring(info.backward)))
  elseif near and #near > 0 then
    print(("no help for %s; did you mean %s?"):format(what, table.concat(near, ", ")))
  else
    print(("no help for %s; help() lists the names, :help ops the ops"):format(what))
  end
end

-- The names a method call on a tensor, module or optimizer could have meant.
local function method_names()
  local names, seen = {}, {}
  local function add(k)
    if type(k) == "string" and not k:match("^_") and not seen[k] then
      seen[k] = true
      names[#names + 1] = k
    end
  end
  for k in pairs(chalk.Tensor or {}) do add(k) end
  local nn_ = rawget(_G, "nn") or chalk.nn
  if nn_ and nn_.Module then for k in pairs(nn_.Module) do add(k) end end
  local optim_ = rawget(_G, "optim") or chalk.optim
  if optim_ and optim_.Optimizer then for k in pairs(optim_.Optimizer) do add(k) end end
  return names
end

local function field_names(owner)
  local t = owner and M.resolve_owner(owner, ".") or _G
  local names = {}
  if type(t) == "table" then
    for k in pairs(t) do
      if type(k) == "string" and not k:match("^_") then names[#names + 1] = k end
    end
  end
  return names
end

-- The line to print under a Lua error "attempt to call a nil value (method 'topk')", or nil.
function M.suggest(message)
  if type(message) ~= "string" then return nil end
  local kind, name = message:match("attempt to call a nil value %((%a+) '([%w_]+)'%)")
  if not kind then return nil end
  local list
  if kind == "method" then
    list = method_names()
  elseif kind == "global" then
    list = field_names(nil)
  else -- a field: of chalk, nn, nn.functional, optim, data or viz; the message does not say which
    list = {}
    for _, owner in ipairs { "chalk", "nn", "nn.functional", "optim", "data", "viz" } do
      for _, k in ipairs(field_names(owner)) do list[#list + 1] = k end
    end
  end
  local near = nearest(name, list)
  local label = kind == "method" and "method" or kind == "global" and "global" or "field"
  if #near > 0 then
    return ("no %s '%s'; did you mean %s?"):format(label, name, table.concat(near, ", "))
  end
  return ("no %s '%s': not in chalk; see :help ops (and help() for the functions)"):format(label, name)
end

return setmetatable(M, { __call = function(_, ...) return M.help(...) end })
