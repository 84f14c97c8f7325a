#!/usr/bin/python3
"""gen_torch_refs.py: PyTorch reference cases for tests/core/test_torch_ref.c.

Run at test time by tests/tests.mk with Debian's /usr/bin/python3 (python3-torch):
    /usr/bin/python3 tests/ref/gen_torch_refs.py OUT.txt

For every op chalk shares with PyTorch it draws seeded random inputs (broadcasting, size-1 dims,
0-d and empty tensors, 1-D matmul operands, negative dims and indices), runs torch forward, and
backward of sum(out * w) for a random w, and writes one plain-text case per draw:

    case <id> <op> <dtype>
    attrs <key>=<value> ...            (lists are comma-separated; "all" = every dim)
    in <name> <dtype> <grad 0|1> <ndim> <dims...> : <values...>
    w <ndim> <dims...> : <values...>   (only when the output takes a gradient)
    out <dtype> <ndim> <dims...> : <values...>
    grad <input index, 0-based> <ndim> <dims...> : <values...>
    end

Index values (index_select, gather, embedding, class targets, argmax results) are written 1-based,
as chalk's user contract has them (negative ones count from the end); torch gets them 0-based.
Floats are written with repr(), which round-trips exactly (nan, inf, -inf included).
"""
import math
import sys

import torch
import torch.nn.functional as F

GEN = torch.Generator().manual_seed(20240601)
DTYPES = {torch.float64: "f64", torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16",
          torch.int64: "i64", torch.bool: "bool"}


def rand(shape, lo=-2.0, hi=2.0):
    return torch.rand(shape, generator=GEN, dtype=torch.float64) * (hi - lo) + lo


def randn(shape):
    return torch.randn(shape, generator=GEN, dtype=torch.float64)


def randint(lo, hi, shape):
    """[lo, hi) as int64"""
    return torch.randint(lo, hi, shape, generator=GEN, dtype=torch.int64)


def rshape(ndim, lo=1, hi=4):
    return [int(v) for v in torch.randint(lo, hi + 1, (ndim,), generator=GEN)]


def coin():
    return bool(torch.randint(0, 2, (1,), generator=GEN)[0])


def broadcast_partner(shape):
    """A shape that broadcasts with `shape`: a suffix of it with some dims set to 1."""
    n = int(torch.randint(0, len(shape) + 1, (1,), generator=GEN)[0])
    tail = shape[len(shape) - n:]
    return [s if coin() else 1 for s in tail]


def fmt_values(t):
    t = t.detach().flatten()
    if t.dtype == torch.bool:
        return " ".join("1" if v else "0" for v in t.tolist())
    if t.dtype in (torch.int64, torch.int32):
        return " ".join(str(v) for v in t.tolist())
    return " ".join(repr(float(v)) for v in t.tolist())


def fmt_shape(t):
    return " ".join([str(t.dim())] + [str(s) for s in t.shape])


class Writer:
    def __init__(self, f):
        self.f = f
        self.n = 0
        self.per_op = {}

    def case(self, op, dtype, inputs, fn, attrs=None, out_map=None, index_inputs=()):
        """inputs: list of (name, tensor for torch, tensor to write or None, requires_grad).
        fn(*torch_inputs) -> output. out_map turns torch's output into what chalk returns."""
        torch_in = []
        for name, t, _, rg in inputs:
            t = t.detach().clone()
            if rg:
                t.requires_grad_(True)
            torch_in.append(t)
        out = fn(*torch_in)
        lines = ["case %d %s %s" % (self.n, op, dtype)]
        lines.append("attrs " + " ".join("%s=%s" % kv for kv in (attrs or {}).items()))
        for (name, t, written, rg), tt in zip(inputs, torch_in):
            w = tt if written is None else written
            lines.append("in %s %s %d %s : %s" % (name, DTYPES[w.dtype], 1 if rg else 0, fmt_shape(w), fmt_values(w)))
        grads = []
        if out.requires_grad:
            w = randn(out.shape).to(out.dtype)
            (out * w).sum().backward()
            lines.append("w %s : %s" % (fmt_shape(w), fmt_values(w)))
            for k, ((name, _, _, rg), tt) in enumerate(zip(inputs, torch_in)):
                if rg:
                    g = tt.grad if tt.grad is not None else torch.zeros_like(tt)
                    grads.append("grad %d %s : %s" % (k, fmt_shape(g), fmt_values(g)))
        shown = out_map(out) if out_map else out
        lines.append("out %s %s : %s" % (DTYPES[shown.dtype], fmt_shape(shown), fmt_values(shown)))
        lines.extend(grads)
        lines.append("end")
        self.f.write("\n".join(lines) + "\n")
        self.n += 1
        self.per_op[op] = self.per_op.get(op, 0) + 1


