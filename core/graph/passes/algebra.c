/* pass_algebra.c: algebraic rewrites, each an identity of real numbers:
 *   x*1, 1*x, x/1, mul_scalar(x, 1) -> x        x+0, 0+x, x-0, add_scalar(x, 0) -> x
 *   neg(neg(x)) -> x                             transpose(transpose(x, a, b), a, b) -> x
 *   A@B + A@C -> A@(B+C)    B@A + C@A -> (B+C)@A    A*B + A*C -> A*(B+C)   (one matmul/mul fewer)
 * Invariants: a rewrite keeps every reader's shape and dtype (x replaces y only when both have
 * the same shape and dtype); the factored forms reassociate floating point, so results agree to
 * rounding, not bit for bit; nodes whose result is a graph output or a .grad are left alone, as
 * are operands with an in-place write between the nodes that read them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"

static bool same_meta(const ct_gvalue *a, const ct_gvalue *b) {
  return a->dtype == b->dtype && a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

/* Whether v is a constant whose every element equals c. */
static bool constant_all(const ct_graph *g, int v, double c) {
  const ct_gvalue *x = &g->v[v];
  if (x->producer != -1 || !x->ext || !x->constant || x->written || x->input) return false;
  int64_t n = ct_numel(x->ext);
  if (n > 4096) return false;
  double *d = malloc(sizeof *d * (size_t)(n ? n : 1));
  if (!d) return false;
  bool all = !ct_to_doubles(x->ext, d);
  for (int64_t i = 0; i < n && all; i++) all = d[i] == c;
  free(d);
  return all;
}

static bool keeps(const ct_graph *g, int v) { return g->v[v].pinned || ct_graph_value_is_output(g, v); }

static int producer(const ct_graph *g, int v) {
  int p = g->v[v].producer;
  return p >= 0 && !g->n[p].dead ? p : -1;
}

/* Replace node i's result by x (same shape and dtype); the node dies. */
static void forward_to(ct_graph *g, int i, int x, ct_text *why, const char *rule) {
  ct_graph_replace_uses(g, g->n[i].out[0], x);
  g->n[i].dead = true;
  char a[64], b[64];
  ct_text_printf(why, "  %-34s %s -> %s\n", rule, ct_graph_value_name(g, g->n[i].out[0], a, sizeof a),
                 ct_graph_value_name(g, x, b, sizeof b));
}

static bool stable(const ct_graph *g, int v, int from, int to) {
  return ct_graph_epoch(g, v, from) == ct_graph_epoch(g, v, to);
}

/* add(P1(a1, b1), P2(a2, b2)) with P1, P2 both matmul or both mul sharing one operand. */
static int factor(ct_graph *g, int i, int *uses, ct_text *why) {
  ct_gnode *n = &g->n[i];
  int m1 = n->in[0], m2 = n->in[1];
  int p1 = producer(g, m1), p2 = producer(g, m2);
  if (p1 < 0 || p2 < 0 || p1 == p2 || uses[m1] != 1 || uses[m2] != 1 || keeps(g, m1) || keeps(g, m2)) return 0;
  ct_gnode *a = &g->n[p1], *b = &g->n[p2];
  if (a->op != b->op || (a->op != CT_OP_matmul && a->op != CT_OP_mul)) return 0;
  bool matmul = a->op == CT_OP_matmul;
  /* shared operand s, others x (from a) and y (from b); for matmul the side must match */
  int s = -1, x = -1, y = -1, side = 0;
  for (int ka = 0; ka < 2 && s < 0; ka++)
    for (int kb = 0; kb < 2 && s < 0; kb++) {
      if (matmul && ka != kb) continue;
      if (a->in[ka] != b->in[kb]) continue;
      s = a->in[ka], x = a->in[1 - ka], y = b->in[1 - kb], side = ka;
    }
  if (s < 0 || x == y) return 0;
  const ct_gvalue *vx = &g->v[x], *vy = &g->v[y], *vs = &g->v[s], *vo = &g->v[n->out[0]];
  if (vx->dtype != vy->dtype || vx->dtype != vs->dtype) return 0;
  if (matmul && !same_meta(vx, vy)) return 0;
  int vals[3] = {s, x, y};
  for (int k = 0; k < 3; k++)
    if (!stable(g, vals[k], p1 < p2 ? p1 : p2, i)) return 0;
  /* the sum x + y, then the product with s: check the shapes through the shape rules */
  ct_tensor hx, hy, hs, hsum;
  ct_graph_header(g, x, &hx);
  ct_graph_header(g, y, &hy);
  ct_graph_header(g, s, &hs);
  ct_tensor *pair[2] = {&hx, &hy};
  ct_meta msum, mprod;
  memset(&msum, 0, sizeof msum);
  memset(&mprod, 0, sizeof mprod);
  if (ct_optable[CT_OP_add]->shape(pair, 2, NULL, &msum)) {
    ct_clear_error();
    return 0;
  }
  ct_contiguous_strides(msum.shape, msum.ndim, msum.stride);
  memset(&hsum, 0, sizeof hsum);
  hsum.dtype = msum.dtype, hsum.ndim = msum.ndim;
  memcpy(hsum.shape, msum.shape, sizeof hsum.shape);
  memcpy(hsum.stride, msum.stride, sizeof hsum.stride);
  ct_tensor *prod[2] = {side == 0 ? &hs : &hsum, side == 0 ? &hsum : &hs};
  if (ct_optable[a->op]->shape(prod, 2, &a->attrs, &mprod)) {
    ct_clear_error();
    return 0;
  }
  if (mprod.dtype != vo->dtype || mprod.ndim != vo->ndim ||
      memcmp(mprod.shape, vo->shape, sizeof(int64_t) * (size_t)vo->ndim))
    return 0;
  int sum = ct_graph_add_value(g, &msum);
  if (sum < 0) return -1;
  ct_attrs at = a->attrs;
  int pop = a->op; /* a and b move when a node is inserted */
  int old_out = n->out[0];
  int add_in[2] = {x, y};
  if (ct_graph_insert_node(g, i, CT_OP_add, NULL, add_in, 2, &sum, 1) < 0) return -1;
  n = &g->n[i + 1]; /* the add node moved one down; it becomes the product */
  n->op = pop;
  n->attrs = at;
  n->in[0] = side == 0 ? s : sum;
  n->in[1] = side == 0 ? sum : s;
  n->out[0] = old_out;
  int q1 = g->v[m1].producer, q2 = g->v[m2].producer;
  g->n[q1].dead = g->n[q2].dead = true;
  g->n[i].backward = n->backward;
  ct_graph_node_cost(g, i);
  ct_graph_node_cost(g, i + 1);
  char ns[64], nx[64], ny[64];
  ct_graph_value_name(g, s, ns, sizeof ns);
  ct_graph_value_name(g, x, nx, sizeof nx);
  ct_graph_value_name(g, y, ny, sizeof ny);
  if (matmul && side == 0)
    ct_text_printf(why, "  A@B + A@C -> A@(B+C)               with A = %s, B = %s, C = %s: one matmul fewer\n", ns, nx,
                   ny);
  else if (matmul)
    ct_text_printf(why, "  B@A + C@A -> (B+C)@A               with A = %s, B = %s, C = %s: one matmul fewer\n", ns, nx,
                   ny);
  else
    ct_text_printf(why, "  A*B + A*C -> A*(B+C)               with A = %s, B = %s, C = %s: one multiply fewer\n", ns,
                   nx, ny);
  return 1;
}

