/* nccl_load.c: fills the NCCL table (nccl_api.h) by dlopen-ing libnccl.so.2 at the first use, as
 * kernels/cublas_dyn.c does for cuBLAS: nothing of NCCL at build or link time, and a CPU-only run
 * never opens it.
 * Invariants: $CHALK_NCCL, when set, is the only place tried; else the nvidia-nccl wheel under
 * Python's usual site-packages folders (or where python3 says it is), then the loader's search path and the first
 * library that has every symbol wins; the outcome of the first attempt is kept, and a failure names every place tried
 * and why. */
#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chalk.h"
#include "dist/nccl_api.h"

ct_nccl_api ct_nccl;

static int tried, loaded, version;
static char why[1400], where[512];

static void note(const char *what, const char *err) {
  size_t n = strlen(why);
  snprintf(why + n, sizeof why - n, "%s%s: %s", n ? "; " : "", what, err);
}

static int resolve(void *lib, const char *path) {
#define CT_NCCL_SYM(field)                                                                                             \
  do {                                                                                                                 \
    *(void **)&ct_nccl.field = dlsym(lib, "nccl" #field);                                                              \
    if (!ct_nccl.field) return note(path, "no symbol nccl" #field " (NCCL 2.7 or later needed)"), -1;                  \
  } while (0)
  CT_NCCL_SYM(GetVersion);
  CT_NCCL_SYM(GetUniqueId);
  CT_NCCL_SYM(CommInitRank);
  CT_NCCL_SYM(CommInitAll);
  CT_NCCL_SYM(CommDestroy);
  CT_NCCL_SYM(CommGetAsyncError);
  CT_NCCL_SYM(GetErrorString);
  CT_NCCL_SYM(GetLastError);
  CT_NCCL_SYM(AllReduce);
  CT_NCCL_SYM(ReduceScatter);
  CT_NCCL_SYM(AllGather);
  CT_NCCL_SYM(Broadcast);
  CT_NCCL_SYM(Reduce);
  CT_NCCL_SYM(Send);
  CT_NCCL_SYM(Recv);
  CT_NCCL_SYM(GroupStart);
  CT_NCCL_SYM(GroupEnd);
#undef CT_NCCL_SYM
  return 0;
}

static int try_open(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *e = dlerror();
    note(path, e ? e : "cannot be opened");
    return -1;
  }
  if (resolve(lib, path)) {
    ct_nccl = (ct_nccl_api){0};
    dlclose(lib);
    return -1;
  }
  if (ct_nccl.GetVersion(&version)) version = 0;
  snprintf(where, sizeof where, "%s", path);
  return 0;
}

/* Adds the matches of dir/nvidia/nccl/lib/libnccl.so.2 (dir a glob pattern) to g. */
static void add(glob_t *g, int *flags, const char *dir) {
  char pat[1100];
  snprintf(pat, sizeof pat, "%.1024s/nvidia/nccl/lib/libnccl.so.2", dir);
  glob(pat, *flags, NULL, g);
  *flags = GLOB_APPEND;
}

/* The wheel's library under every usual site-packages folder (PYTHONPATH, venv, conda, user,
   system, pyenv). */
static int try_wheel(void) {
  static const char *const fixed[] = {"/usr/local/lib/python3*/*-packages",
                                      "/usr/lib/python3*/*-packages",
                                      "/opt/*/lib/python3*/site-packages",
                                      "/opt/*/.venv/lib/python3*/site-packages",
                                      "/root/.pyenv/versions/*/lib/python3*/site-packages",
                                      NULL};
  char dir[1024];
  glob_t g = {0};
  int flags = 0;
  const char *pp = getenv("PYTHONPATH");
  if (pp && *pp) {
    char *copy = strdup(pp), *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) add(&g, &flags, d);
    free(copy);
  }
  static const char *const prefixes[] = {"VIRTUAL_ENV", "CONDA_PREFIX", NULL};
  for (int i = 0; prefixes[i]; i++) {
    const char *r = getenv(prefixes[i]);
    if (r && *r) snprintf(dir, sizeof dir, "%s/lib/python3*/site-packages", r), add(&g, &flags, dir);
  }
  const char *home = getenv("HOME");
  if (home && *home) snprintf(dir, sizeof dir, "%s/.local/lib/python3*/site-packages", home), add(&g, &flags, dir);
  for (int i = 0; fixed[i]; i++) add(&g, &flags, fixed[i]);
  if (!g.gl_pathc) { /* elsewhere: ask python3 where the package is (only when the usual places failed) */
    FILE *py = popen("python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null", "r");
    char line[1024] = "";
    if (py && fgets(line, sizeof line, py)) line[strcspn(line, "\n")] = 0;
    if (py) pclose(py);
    if (*line) snprintf(dir, sizeof dir, "%.1000s/../..", line), add(&g, &flags, dir);
  }
  int rc = -1;
  for (size_t i = 0; i < g.gl_pathc && rc; i++) rc = try_open(g.gl_pathv[i]);
  if (!g.gl_pathc) note("the nvidia-nccl wheel", "not found under Python's site-packages (nor by python3)");
  globfree(&g);
  return rc;
}

int ct_nccl_load(void) {
  if (!tried) {
    tried = 1;
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    const char *env = getenv("CHALK_NCCL");
    if (env && *env) {
      char path[1100];
      struct stat st;
      if (!stat(env, &st) && S_ISDIR(st.st_mode))
        snprintf(path, sizeof path, "%.1024s/libnccl.so.2", env);
      else
        snprintf(path, sizeof path, "%.1024s", env);
      loaded = !try_open(path); /* what was asked for, or an error: never another library */
    } else {
      loaded = !try_wheel() || !try_open("libnccl.so.2");
    }
  }
  return loaded
             ? 0
             : ct_errorf("NCCL is not available: %s (pip install nvidia-nccl-cu13, or set CHALK_NCCL to libnccl.so.2)",
                         why);
}

const char *ct_nccl_where(void) { return where; }
int ct_nccl_version(void) { return version; }