def to_chalk_index(idx0, size, negative):
    """0-based torch indices -> chalk's 1-based values (or negative ones, -1 = last)."""
    return idx0 - size if negative else idx0 + 1


def gen_elementwise(w):
    unary = {
        "neg": (torch.neg, -2, 2), "exp": (torch.exp, -2, 2), "log": (torch.log, 0.1, 3),
        "sqrt": (torch.sqrt, 0.1, 3), "abs": (torch.abs, -2, 2), "sin": (torch.sin, -3, 3),
        "cos": (torch.cos, -3, 3), "tanh": (torch.tanh, -3, 3), "sigmoid": (torch.sigmoid, -4, 4),
        "relu": (torch.relu, -2, 2), "gelu": (F.gelu, -3, 3), "silu": (F.silu, -4, 4),
    }
    for op, (fn, lo, hi) in unary.items():
        for k, dt in enumerate([torch.float64, torch.float64, torch.float64, torch.float32]):
            shape = [[], [1], rshape(2), rshape(3)][k]
            x = rand(shape, lo, hi).to(dt)
            if op in ("abs", "relu"):  # keep off the kink at 0
                x = torch.where(x.abs() < 0.05, x + 0.1, x)
            w.case(op, DTYPES[dt], [("x", x, None, True)], fn)
    binary = {
        "add": (torch.add, (-2, 2), (-2, 2)), "sub": (torch.sub, (-2, 2), (-2, 2)),
        "mul": (torch.mul, (-2, 2), (-2, 2)), "div": (torch.div, (-2, 2), (0.3, 2)),
        "pow": (torch.pow, (0.2, 2), (-2, 2)),
    }
    for op, (fn, ra, rb) in binary.items():
        for k, dt in enumerate([torch.float64] * 4 + [torch.float32]):
            sa = rshape(int(torch.randint(1, 4, (1,), generator=GEN)[0]))
            sb = broadcast_partner(sa)
            if k % 2:
                sa, sb = sb, sa
            a = rand(sa, *ra).to(dt)
            b = rand(sb, *rb).to(dt)
            if op == "div":
                b = b * torch.where(rand(sb) > 0, 1.0, -1.0).to(dt)
            w.case(op, DTYPES[dt], [("a", a, None, True), ("b", b, None, True)], fn)
    # empty tensors broadcast too
    w.case("add", "f64", [("a", rand([0, 3]), None, True), ("b", rand([3]), None, True)], torch.add)
    for lo, hi in [(-0.5, 0.7), (-math.inf, 0.3), (-0.2, math.inf)]:
        x = rand(rshape(2), -2, 2)
        fn = lambda x, lo=lo, hi=hi: torch.clamp(x, min=None if lo == -math.inf else lo,
                                                 max=None if hi == math.inf else hi)
        w.case("clamp", "f64", [("x", x, None, True)], fn, attrs={"lo": repr(lo), "hi": repr(hi)})
    for k in range(4):
        sc = rshape(int(torch.randint(1, 4, (1,), generator=GEN)[0]))
        sa, sb = broadcast_partner(sc), broadcast_partner(sc)
        cond = rand(sc) > 0
        dt = torch.float32 if k == 3 else torch.float64
        w.case("where", DTYPES[dt], [("cond", cond, None, False), ("a", rand(sa).to(dt), None, True),
                                     ("b", rand(sb).to(dt), None, True)], torch.where)
    for op in ["eq", "lt", "le", "gt", "ge"]:
        for k in range(3):
            sa = rshape(2, 1, 4)
            sb = broadcast_partner(sa)
            dt = torch.float32 if k == 2 else torch.float64
            a = randint(-2, 3, sa).to(dt)  # small integers: ties happen
            b = randint(-2, 3, sb).to(dt)
            w.case(op, DTYPES[dt], [("a", a, None, False), ("b", b, None, False)], getattr(torch, op))


