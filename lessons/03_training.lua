-- 03_training.lua: module 3, training end to end: an MLP on Fashion-MNIST from Debian's data.
-- Number to reproduce (lessons.md): test accuracy >= 85% after a few epochs on the CPU.
-- Pictures: the profile of one training step as a trace and as a memory timeline (parameters,
-- gradients, optimizer state, activations), and the loss curve of the whole run.
-- CHALK_LESSON_SUBSET=N trains on the first N training images (and tests on at most N test
-- images) for a quick run; the lesson then expects at least 70% instead of 85%.
return {
  title = "Training end to end: an MLP on Fashion-MNIST",
  module = 3,
  -- Lines that hold measured times (they differ on every run; the replay check skips them).
  timing = { "%d [mu]?s ", "%d [mu]?s$", "[%d.]+ s$", "wall," },
  -- accuracy(Xs, Ys): the share of Xs the model classifies right, in batches of 1000 without
  -- recording a graph (used from step 6 on).
  setup = [[
    function accuracy(Xs, Ys)
      local correct = 0
      chalk.no_grad(function()
        for xs, ys in data.loader(Xs, Ys, {batch = 1000}) do
          correct = correct + model(xs):argmax(2):eq(ys):to("i64"):sum():item()
        end
      end)
      return correct / Xs.shape[1]
    end]],
  steps = {
    {
      title = "A batch of data",
      text = [[
        Fashion-MNIST: 70,000 grey 28x28 pictures of clothing in ten classes, 60,000 for
        training and 10,000 for testing. Debian ships the original IDX files
        (package dataset-fashion-mnist); chalk reads them with zlib and checks their headers.
        Each image becomes a row of 784 numbers in [0, 1]; labels are 1..10, as every index in
        chalk is 1-based. We start with one batch: the first 128 training images.]],
      code = [[
        xb, yb = data.fashion_mnist("train", {limit = 128})
        classes = data.fashion_mnist_classes
        print(("a batch: xb %s %s, yb %s %s"):format(table.concat(xb.shape, "x"), xb.dtype,
          table.concat(yb.shape, "x"), yb.dtype))
        print("the first image shows: " .. classes[yb[1]:item()])
        print("classes: " .. table.concat(classes, ", "))]],
      check = function()
        assert(xb.shape[2] == 784 and xb:max():item() <= 1 and xb:min():item() >= 0, "pixels in [0,1]")
      end,
    },
    {
      title = "The model",
      text = [[
        A multi-layer perceptron: 784 inputs, a hidden layer of 256 ReLU units, 10 outputs
        (one score per class, the logits). Each Linear layer holds a weight matrix and a bias;
        chalk names them after their place in the model. About 200,000 parameters, 0.78 MiB
        in f32. The seed makes the initial weights, and so the whole run, repeatable.]],
      code = [[
        chalk.manual_seed(0)
        model = nn.Sequential{ nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10) }
        print(model)
        for name, p in model:named_parameters() do
          print(("  %-9s %-9s %7d values"):format(name, table.concat(p.shape, "x"), p:numel()))
        end
        nparams = model:num_parameters()
        print(("%d parameters, %.2f MiB"):format(nparams, nparams * 4 / 2^20))]],
    },
    {
      title = "Loss and optimizer",
      text = [[
        The loss is cross-entropy: -log of the probability softmax gives the right class.
        With random weights every class is about equally likely, so the loss starts near
        ln 10 = 2.303. The optimizer is Adam (learning rate 1e-3), which keeps two running
        averages per parameter, its "optimizer state". A training step is four lines: forget
        the old gradients, run the model forward, backpropagate the loss, update the weights.]],
      code = [[
        F = nn.functional
        opt = optim.Adam(model:parameters(), {lr = 1e-3})
        function train_step(xb, yb)
          opt:zero_grad()
          local loss = F.cross_entropy(model(xb), yb)
          loss:backward()
          opt:step()
          return loss
        end
        chalk.no_grad(function() initial_loss = F.cross_entropy(model(xb), yb):item() end)
        print(("before training: loss %.3f (ln 10 = %.3f)"):format(initial_loss, math.log(10)))]],
      check = function()
        assert(math.abs(initial_loss - math.log(10)) < 0.3, "initial loss should be near ln 10")
      end,
    },
    {
      title = "One training step, profiled",
      text = [[
        chalk.profile records every op and allocation of one train_step. The top 8 ops: the
        matmuls, forward and backward (two per layer: the input's gradient and the weight's),
        beside the many small elementwise ops of Adam.]],
      code = [[
        prof = chalk.profile(function() train_step(xb, yb) end)
        prof:print{top = 8}
        viz.trace(prof, {file = "03_step_trace.png"})]],
    },
    {
      title = "The memory of one step",
      text = [[
        The same profile as a memory timeline, stacked by category. The parameters are
        there before the step starts (the grey baseline). The forward pass adds
        activations, kept for the backward pass; backward frees them as it goes and
        creates gradients, one per parameter. This was the first step, so Adam also
        allocated its state: two tensors per parameter, twice the parameters' memory.
        That is why training needs about four times the memory of the model itself,
        before counting activations.]],
      code = [[
        viz.memory(prof, {file = "03_step_memory.png"})
        local m = chalk.memory_stats().cpu
        print(("now live: parameters %.2f MiB, gradients %.2f MiB, optimizer state %.2f MiB")
          :format(m.parameter / 2^20, m.gradient / 2^20, m["optimizer state"] / 2^20))]],
      check = function()
        local m = chalk.memory_stats().cpu
        assert(m["optimizer state"] >= 2 * m.parameter, "Adam keeps two tensors per parameter")
      end,
    },
    {
      title = "The whole data set",
      text = [[
        Now all of it: 60,000 training images (179 MiB as f32) and the 10,000 test images
        the model never trains on. Guessing would score 10% on the test set; the one step
        we took on one batch has already moved the model a little past that.]],
      code = [[
        subset = tonumber(os.getenv("CHALK_LESSON_SUBSET") or "")
        X, Y = data.fashion_mnist("train", {limit = subset})
        Xt, Yt = data.fashion_mnist("test", {limit = subset})
        print(("train: X %s, Y %s; test: X %s, Y %s"):format(table.concat(X.shape, "x"),
          table.concat(Y.shape, "x"), table.concat(Xt.shape, "x"), table.concat(Yt.shape, "x")))
        -- accuracy(Xs, Ys) (the lesson's setup) counts argmax(model(x)) == y in batches of 1000
        print(("test accuracy after one step: %.1f%%"):format(100 * accuracy(Xt, Yt)))]],
    },
    {
      title = "Training",
      text = [[
        Each epoch shuffles the images (chalk's seeded RNG) into batches of 128, one step per
        batch, then measures accuracy on the test images, never trained on. In a terminal a
        progress bar shows the loss and the throughput while an epoch runs.]],
      code = [[
        epochs, losses = subset and 3 or 4, {}
        for epoch = 1, epochs do
          local t0, sum, n = chalk.clock(), 0, 0
          local loader = data.loader(X, Y, {batch = 128, shuffle = true})
          local bar = chalk.progress.new{total = #loader, epoch = epoch, epochs = epochs}
          for xb, yb in loader do
            local loss = train_step(xb, yb):item()
            losses[#losses + 1], sum, n = loss, sum + loss, n + 1
            bar:update{loss = loss, items = xb.shape[1]}
          end
          bar:finish{clear = true}
          test_accuracy = accuracy(Xt, Yt)
          print(("epoch %d/%d: train loss %.4f, test accuracy %.2f%%, %.1f s")
            :format(epoch, epochs, sum / n, 100 * test_accuracy, chalk.clock() - t0))
        end
        print(("final test accuracy %.2f %% after %d epochs"):format(100 * test_accuracy, epochs))]],
      check = function()
        local want = subset and 0.70 or 0.85
        assert(test_accuracy >= want, ("test accuracy %.4f is below %.2f"):format(test_accuracy, want))
      end,
    },
    {
      title = "The loss curve",
      text = [[
        The training loss of every step. It falls fast in the first few hundred steps, then
        slowly; the noise is the batch: each step sees only 128 of the 60,000 images.]],
      code = [[
        chart = require "chalk.chart"
        chart.line(losses, {title = "training loss (cross-entropy) per step", xlabel = "step",
          ylabel = "loss", ymin = 0, file = "03_loss_curve.png"})]],
    },
    {
      title = "What the model gets wrong",
      text = [[
        Accuracy hides which mistakes the model makes. Counting, for each true class, the
        class it is most often mistaken for shows the hard pairs: shirts against T-shirts
        and pullovers against coats look alike at 28x28.]],
      code = [=[
        chalk.no_grad(function() predicted = model(Xt):argmax(2) end)
        local pred, truth = predicted:totable(), Yt:totable()
        local confused = {}
        for i = 1, #truth do
          if pred[i] ~= truth[i] then
            local key = truth[i] * 100 + pred[i]
            confused[key] = (confused[key] or 0) + 1
          end
        end
        local pairs_list = {}
        for key, n in pairs(confused) do pairs_list[#pairs_list + 1] = {key // 100, key % 100, n} end
        table.sort(pairs_list, function(a, b) return a[3] > b[3] end)
        for i = 1, math.min(5, #pairs_list) do
          local p = pairs_list[i]
          print(("%4d  %-12s taken for %s"):format(p[3], classes[p[1]], classes[p[2]]))
        end]=],
    },
    {
      title = "Your turn",
      text = [[
        Everything is still live. Try a wider hidden layer, optim.SGD(model:parameters(),
        {lr = 0.1, momentum = 0.9}) instead of Adam, or save the trained weights:
            chalk.save(model:state_dict(), "mlp.chalk")
        and load them into a fresh model with model:load_state_dict(chalk.load("mlp.chalk")).]],
    },
  },
}
