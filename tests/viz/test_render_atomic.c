/* test_render_atomic.c: a picture is written to a temporary file and renamed, so an interrupted
 * render (Ctrl-C sets the core's interrupt flag) leaves the earlier picture whole and no stray. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "viz.h"

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return buf;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

Test(render_atomic, interrupted_render_keeps_the_earlier_picture) {
  char dir[] = "/tmp/chalk-render-XXXXXX", path[128];
  cr_assert(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/pic.svg", dir);
  cr_assert_eq(viz_render("digraph { a -> b }", "dot", "svg", path), 0, "%s", ct_last_error());
  size_t n0, n1;
  char *before = slurp(path, &n0);
  cr_assert(n0 > 100 && strstr(before, "<svg"));
  ct_interrupt_request();
  cr_assert_eq(viz_render("digraph { a -> b -> c -> d }", "dot", "svg", path), -1);
  ct_interrupt_clear();
  cr_assert_str_eq(ct_last_error(), "viz: interrupted");
  char *after = slurp(path, &n1);
  cr_assert(n0 == n1 && !memcmp(before, after, n0), "the earlier picture changed");
  cr_assert_eq(count_entries(dir), 1, "a temporary file was left beside the picture");
  cr_assert_eq(viz_render("digraph { a -> b -> c -> d }", "dot", "svg", path), 0, "%s", ct_last_error());
  free(after);
  after = slurp(path, &n1);
  cr_assert(strstr(after, ">d<"), "the new picture replaced the old one");
  cr_assert_eq(count_entries(dir), 1);
  free(before), free(after);
  unlink(path);
  rmdir(dir);
}