def gen_reductions(w):
    for op in ["sum", "mean", "max", "min", "var"]:
        for k in range(6):
            nd = int(torch.randint(1, 4, (1,), generator=GEN)[0])
            shape = rshape(nd, 2, 4)
            keep = bool(k % 2)
            if k < 2:
                dims, attr = list(range(nd)), "all"
            else:
                dims = [d for d in range(nd) if coin()] or [nd - 1]
                dims = [d - nd if coin() else d for d in dims]
                attr = ",".join(str(d) for d in dims)
            dt = torch.float32 if k == 5 else torch.float64
            x = rand(shape).to(dt)
            attrs = {"dims": attr, "keepdim": int(keep)}
            tdims = tuple(dims)
            if op == "sum":
                fn = lambda x, d=tdims, kp=keep: torch.sum(x, dim=d, keepdim=kp)
            elif op == "mean":
                fn = lambda x, d=tdims, kp=keep: torch.mean(x, dim=d, keepdim=kp)
            elif op == "max":
                fn = lambda x, d=tdims, kp=keep: torch.amax(x, dim=d, keepdim=kp)
            elif op == "min":
                fn = lambda x, d=tdims, kp=keep: torch.amin(x, dim=d, keepdim=kp)
            else:
                unbiased = k % 3 != 0
                attrs["unbiased"] = int(unbiased)
                fn = lambda x, d=tdims, kp=keep, u=unbiased: torch.var(x, dim=d, unbiased=u, keepdim=kp)
            w.case(op, DTYPES[dt], [("x", x, None, True)], fn, attrs=attrs)
    # a sum over an empty dim is zeros
    w.case("sum", "f64", [("x", rand([0, 3]), None, True)], lambda x: torch.sum(x, dim=0),
           attrs={"dims": "0", "keepdim": 0})
    for k in range(6):
        nd = int(torch.randint(1, 4, (1,), generator=GEN)[0])
        x = rand(rshape(nd, 1, 5)).to(torch.float32 if k == 5 else torch.float64)
        if k == 0:
            w.case("argmax", DTYPES[x.dtype], [("x", x, None, False)], lambda x: torch.argmax(x),
                   attrs={"dim": "all", "keepdim": 0}, out_map=lambda o: o + 1)
        else:
            d = int(torch.randint(-nd, nd, (1,), generator=GEN)[0])
            keep = bool(k % 2)
            w.case("argmax", DTYPES[x.dtype], [("x", x, None, False)],
                   lambda x, d=d, kp=keep: torch.argmax(x, dim=d, keepdim=kp),
                   attrs={"dim": d, "keepdim": int(keep)}, out_map=lambda o: o + 1)


def gen_matmul(w):
    shapes = [([3, 4], [4, 2]), ([2, 3, 4], [4, 5]), ([3, 4], [2, 4, 2]), ([2, 1, 3, 2], [3, 2, 4]),
              ([1, 2, 3], [2, 1, 3, 2]), ([4], [4, 3]), ([3, 4], [4]), ([5], [5]), ([2, 3, 4], [4]),
              ([3], [2, 3, 2]), ([1, 1], [1, 1]), ([7, 16], [16, 9])]
    for k, (sa, sb) in enumerate(shapes):
        dt = torch.float32 if k in (3, 11) else torch.float64
        w.case("matmul", DTYPES[dt], [("a", rand(sa).to(dt), None, True), ("b", rand(sb).to(dt), None, True)],
               torch.matmul)