/* The simple rewrites of node i: 1 when one applied (the node died), else 0. */
static int simplify(ct_graph *g, int i, ct_text *why) {
  ct_gnode *n = &g->n[i];
  int op = n->op, o = n->out[0];
  const ct_gvalue *vo = &g->v[o];
  int a0 = n->nin > 0 ? n->in[0] : -1, a1 = n->nin > 1 ? n->in[1] : -1;
  if ((op == CT_OP_mul || op == CT_OP_div) && constant_all(g, a1, 1) && same_meta(&g->v[a0], vo)) {
    forward_to(g, i, a0, why, op == CT_OP_mul ? "x*1 -> x" : "x/1 -> x");
  } else if (op == CT_OP_mul && constant_all(g, a0, 1) && same_meta(&g->v[a1], vo)) {
    forward_to(g, i, a1, why, "1*x -> x");
  } else if ((op == CT_OP_add || op == CT_OP_sub) && constant_all(g, a1, 0) && same_meta(&g->v[a0], vo)) {
    forward_to(g, i, a0, why, op == CT_OP_add ? "x+0 -> x" : "x-0 -> x");
  } else if (op == CT_OP_add && constant_all(g, a0, 0) && same_meta(&g->v[a1], vo)) {
    forward_to(g, i, a1, why, "0+x -> x");
  } else if (op == CT_OP_mul_scalar && n->attrs.f[0] == 1 && same_meta(&g->v[a0], vo)) {
    forward_to(g, i, a0, why, "x*1 -> x (scalar)");
  } else if (op == CT_OP_add_scalar && n->attrs.f[0] == 0 && same_meta(&g->v[a0], vo)) {
    forward_to(g, i, a0, why, "x+0 -> x (scalar)");
  } else if ((op == CT_OP_neg || op == CT_OP_transpose) && producer(g, a0) >= 0) {
    ct_gnode *p = &g->n[producer(g, a0)];
    if (p->op != op) return 0;
    bool inverse = op == CT_OP_neg || (p->attrs.i[0] == n->attrs.i[0] && p->attrs.i[1] == n->attrs.i[1]) ||
                   (p->attrs.i[0] == n->attrs.i[1] && p->attrs.i[1] == n->attrs.i[0]);
    int x = p->in[0];
    const ct_gvalue *vx = &g->v[x];
    if (!inverse || !same_meta(vx, vo) ||
        (op == CT_OP_transpose && memcmp(vx->stride, vo->stride, sizeof(int64_t) * (size_t)vo->ndim)))
      return 0;
    forward_to(g, i, x, why, op == CT_OP_neg ? "neg(neg(x)) -> x" : "transpose(transpose(x)) -> x");
  } else {
    return 0;
  }
  return 1;
}

int ct_pass_algebra(ct_graph *g, ct_text *why) {
  int changes = 0;
  for (int i = 0; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead || n->nout != 1 || n->op >= CT_OP_COUNT) continue;
    /* a kept result (output, .grad) cannot be forwarded to another value; factoring keeps it */
    if (!keeps(g, n->out[0]) && simplify(g, i, why)) {
      changes++;
      continue;
    }
    if (g->n[i].op != CT_OP_add) continue;
    int *uses = ct_graph_use_counts(g);
    if (!uses) return -1;
    int r = factor(g, i, uses, why);
    free(uses);
    if (r < 0) return -1;
    if (r) {
      changes++;
      i++; /* the product now sits at i + 1 */
    }
  }
  if (!changes) ct_text_printf(why, "  no rewrite applies\n");
  return changes;
}
