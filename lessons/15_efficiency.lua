-- 15_efficiency.lua: module 15, model efficiency on the Fashion-MNIST MLP of lesson 3 and the char
-- GPT of lesson 13: quantization (int8, q8, q4 with the dequantizing matmul), magnitude pruning
-- (per tensor and 2:4), distillation, LoRA and QLoRA, and a mixture of experts with a top-k router,
-- capacity and dropped tokens.
-- Numbers to reproduce (lessons.md row 15): round-trip error <= d/2 on every element, scale 127/max|w|,
-- model bytes = params x bits / 8 measured, accuracy and perplexity per format, quantized vs f32
-- matmul at batch 1 and 256; accuracy against sparsity; the distilled student beats the
-- same student on labels alone; LoRA trainable r(d+k) against dk, merged output = unmerged; capacity =
-- ceil(k x tokens / E x factor) and the drops at factors 1.0, 1.25, 2.0; aux loss 1 at a uniform router.
return {
  title = "Model efficiency: quantization, pruning, distillation, LoRA, mixture of experts",
  module = 15,
  timing = { "wall", " s$", " ms ", "its time: " },
  setup = [[
    eff = chalk.efficiency
    prune, distill, chart, quant = eff.prune, eff.distill, require "chalk.chart", chalk.quant
    F = nn.functional
    -- acc(m [, Xs, Ys]): test accuracy of a classifier (the test images by default)
    function acc(m, Xs, Ys) return distill.accuracy(m, Xs or Xt, Ys or Yt) end
    -- fit(model, params, Xs, Ys, steps [, after, lr]): Adam on shuffled batches of 128; after()
    -- runs after each optimizer step (pruning re-applies its masks there)
    function fit(model, params, Xs, Ys, steps, after, lr)
      local opt, n = optim.Adam(params, {lr = lr or 1e-3}), 0
      while n < steps do
        for xb, yb in data.loader(Xs, Ys, {batch = 128, shuffle = true}) do
          opt:zero_grad()
          F.cross_entropy(model(xb), yb):backward()
          opt:step()
          if after then after() end
          n = n + 1
          if n == steps then break end
        end
      end
      return opt
    end
    -- shift_right(x, s): images (rows of 784) moved s pixels to the right, zeros coming in
    function shift_right(x, s)
      local N = x.shape[1]
      local im = x:reshape(N, 28, 28)
      return chalk.cat({chalk.zeros(N, 28, s), im:narrow(3, 1, 28 - s)}, 3):reshape(N, 784)
    end
    -- trained_mlp(): a fresh 784-256-10 MLP holding the weights trained in step 1
    function trained_mlp()
      local m = nn.Sequential{ nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10) }
      return m:load_state_dict(mlp_state)
    end]],
  steps = {
    {
      title = "Two models to make smaller",
      text = [[
        The MLP of lesson 3 (784-256-10), trained here for two epochs of Fashion-MNIST (a few
        seconds), and the character GPT of lesson 13 (trained once, cached in the output folder).
        Every technique below is measured on them, in this run.]],
      code = [[
        X, Y = data.fashion_mnist("train")
        Xt, Yt = data.fashion_mnist("test")
        chalk.manual_seed(0)
        mlp = nn.Sequential{ nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10) }
        fit(mlp, mlp:parameters(), X, Y, 2 * 469)
        mlp_state = {}
        for k, v in pairs(mlp:state_dict()) do mlp_state[k] = v:clone() end
        base_acc = acc(mlp)
        print(("MLP: %d parameters, test accuracy %.2f%%"):format(mlp:num_parameters(),
          100 * base_acc))
        lm = nn.CharGPT.pretrained()
        print(("char GPT: %d parameters, validation loss %.3f nats/char"):format(
          lm:num_parameters(), lm.report.val_loss))]],
    },
    {
      title = "Quantized weights: int8 and 4-bit blocks",
      text = [[
        A quantized weight is a small integer code times a step d = max|w| / L of its group:
        int8 (L = 127) per tensor or per output row; q8 and q4 (L = 7) per block of 32 weights
        of a row with an f16 step, as llama.cpp's Q8_0 and Q4_0: 8.5 and 4.5 bits per weight.
        Rounding to the nearest level errs by at most d/2, checked on every element of the
        MLP's first layer (784 = 24.5 blocks: each row's last block is padded).]],
      code = [[
        w1 = mlp["1"].weight
        print(quant.quantize(w1, "q4"))
        print("format       bits/w     bytes  max |w - code d|  largest d/2  over the bound")
        for _, f in ipairs {"int8", "int8_channel", "q8", "q4"} do
          local st = quant.check(w1, f)
          print(("%-12s %6.3f %9d %17.3e %12.3e %14d"):format(f, st.bits, st.bytes, st.max_err,
            st.max_bound, st.violations))
        end
        amax = w1:abs():max():item()
        print(("int8 scale: measured %.4f, law 127 / max|w| = 127 / %.5f = %.4f"):format(
          quant.check(w1, "int8").scale, amax, 127 / amax))
        quant.histogram(w1, "q4", {block = {1, 12}, file = "15_q4_histogram.png"})]],
    },
    {
      title = "Accuracy and perplexity against bits",
      text = [[
        quant.quantize_model swaps every Linear for a quantized one (embeddings stay f32). Weight
        bytes from the allocator (live parameter bytes after the swap - before + the f32 weights
        let go) against the law params x bits / 8; MLP accuracy and char GPT perplexity (exp of the loss).]],
      setup = [[
        _, va = nn.CharGPT.streams()      -- the validation words, as lm:loss_on reads them
        ppl32 = math.exp(lm:loss_on(va, 8))]],
      code = [[
        err_pts, ppl_pts = {{bits = 32, value = 100 - 100 * base_acc}}, {{bits = 32, value = ppl32}}
        print("format       GPT weight bytes  params x bits/8  MLP accuracy  GPT perplexity")
        print(("%-12s %46.2f%% %15.3f"):format("f32", 100 * base_acc, ppl32))
        for _, f in ipairs {"q8", "int8_channel", "int8", "q4"} do
          local m = quant.quantize_model(trained_mlp(), f)
          local g, r = quant.quantize_model(nn.CharGPT.pretrained(), f)
          local a, p, bits = 100 * acc(m), math.exp(g:loss_on(va, 8)), quant.format[f].bits
          if f ~= "int8_channel" then -- (drawn over int8's point at 8 bits)
            err_pts[#err_pts + 1] = {bits = bits, value = 100 - a, label = f}
            ppl_pts[#ppl_pts + 1] = {bits = bits, value = p, label = f}
          end
          print(("%-12s %16d %16d %12.2f%% %15.3f"):format(f, r.bytes_after - r.bytes_before
            + r.f32_bytes, r.expected_qbytes, a, p))
        end
        quant.bits_chart(err_pts, {ylabel = "MLP test error (%)", ymin = 0, file = "15_bits_error.png"})
        quant.bits_chart(ppl_pts, {ylabel = "char GPT perplexity", file = "15_bits_perplexity.png"})]],
    },
    {
      title = "The dequantizing matmul: fewer bytes, more work",
      text = [[
        qmatmul (an op of the table) multiplies f32 activations by a quantized weight, unpacking
        codes as it goes; the f32 weight is never made. At batch 1 a matmul reads all of W for 2
        FLOPs per weight: bytes decide, and 4.5 bits instead of 32 can win. At batch 256 FLOPs
        decide and unpacking is extra work. Measured on this CPU (times on a shared machine are
        noisy, the median of 15 runs; the bytes are exact):]],
      code = [[
        mt = quant.matmul_table{n = 1024, k = 1024, batches = {1, 256}, formats = {"q4"}, reps = 15}
        print((tostring(mt):match("^[^\n]*\n[^\n]*\n[^\n]*\n[^\n]*\n[^\n]*\n[^\n]*")))
        for i = 2, #mt, 2 do
          local r, f32 = mt[i], mt[i - 1]
          print(("batch %d, q4: %.2fx the bytes of f32, %.2fx its time: %s"):format(r.batch,
            r.bytes / f32.bytes, r.ms / f32.ms, r.ms < f32.ms and "the bytes win"
            or "unpacking costs more than the bytes saved"))
        end]],
    },
    {
      title = "Magnitude pruning: accuracy against sparsity",
      text = [[
        Unstructured pruning zeroes the smallest |w| of each weight matrix (biases stay): accuracy
        falls as sparsity grows. 100 Adam steps of fine-tuning win most of it back; after each
        step the Pruner multiplies by the same masks, so a pruned weight stays exactly 0.]],
      code = [[
        chalk.manual_seed(1)
        levels, pruned, tuned = {0, 50, 70, 80, 90, 95}, {}, {}
        print("sparsity   zeros   pruned   +100 steps   largest pruned |w|")
        for i, s in ipairs(levels) do
          local m = trained_mlp()
          local pr = prune.Pruner(m, {sparsity = s / 100})
          pruned[i] = 100 * acc(m)
          fit(m, m:parameters(), X, Y, 100, function() pr:apply() end)
          tuned[i] = 100 * acc(m)
          print(("%7d%% %7.3f %7.2f%% %10.2f%% %12g"):format(s, pr:sparsity(), pruned[i],
            tuned[i], pr:max_pruned()))
        end
        chart.line({{name = "pruned", x = levels, y = pruned},
          {name = "pruned, then 100 steps with the masks kept", x = levels, y = tuned}},
          {title = "MLP test accuracy against sparsity", xlabel = "sparsity (%)",
           ylabel = "accuracy (%)", points = true, file = "15_sparsity.png"})]],
    },
    {
      title = "2:4 structured sparsity",
      text = [[
        Unstructured zeros save little time: the hardware still loads the dense matrix. 2:4
        sparsity keeps the 2 largest of every 4 consecutive weights in a row; NVIDIA's sparse
        tensor cores skip the zeros and store 2 values plus 2-bit indices: half the weights.
        The same 100 steps of fine-tuning, masks kept.]],
      code = [[
        m24 = trained_mlp()
        w = m24["1"].weight
        function show(t) return ("%6.3f "):rep(#t):format(table.unpack(t)) end
        print("row 1, weights 301-308 before: " .. show(w[1]:narrow(1, 301, 8):totable()))
        pr24 = prune.Pruner(m24, {pattern = "2:4"})
        print("row 1, weights 301-308 after:  " .. show(w[1]:narrow(1, 301, 8):totable()))
        before24 = 100 * acc(m24)
        fit(m24, m24:parameters(), X, Y, 100, function() pr24:apply() end)
        nonzero = w:reshape(-1, 4):ne(0):to("i64"):sum(2):max():item()
        print(("2:4: sparsity %.3f, accuracy %.2f%% pruned, %.2f%% after 100 steps"):format(
          pr24:sparsity(), before24, 100 * acc(m24)))
        print(("most nonzeros in a group of 4 after fine-tuning: %d"):format(nonzero))]],
    },
    {
      title = "Distillation: a student taught by a teacher",
      text = [[
        A student MLP of 32 hidden units learns from only 300 labelled images. Alone, it fits
        their labels. Distilled, it also matches the teacher's outputs softened by a
        temperature T: loss = a T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - a) CE(s, y).
        The soft targets say which wrong classes are almost right. Same seed, same batches,
        same 600 steps.]],
      code = [[
        Xs, Ys = X:narrow(1, 1, 300), Y:narrow(1, 1, 300)
        function student()
          chalk.manual_seed(5)
          return nn.Sequential{ nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10) }
        end
        alone, taught = student(), student()
        distill.train(alone, Xs, Ys, {steps = 600, lr = 3e-3, seed = 3})
        distill.train(taught, Xs, Ys, {steps = 600, lr = 3e-3, seed = 3, teacher = mlp,
          temperature = 4, alpha = 0.9})
        alone_acc, taught_acc = 100 * acc(alone), 100 * acc(taught)
        print(("teacher (784-256-10, 60000 images):  %.2f%%"):format(100 * base_acc))
        print(("student on labels alone:             %.2f%%"):format(alone_acc))
        print(("student distilled (T = 4, a = 0.9):  %.2f%%"):format(taught_acc))]],
      check = function() assert(taught_acc > alone_acc, "the distilled student should win") end,
    },
    {
      title = "LoRA: a frozen layer and a thin side path",
      text = [[
        nn.LoRA(linear, {r = 8, alpha = 16}) freezes W (d x k) and adds (alpha/r) B A x, with A
        (r x k) random and B (d x r) zero: at first the output is the base's exactly. Only A and
        B train: r(d + k) values instead of dk. nn.LoRA.wrap wraps chosen layers and freezes the
        rest; the counts come from parameters().]],
      code = [[
        lora_mlp = trained_mlp()
        xb = Xt:narrow(1, 1, 256)
        y_base = chalk.no_grad(function() return lora_mlp(xb) end)
        nn.LoRA.wrap(lora_mlp, {"1", "3"}, {r = 8, alpha = 16})
        for _, l in ipairs(nn.LoRA.modules(lora_mlp)) do
          local d, k, r = l.out_features, l.in_features, l.r
          print(("LoRA %dx%d: A %dx%d + B %dx%d = %d = r(d+k); W = %d = dk"):format(d, k, r, k, d, r,
            l.A:numel() + l.B:numel(), d * k))
        end
        trainable, n_train = nn.LoRA.trainable(lora_mlp)
        print(("trainable %d of %d parameters (%.1f%%)"):format(n_train, lora_mlp:num_parameters(),
          100 * n_train / lora_mlp:num_parameters()))
        init_diff = (lora_mlp(xb) - y_base):abs():max():item()
        print(("initial output - base output: max %g"):format(init_diff))]],
    },
    {
      title = "Gradients reach A and B only",
      text = [[
        One backward through the wrapped MLP: the frozen weights and biases get no gradient.
        At the start B = 0, so A's gradient B^T g x^T is zero too; B's is not. The graph of layer
        3 shows the side path, h through A (8 wide) then B, beside the frozen W (no grad line).]],
      code = [[
        F.cross_entropy(lora_mlp(xb), Yt:narrow(1, 1, 256)):backward()
        for name, p in lora_mlp:named_parameters() do
          print(("%-14s %-8s %s"):format(name, table.concat(p.shape, "x"),
            p.grad and ("gradient, |g| sum %.4g"):format(p.grad:abs():sum():item()) or "no gradient"))
        end
        lora_mlp:zero_grad()
        h = chalk.randn(4, 256)
        h.requires_grad, h.name = true, "h (from layer 1)"
        viz.graph(lora_mlp["3"](h), {file = "15_lora_graph.png"})]],
    },
    {
      title = "LoRA fine-tuning on a shifted task",
      text = [[
        The shifted task: the same clothes moved 3 pixels to the right (shift_right in the
        setup), as if the camera moved. The MLP was never trained to be translation invariant.
        LoRA (r = 8 on both layers, lr 1e-2) and full fine-tuning (lr 1e-3) both train 300 steps
        on 10,000 shifted images.]],
      code = [[
        chalk.manual_seed(2)
        Xn, Yn, Xtn = shift_right(X:narrow(1, 1, 10000), 3), Y:narrow(1, 1, 10000), shift_right(Xt, 3)
        print(("trained MLP on shifted images:  %.2f%%"):format(100 * acc(mlp, Xtn, Yt)))
        lora_mlp = nn.LoRA.wrap(trained_mlp(), {"1", "3"}, {r = 8, alpha = 16})
        fit(lora_mlp, (nn.LoRA.trainable(lora_mlp)), Xn, Yn, 300, nil, 1e-2)
        full = trained_mlp()
        fit(full, full:parameters(), Xn, Yn, 300)
        lora_acc, full_acc = 100 * acc(lora_mlp, Xtn, Yt), 100 * acc(full, Xtn, Yt)
        print(("LoRA r = 8 (%6d trained):     %.2f%%"):format(n_train, lora_acc))
        print(("full fine-tuning (%d):     %.2f%%"):format(full:num_parameters(), full_acc))]],
    },
    {
      title = "Merging the adapters",
      text = [[
        For serving, lora:merge() folds the side path into the weight, W <- W + (alpha/r) B A:
        one matmul per layer again, no extra latency; lora:unmerge() takes it back out. The
        outputs agree to rounding: in f32 to about 1e-6 of the logits' size, and in f64 (the
        same model, model:to("f64")) to far under 1e-6.]],
      code = [[
        function merged_diff(m, x)
          local side = chalk.no_grad(function() return m(x) end)
          for _, l in ipairs(nn.LoRA.modules(m)) do l:merge() end
          local merged = chalk.no_grad(function() return m(x) end)
          for _, l in ipairs(nn.LoRA.modules(m)) do l:unmerge() end
          return (merged - side):abs():max():item(), side:abs():max():item()
        end
        d32, size = merged_diff(lora_mlp, Xtn)
        print(("f32: merged - unmerged, 10000 images: max %.2g (logits up to %.1f)"):format(d32, size))
        d64 = merged_diff(lora_mlp:to("f64"), Xtn:to("f64"))
        print(("f64: merged - unmerged, 10000 images: max %.2g (law: within 1e-6)"):format(d64))
        lora_mlp:to("f32")]],
      check = function() assert(d64 <= 1e-6, "merged output should equal unmerged") end,
    },
    {
      title = "QLoRA: the frozen base in 4 bits",
      text = [[
        QLoRA keeps the frozen base in the 4-bit layout (nn.LoRA(linear, {quant = "q4"}) makes
        the base a quant.Linear) and trains f32 adapters through the dequantizing matmul: the
        gradient reaches x through qmatmul, never W. The same shifted task, the same 300 steps.]],
      code = [[
        chalk.manual_seed(2)
        qlora_mlp = nn.LoRA.wrap(trained_mlp(), {"1", "3"}, {r = 8, alpha = 16, quant = "q4"})
        print("layer 1's frozen W: " .. tostring(qlora_mlp["1"].base.qweight))
        fit(qlora_mlp, (nn.LoRA.trainable(qlora_mlp)), Xn, Yn, 300, nil, 1e-2)
        qlora_acc = 100 * acc(qlora_mlp, Xtn, Yt)
        print(("QLoRA r = 8 on a q4 base:  %.2f%% (LoRA on the f32 base: %.2f%%)"):format(qlora_acc,
          lora_acc))]],
    },
    {
      title = "Fine-tuning memory, from the allocator",
      text = [[
        What training holds besides activations: parameters, gradients and Adam's two moments.
        Full fine-tuning keeps a gradient and two moments for all 203,530 values; LoRA only for A
        and B; QLoRA also stores the frozen W in 4.6 bits instead of 32. Each line is measured
        from chalk.memory_stats() around building the model, its optimizer, and one step.]],
      setup = [[
        function finetune_memory(make)
          collectgarbage(); collectgarbage()
          local before = chalk.memory_stats().cpu
          local model, params = make()
          local opt = optim.Adam(params, {lr = 1e-3})
          opt:zero_grad()
          F.cross_entropy(model(xb), Yt:narrow(1, 1, 256)):backward()
          opt:step()
          collectgarbage(); collectgarbage()
          local after, out = chalk.memory_stats().cpu, {}
          for _, c in ipairs {"parameter", "gradient", "optimizer state"} do
            out[c] = (after[c] - before[c]) / 1024
          end
          model, params, opt = nil, nil, nil
          return out
        end]],
      code = [[
        mem = {}
        mem.full = finetune_memory(function() local m = trained_mlp() return m, m:parameters() end)
        mem.lora = finetune_memory(function()
          local m = nn.LoRA.wrap(trained_mlp(), {"1", "3"}, {r = 8, alpha = 16})
          return m, (nn.LoRA.trainable(m))
        end)
        mem.qlora = finetune_memory(function()
          local m = nn.LoRA.wrap(trained_mlp(), {"1", "3"}, {r = 8, alpha = 16, quant = "q4"})
          return m, (nn.LoRA.trainable(m))
        end)
        print("KiB          parameters  gradients  optimizer   total")
        for _, k in ipairs {"full", "lora", "qlora"} do
          local m = mem[k]
          print(("%-10s %11.1f %10.1f %10.1f %7.1f"):format(k, m.parameter, m.gradient,
            m["optimizer state"], m.parameter + m.gradient + m["optimizer state"]))
        end]],
    },
    {
      title = "Mixture of experts: routing with a capacity",
      text = [[
        nn.MoE{dim = 64, hidden = 64, experts = 8, top_k = 2}: a softmax router sends each token to
        its 2 best experts; each takes at most ceil(k x tokens / E x factor) assignments, first
        choices first. The rest are dropped: they add 0; the residual x + moe(x) carries the token.]],
      code = [[
        chalk.manual_seed(3)
        moe = nn.MoE{dim = 64, hidden = 64, experts = 8, top_k = 2}
        tokens = chalk.no_grad(function() return lm.tok(chalk.randint(1, 28, {32, 32})) end)
        runs = {}
        print("factor  capacity = ceil(2 x 1024 / 8 x f)  dropped  hand count sum max(0, load - cap)")
        for i, f in ipairs {1.0, 1.25, 2.0} do
          moe.capacity_factor = f
          chalk.no_grad(function() moe(tokens) end)
          local last, dropped, hand = moe.last, 0, 0
          for e = 1, 8 do
            dropped = dropped + last.dropped[e]
            hand = hand + math.max(0, last.load[e] - last.capacity)
          end
          runs[i] = {factor = f, last = last}
          print(("%6.2f %21d %13d %12d"):format(f, last.capacity, dropped, hand))
        end
        print("assignments per expert: " .. table.concat(runs[1].last.load, " "))
        eff.moe_chart.tokens_per_expert(runs, {file = "15_moe_tokens.png"})]],
    },
    {
      title = "The load-balancing loss",
      text = [[
        A router left alone sends most tokens to a few experts, which then drop them. Switch's
        auxiliary loss E x sum_i f_i P_i (f_i: the share of assignments to expert i, P_i: its
        mean router probability) is 1 for a uniform router, its minimum when the load is
        balanced, and grows as the router concentrates: to E for top-1, E/2 for top-2.]],
      code = [[
        print(("this router: aux = %.4f"):format(moe.aux_loss:item()))
        chalk.no_grad(function() moe.router.weight:zero_() end)
        chalk.no_grad(function() moe(tokens) end)
        aux_uniform = moe.aux_loss:item()
        print(("uniform router (W_r = 0): aux = %.6f (law: 1)"):format(aux_uniform))
        chalk.no_grad(function()
          moe.router.weight:narrow(1, 1, 1):fill_(1)   -- expert 1 scores 64 on a token of ones
          moe(chalk.ones(16, 64))
        end)
        print(("expert 1 is every token's first choice: aux = %.4f (law: E x 1/2 x 1 = 4)")
          :format(moe.aux_loss:item()))]],
      check = function() assert(math.abs(aux_uniform - 1) < 1e-6, "aux loss at a uniform router is 1") end,
    },
    {
      title = "A mixture-of-experts char GPT",
      text = [[
        The char GPT with each block's MLP (64 -> 256 -> 64) replaced by nn.MoE with 8 experts of
        hidden 64, top-2: more parameters, fewer used per token. Trained as lesson 13's model
        (Adam, 150 steps of 32 windows) with loss = cross-entropy + 0.01 x the aux losses.]],
      code = [[
        chalk.manual_seed(1)
        moe_lm = nn.CharGPT{}
        for l = 1, moe_lm.n_layer do
          moe_lm["block" .. l].mlp = nn.MoE{dim = 64, hidden = 64, experts = 8, top_k = 2}
        end
        rep = nn.MoE.fit_lm(moe_lm, {steps = 150, aux = 0.01})
        pc = moe_lm.block1.mlp:param_counts()
        print(("per layer: experts %d parameters, used per token %d (router + 2 experts)")
          :format(pc.total, pc.active))
        print(("dense MLP per layer: %d parameters, all used"):format(lm.block1.mlp:num_parameters()))
        print(("aux loss per layer: %.3f at step 1, %.3f at step 150"):format(rep.aux_first,
          rep.aux_last))
        print(("validation loss: MoE %.3f, dense %.3f nats/char"):format(rep.val_loss,
          lm.report.val_loss))
        print(("trained in %.1f s"):format(rep.seconds))]],
    },
  },
}
