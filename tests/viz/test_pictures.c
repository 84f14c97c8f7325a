/* test_pictures.c: every picture kind rendered to PNG and SVG (valid files, the labels that must
 * be there), the profiler's table and numbers, and the Chrome trace checked by /usr/bin/python3. */
#include <criterion/criterion.h>

#include "vizutil.h"

/* Renders dot with engine to name.png (at least min_png bytes) and name.svg, and expects each
   label (a NULL-ended list) in the SVG text. */
static void expect_picture(const char *dot, const char *engine, const char *name, size_t min_png,
                           const char *const *labels) {
  char png[256], svg[256];
  snprintf(png, sizeof png, "%s.png", name);
  snprintf(svg, sizeof svg, "%s.svg", name);
  cr_assert_eq(viz_render(dot, engine, "png", vt_path(png)), 0, "%s", ct_last_error());
  cr_expect(vt_is_png(vt_path(png), min_png), "%s is a PNG of at least %zu bytes", vt_path(png), min_png);
  cr_assert_eq(viz_render(dot, engine, "svg", vt_path(svg)), 0, "%s", ct_last_error());
  char *s = vt_read(vt_path(svg), NULL);
  cr_assert(s && strstr(s, "<svg"), "%s is an SVG", vt_path(svg));
  for (; *labels; labels++) cr_expect(strstr(s, *labels), "%s shows \"%s\"", vt_path(svg), *labels);
  free(s);
}

/* p: a profiled training step of a small MLP (forward, backward, an SGD update, a user mark), made
   before each test that takes the fixture and freed after. */
static ct_profile *p;
static void profile_step(void) {
  p = ct_profile_start();
  cr_assert(p);
  ct_tensor *loss = vt_mlp(3, 64, 32, 64, 10);
  cr_assert(loss, "%s", ct_last_error());
  cr_assert_eq(ct_backward(loss, NULL, false, false), 0, "%s", ct_last_error());
  ct_event_mark("mark", "optimizer step");
  ct_release(loss);
  ct_profile_stop(p);
}
static void free_profile(void) { ct_profile_free(p); }
#define PROFILED_STEP .init = profile_step, .fini = free_profile

Test(pictures, graph_png_svg) {
  ct_tensor *x1, *x2, *f = vt_autodiff(&x1, &x2);
  viz_graph_opts o = {.backward = true};
  char *dot = vt_graph_dot(f, &o);
  cr_assert(dot);
  expect_picture(dot, "dot", "graph_backward", 20000,
                 (const char *const[]){"grad of x1", "not computed", "11.65", "forward and backward graph of f", NULL});
  free(dot);
  cr_assert_eq(viz_render("digraph { a -> b }", "dot", "pdf", vt_path("tiny.pdf")), 0, "%s", ct_last_error());
  char *pdf = vt_read(vt_path("tiny.pdf"), NULL);
  cr_expect(pdf && !strncmp(pdf, "%PDF", 4));
  free(pdf);
  ct_release(f), ct_release(x1), ct_release(x2);
}

Test(pictures, render_errors_are_clear) {
  cr_expect_neq(viz_render("digraph { a }", "dot", "gif", vt_path("x.gif")), 0);
  cr_expect(strstr(ct_last_error(), "unknown format 'gif'"), "%s", ct_last_error());
  cr_expect_neq(viz_render("digraph { a }", "dot", "png", "/nonexistent-dir/x.png"), 0);
  cr_expect(strstr(ct_last_error(), "cannot write /nonexistent-dir/x.png"), "%s", ct_last_error());
  cr_expect_neq(viz_render("digraph { a ->", "dot", "png", vt_path("bad.png")), 0);
  cr_expect(strstr(ct_last_error(), "could not parse"), "%s", ct_last_error());
  cr_expect_neq(viz_render("digraph { a }", "no-such-engine", "png", vt_path("e.png")), 0);
  cr_expect(strstr(ct_last_error(), "cannot lay out"), "%s", ct_last_error());
  /* dot format writes the text itself */
  cr_assert_eq(viz_render("digraph { a -> b }", "dot", "dot", vt_path("text.dot")), 0);
  char *t = vt_read(vt_path("text.dot"), NULL);
  cr_expect_str_eq(t, "digraph { a -> b }");
  free(t);
}