def gen_nn(w):
    for op, fn in [("softmax", torch.softmax), ("log_softmax", torch.log_softmax)]:
        for k in range(5):
            nd = int(torch.randint(1, 4, (1,), generator=GEN)[0])
            d = int(torch.randint(-nd, nd, (1,), generator=GEN)[0])
            dt = torch.float32 if k == 4 else torch.float64
            scale = 30.0 if k == 3 else 3.0  # large logits: the stable form matters
            x = rand(rshape(nd, 1, 5), -scale, scale).to(dt)
            w.case(op, DTYPES[dt], [("x", x, None, True)], lambda x, d=d, fn=fn: fn(x, d), attrs={"dim": d})
    for op in ["cross_entropy", "nll_loss"]:
        for k in range(5):
            c = int(torch.randint(2, 6, (1,), generator=GEN)[0])
            dt = torch.float32 if k == 4 else torch.float64
            negative = k == 2
            if k == 3:  # one sample: logits [C], a 0-d target
                x = rand([c], -3, 3).to(dt)
                t0 = randint(0, c, [])
            else:
                n = int(torch.randint(1, 6, (1,), generator=GEN)[0])
                x = rand([n, c], -3, 3).to(dt)
                t0 = randint(0, c, [n])
            fn = F.cross_entropy if op == "cross_entropy" else F.nll_loss
            w.case(op, DTYPES[dt], [("input", x, None, True), ("target", t0, to_chalk_index(t0, c, negative), False)],
                   fn)
    for k in range(4):
        shape = rshape(int(torch.randint(0, 4, (1,), generator=GEN)[0]))
        dt = torch.float32 if k == 3 else torch.float64
        w.case("mse_loss", DTYPES[dt], [("a", rand(shape).to(dt), None, True), ("b", rand(shape).to(dt), None, True)],
               F.mse_loss)
    for k in range(5):
        nd_x = int(torch.randint(2, 4, (1,), generator=GEN)[0])
        shape = rshape(nd_x, 2, 5)
        nd = int(torch.randint(1, nd_x, (1,), generator=GEN)[0])
        has_w, has_b = k != 1, k != 2
        dt = torch.float32 if k == 4 else torch.float64
        eps = 1e-5
        ins = [("x", rand(shape).to(dt), None, True)]
        if has_w:
            ins.append(("weight", rand(shape[-nd:]).to(dt), None, True))
        if has_b:
            ins.append(("bias", rand(shape[-nd:]).to(dt), None, True))

        def ln(x, *p, nd=nd, has_w=has_w, has_b=has_b, eps=eps):
            weight = p[0] if has_w else None
            bias = p[-1] if has_b else None
            return F.layer_norm(x, x.shape[-nd:], weight, bias, eps)
        w.case("layer_norm", DTYPES[dt], ins, ln,
               attrs={"nd": nd, "eps": repr(eps), "weight": int(has_w), "bias": int(has_b)})


def gen_index(w):
    for k in range(4):
        v, d = int(torch.randint(2, 7, (1,), generator=GEN)[0]), int(torch.randint(1, 5, (1,), generator=GEN)[0])
        ishape = [rshape(1, 1, 6), rshape(2, 1, 4), [], rshape(2, 1, 3)][k]
        idx0 = randint(0, v, ishape)
        dt = torch.float32 if k == 3 else torch.float64
        w.case("embedding", DTYPES[dt], [("weight", rand([v, d]).to(dt), None, True),
                                          ("idx", idx0, to_chalk_index(idx0, v, k == 1), False)],
               lambda weight, idx: F.embedding(idx, weight))
    for k in range(5):
        nd = int(torch.randint(1, 4, (1,), generator=GEN)[0])
        shape = rshape(nd, 1, 4)
        dim = int(torch.randint(-nd, nd, (1,), generator=GEN)[0])
        size = shape[dim]
        idx0 = randint(0, size, [int(torch.randint(1, 7, (1,), generator=GEN)[0])])
        dt = torch.float32 if k == 4 else torch.float64
        w.case("index_select", DTYPES[dt], [("x", rand(shape).to(dt), None, True),
                                             ("idx", idx0, to_chalk_index(idx0, size, k == 2), False)],
               lambda x, idx, dim=dim: torch.index_select(x, dim, idx), attrs={"dim": dim})
    for k in range(5):
        nd = int(torch.randint(1, 4, (1,), generator=GEN)[0])
        shape = rshape(nd, 1, 4)
        dim = int(torch.randint(0, nd, (1,), generator=GEN)[0])
        ishape = [int(torch.randint(1, 6, (1,), generator=GEN)[0]) if d == dim
                  else int(torch.randint(1, shape[d] + 1, (1,), generator=GEN)[0]) for d in range(nd)]
        idx0 = randint(0, shape[dim], ishape)
        dt = torch.float32 if k == 4 else torch.float64
        w.case("gather", DTYPES[dt], [("x", rand(shape).to(dt), None, True),
                                       ("idx", idx0, to_chalk_index(idx0, shape[dim], k == 1), False)],
               lambda x, idx, dim=dim: torch.gather(x, dim, idx), attrs={"dim": dim})
    for op in ["cat", "stack"]:
        for k in range(4):
            nd = int(torch.randint(1, 4, (1,), generator=GEN)[0])
            shape = rshape(nd, 1, 4)
            lo, hi = (-(nd + 1), nd + 1) if op == "stack" else (-nd, nd)
            dim = int(torch.randint(lo, hi, (1,), generator=GEN)[0])
            n = int(torch.randint(1, 4, (1,), generator=GEN)[0])
            dt = torch.float32 if k == 3 else torch.float64
            ins = []
            for i in range(n):
                s = list(shape)
                if op == "cat":
                    s[dim] = int(torch.randint(0 if k == 2 else 1, 4, (1,), generator=GEN)[0])
                ins.append(("x%d" % i, rand(s).to(dt), None, True))
            fn = (lambda *xs, dim=dim: torch.cat(xs, dim)) if op == "cat" else (lambda *xs, dim=dim: torch.stack(xs, dim))
            w.case(op, DTYPES[dt], ins, fn, attrs={"dim": dim, "n": n})


