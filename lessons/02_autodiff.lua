-- 02_autodiff.lua: module 2, reverse-mode automatic differentiation, by hand and by chalk.
-- Numbers to reproduce (lessons.md): at (2,5) f = 11.652, df/dx1 = 5.5, df/dx2 = 1.716, and
-- central finite differences agree. Pictures: the graph before and after backward, the
-- backward graph beside the forward one, and the same for a small tensor MLP.
return {
  title = "Autodiff: how backward computes every gradient in one sweep",
  module = 2,
  steps = {
    {
      title = "A function of two inputs",
      text = [[
        Our running example is the function from Baydin et al.'s survey of automatic
        differentiation:  f(x1, x2) = ln x1 + x1*x2 - sin x2,  at the point (2, 5).
        We make x1 and x2 leaf tensors that require gradients: chalk will remember every
        operation that touches them. We use f64 so that the finite differences we compute
        later are accurate to many digits. Each intermediate gets a name, so the pictures can
        show the same v1, v2, v3 you would write on the board. Normally a framework keeps
        gradients only for the leaves; we ask chalk to keep every node's, so the pictures can
        show them all.]],
      code = [[
        chalk.set_retain_all_grads(true)
        x1 = chalk.tensor(2, {dtype = "f64", requires_grad = true, name = "x1"})
        x2 = chalk.tensor(5, {dtype = "f64", requires_grad = true, name = "x2"})
        v1 = x1:log();  v1.name = "v1 = ln x1"
        v2 = x1 * x2;   v2.name = "v2 = x1*x2"
        v3 = x2:sin();  v3.name = "v3 = sin x2"
        f = v1 + v2 - v3;  f.name = "f"
        print(("f(2, 5) = %.3f"):format(f:item()))]],
      check = function()
        assert(math.abs(f:item() - 11.652) < 5e-4, "f should be 11.652, got " .. f:item())
      end,
    },
    {
      title = "The forward graph",
      text = [[
        Running the function built a graph: each op node records its inputs, so the chain of
        computation can be walked backwards. Every value is known, but no gradient has been
        computed yet: the picture says "not computed", not 0, because 0 would be a claim
        about the derivative. For the same reason x1.grad is nil, not zero.]],
      code = [[
        viz.graph(f, {file = "02_f_before_backward.png"})
        print("x1.grad is", x1.grad)]],
    },
    {
      title = "One backward sweep",
      text = [[
        f:backward() seeds df/df = 1 and visits the nodes in reverse topological order. Each
        node multiplies the gradient arriving from above by its local derivative and passes it
        to its inputs; where a value is used twice (x1 feeds both ln and *), the contributions
        add up. By hand:
            df/dx1 = 1/x1 + x2        = 0.5 + 5           = 5.5
            df/dx2 = x1 - cos x2      = 2 - cos 5         = 1.716
        One sweep gives the gradient with respect to every input, for about the cost of one
        more forward pass: that is why training uses reverse mode. Backward normally frees
        the graph as it goes (a training loop would run out of memory otherwise);
        retain_graph keeps it, so we can draw it afterwards.]],
      code = [[
        f:backward{retain_graph = true}
        print(("backward: df/dx1 = %.4f"):format(x1.grad:item()))
        print(("backward: df/dx2 = %.4f"):format(x2.grad:item()))]],
      check = function()
        assert(math.abs(x1.grad:item() - 5.5) < 1e-9, "df/dx1 should be 5.5")
        assert(math.abs(x2.grad:item() - (2 - math.cos(5))) < 1e-9, "df/dx2 should be 2 - cos 5")
      end,
    },
    {
      title = "The graph after backward",
      text = [[
        The same graph again, now with gradients on the leaves. With backward=true, chalk
        also draws the backward graph beside the forward one: its nodes are ordinary ops
        (mul, div, cos, ...) named after what they differentiate, "grad of v1" and so on.
        Backward is just another graph of the same ops, so it can be drawn, profiled and even
        differentiated again.]],
      code = [[
        viz.graph(f, {file = "02_f_after_backward.png"})
        viz.graph(f, {backward = true, file = "02_f_forward_backward.png"})]],
    },
    {
      title = "Checking against finite differences",
      text = [[
        Never trust a gradient you have not checked. The central difference
            (f(x + h) - f(x - h)) / 2h
        approximates a derivative with error O(h^2). We evaluate f as a plain function of
        numbers, under no_grad so nothing is recorded, and compare.]],
      code = [[
        function F(a, b)
          local y
          chalk.no_grad(function()
            local t1 = chalk.tensor(a, {dtype = "f64"})
            local t2 = chalk.tensor(b, {dtype = "f64"})
            y = (t1:log() + t1 * t2 - t2:sin()):item()
          end)
          return y
        end
        h = 1e-5
        fd1 = (F(2 + h, 5) - F(2 - h, 5)) / (2 * h)
        fd2 = (F(2, 5 + h) - F(2, 5 - h)) / (2 * h)
        print(("finite differences: df/dx1 = %.6f  df/dx2 = %.6f"):format(fd1, fd2))
        print(("backward:           df/dx1 = %.6f  df/dx2 = %.6f")
          :format(x1.grad:item(), x2.grad:item()))
        print(("largest difference: %.2e"):format(math.max(math.abs(fd1 - x1.grad:item()),
                                                          math.abs(fd2 - x2.grad:item()))))]],
      check = function()
        assert(math.abs(fd1 - x1.grad:item()) < 1e-6, "finite difference disagrees with df/dx1")
        assert(math.abs(fd2 - x2.grad:item()) < 1e-6, "finite difference disagrees with df/dx2")
      end,
    },
    {
      title = "The same machinery on tensors: a small MLP",
      text = [[
        Nothing changes when the values are matrices. Here is a two-layer network on a batch
        of four examples with three features, and a cross-entropy loss over two classes, in
        f64 (mlp:to("f64")) so the finite-difference check below is accurate to many digits.
        nn.Linear holds a weight and a bias as parameters, named after their place in the
        model ("1.weight" is the first layer's weight), and the picture shows those names.
        Gradient rules now involve matrix products: the gradient of X W^T with respect to W
        is g^T X, shapes and all.]],
      code = [[
        chalk.manual_seed(0)
        mlp = nn.Sequential{ nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2) }:to("f64")
        X = chalk.randn(4, 3, {dtype = "f64"});  X.name = "X"
        labels = chalk.tensor({1, 2, 2, 1}, {dtype = "i64"});  labels.name = "labels"
        loss = nn.functional.cross_entropy(mlp(X), labels);  loss.name = "loss"
        print(mlp)
        print(("loss = %.4f"):format(loss:item()))
        viz.graph(loss, {file = "02_mlp_forward.png"})]],
    },
    {
      title = "Backward through the MLP",
      text = [[
        One call fills the .grad of every parameter. The forward and backward graphs side by
        side show the pattern: each matmul in the forward pass becomes two matmuls in the
        backward pass (one for the input, one for the weight), which is why a training step
        costs about three forward passes.]],
      code = [[
        loss:backward{retain_graph = true}
        for name, p in mlp:named_parameters() do
          print(("%-10s shape %-8s grad norm %.4f"):format(name, table.concat(p.shape, "x"),
            (p.grad * p.grad):sum():sqrt():item()))
        end
        viz.graph(loss, {backward = true, file = "02_mlp_forward_backward.png"})]],
    },
    {
      title = "Checking one weight's gradient",
      text = [[
        The same finite-difference check on a single entry of the first layer's weight:
        nudge it up and down by h, recompute the loss with no graph, compare. In f64 the
        central difference's error O(h^2) = 1e-10 at h = 1e-5 is far below the gradient, so
        the two agree to 8 digits; in f32 rounding (1e-7 / h) would swamp them.]],
      code = [[
        W = mlp[1].weight
        function loss_at()
          local l
          chalk.no_grad(function() l = nn.functional.cross_entropy(mlp(X), labels):item() end)
          return l
        end
        h = 1e-5
        w0 = W[2][3]:item()
        chalk.no_grad(function() W[2][3] = w0 + h end); up = loss_at()
        chalk.no_grad(function() W[2][3] = w0 - h end); down = loss_at()
        chalk.no_grad(function() W[2][3] = w0 end)
        fdw = (up - down) / (2 * h)
        print(("dloss/dW[2][3]: backward %.9f, finite difference %.9f")
          :format(W.grad[2][3]:item(), fdw))
        print(("weight gradient difference: %.1e (f64)"):format(math.abs(fdw - W.grad[2][3]:item())))]],
      check = function()
        local g = W.grad[2][3]:item()
        assert(W.dtype == "f64", "the MLP should be f64 for the finite-difference check")
        assert(math.abs(fdw - g) < 1e-8, "finite difference disagrees with backward")
      end,
    },
    {
      title = "Your turn",
      text = [[
        Everything is still here at the prompt. Try:
            viz.graph(v2, {backward = true})     -- a smaller graph
            chalk.grad(f, {x1, x2}, {create_graph = true})   -- gradients that are graphs too
        and change the point (2, 5) to see the gradients move.]],
    },
  },
}