Test(pictures, profile_table, PROFILED_STEP) {
  ct_prof_op *rows;
  int n = ct_profile_ops(p, &rows);
  cr_assert_gt(n, 3);
  bool mm = false, mmb = false;
  for (int i = 0; i < n; i++) {
    if (!strcmp(rows[i].name, "matmul") && !rows[i].backward) mm = rows[i].calls == 3 && rows[i].flops > 0;
    if (!strcmp(rows[i].name, "matmul") && rows[i].backward) mmb = rows[i].calls >= 5;
    if (i) cr_expect_geq(rows[i - 1].self_us, rows[i].self_us, "sorted by time");
  }
  cr_expect(mm, "3 forward matmuls with their flops");
  cr_expect(mmb, "the backward matmuls in their own row");
  free(rows);
  double busy = ct_profile_busy_us(p), op_sum = 0;
  for (size_t i = 0; i < ct_profile_nevents(p); i++) {
    const ct_event *e = ct_profile_event(p, i);
    if (e->kind == CT_EV_OP) op_sum += e->t1 - e->t0;
  }
  cr_expect(busy > 0 && busy <= ct_profile_duration_us(p) + 1e-6, "busy time within the wall time");
  cr_expect_leq(busy, op_sum + 1e-6, "the union of op intervals is at most their sum");
  char buf[8192];
  ct_profile_format(p, buf, sizeof buf);
  cr_expect(strstr(buf, "GFLOP/s") && strstr(buf, "GB/s") && strstr(buf, "share"), "%s", buf);
  cr_expect(strstr(buf, "some op running"), "%s", buf);
  cr_expect(strstr(buf, "matmul (backward)"), "%s", buf);
  cr_expect(strstr(buf, "memory on cpu: peak"), "%s", buf);
  cr_expect(strstr(buf, "parameter"), "%s", buf);
  ct_prof_memory m;
  cr_assert_eq(ct_profile_memory(p, CT_CPU, &m), 0);
  cr_expect_gt(m.peak, m.live[0][CT_CAT_ACTIVATION], "the peak is above the start");
  cr_expect_gt(m.max_by_cat[CT_CAT_GRADIENT], 0, "backward made gradients");
  cr_expect_gt(m.nat_peak, 0, "tensors live at the peak are listed");
  int64_t sum = 0;
  for (int c = 0; c < CT_NCATS; c++) sum += m.peak_by_cat[c];
  cr_expect_eq(sum, m.peak, "categories add up to the peak");
  ct_prof_memory_free(&m);
}

Test(pictures, memory_timeline, PROFILED_STEP) {
  viz_buf b = {0};
  cr_assert_eq(viz_memory_dot(p, NULL, &b), 0, "%s", ct_last_error());
  expect_picture(b.s, "nop", "memory", 15000,
                 (const char *const[]){"memory on cpu: peak", "live at the peak",
                                       "parameter", "activation", "gradient", /* the legend of categories */
                                       "forward", "backward",                 /* the phase band */
                                       "optimizer step",                      /* the user mark */
                                       "layers.2.weight", "tanh output", /* what was live, by tensor or op name */
                                       NULL});
  viz_buf_free(&b);
  viz_memory_opts o = {.device = -1, .by_time = true};
  cr_assert_eq(viz_memory_dot(p, &o, &b), 0);
  cr_expect(strstr(b.s, "time (ms)"));
  viz_buf_free(&b);
}

Test(pictures, trace_lanes, PROFILED_STEP) {
  viz_buf b = {0};
  cr_assert_eq(viz_trace_dot(p, NULL, &b), 0, "%s", ct_last_error());
  expect_picture(b.s, "nop", "trace", 8000,
                 (const char *const[]){"cpu stream 0", /* a lane per device and stream */
                                       "matmul",       /* ops labelled */
                                       "backward op",  /* the legend */
                                       "time since the profile started", NULL});
  viz_buf_free(&b);
}

Test(pictures, chrome_trace_parses, PROFILED_STEP) {
  const char *path = vt_path("step.json");
  cr_assert_eq(viz_chrome_write(p, path), 0, "%s", ct_last_error());
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/check_chrome.py %s matmul tanh add",
           getenv("VIZ_TEST_DIR") ? getenv("VIZ_TEST_DIR") : "tests/viz", path);
  cr_expect_eq(system(cmd), 0, "%s", cmd);
}

Test(pictures, nested_profiles_and_log_off) {
  ct_profile *outer = ct_profile_start();
  ct_tensor *a = ct_scalar(1, CT_F32, ct_cpu());
  ct_profile *inner = ct_profile_start();
  ct_tensor *b = ct_exp(a);
  ct_profile_stop(inner);
  ct_tensor *c = ct_sin(a);
  ct_profile_stop(outer);
  cr_expect(!ct_events_on(), "the log is off after the outer profile");
  ct_prof_op *rows;
  int n = ct_profile_ops(inner, &rows);
  cr_expect_eq(n, 1);
  cr_expect_str_eq(rows[0].name, "exp");
  free(rows);
  n = ct_profile_ops(outer, &rows);
  cr_expect_eq(n, 2, "the outer profile sees both ops");
  free(rows);
  size_t before = ct_events_count();
  ct_tensor *d = ct_cos(a);
  cr_expect_eq(ct_events_count(), before, "nothing is logged with the log off");
  ct_release(a), ct_release(b), ct_release(c), ct_release(d);
  ct_profile_free(inner), ct_profile_free(outer);
}