def gen_conv(w):
    convs = [([2, 2, 5, 5], [3, 2, 3, 3], 1, 0, True), ([1, 3, 6, 5], [2, 3, 3, 2], 2, 1, True),
             ([2, 1, 4, 4], [2, 1, 1, 1], 1, 0, False), ([1, 2, 5, 6], [1, 2, 2, 3], 1, 2, True),
             ([2, 3, 7, 7], [4, 3, 3, 3], 2, 1, True)]
    for k, (sx, sw, stride, pad, bias) in enumerate(convs):
        dt = torch.float32 if k == 4 else torch.float64
        ins = [("x", rand(sx).to(dt), None, True), ("w", rand(sw).to(dt), None, True)]
        if bias:
            ins.append(("b", rand([sw[0]]).to(dt), None, True))
        w.case("conv2d", DTYPES[dt], ins,
               lambda x, wt, b=None, s=stride, p=pad: F.conv2d(x, wt, b, stride=s, padding=p),
               attrs={"stride": stride, "padding": pad, "bias": int(bias)})
    pools = [([2, 2, 4, 4], 2, 2), ([1, 3, 5, 6], 3, 2), ([2, 1, 5, 5], 2, 1), ([1, 2, 6, 6], 3, 3)]
    for k, (sx, kern, stride) in enumerate(pools):
        dt = torch.float32 if k == 3 else torch.float64
        w.case("max_pool2d", DTYPES[dt], [("x", rand(sx).to(dt), None, True)],
               lambda x, kk=kern, s=stride: F.max_pool2d(x, kk, s), attrs={"kernel": kern, "stride": stride})


def gen_conversions(w):
    """f16 and bf16 rounding of random and special f32 values (no gradients)."""
    specials = torch.tensor([0.0, -0.0, 1.0, 65504.0, 65519.0, 65520.0, 1e-8, 6e-8, 3e-8, 1.0 + 2 ** -11,
                             1.0 + 3 * 2 ** -11, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 3e38, -3.4e38,
                             math.inf, -math.inf, math.nan], dtype=torch.float32)
    for op, dt in [("to_f16", torch.float16), ("to_bf16", torch.bfloat16)]:
        w.case(op, "f32", [("x", specials, None, False)], lambda x, dt=dt: x.to(dt))
        x = (randn([200]) * torch.exp(rand([200], -12, 12))).to(torch.float32)
        w.case(op, "f32", [("x", x, None, False)], lambda x, dt=dt: x.to(dt))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_torch_refs.py OUT.txt")
    torch.set_num_threads(1)
    with open(sys.argv[1], "w") as f:
        f.write("# chalk PyTorch reference cases, torch %s; generated by tests/ref/gen_torch_refs.py\n"
                % torch.__version__)
        w = Writer(f)
        gen_elementwise(w)
        gen_reductions(w)
        gen_matmul(w)
        gen_nn(w)
        gen_index(w)
        gen_conv(w)
        gen_conversions(w)
    print("gen_torch_refs: %d cases for %d ops (torch %s)" % (w.n, len(w.per_op), torch.__version__))


if __name__ == "__main__":
    main()
