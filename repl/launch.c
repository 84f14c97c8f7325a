/* launch.c: chalk --nproc N [--hostfile FILE | --host LIST] ...: run this same command on N
 * processes through OpenMPI's mpirun, each a rank of dist.init()'s world (core/dist).
 *
 * The flags added are what root and small machines (containers, laptops) need: --allow-run-as-root,
 * --oversubscribe (more ranks than cores), and shared memory through the vader BTL without the
 * single-copy mechanism (CMA/XPMEM are refused inside most containers). --hostfile and --host pass
 * through, so a lab's machines run the same script across nodes. Flags after the script belong to
 * the script and are never read here. --backend nccl: CHALK_DIST_BACKEND=nccl for dist.init(), the
 * NCCL id sent over MPI; without MPI (or mpirun, or with CHALK_LAUNCHER=pipe) launch_nccl.c starts
 * the processes and pipes the id to them. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repl.h"

/* Defined only when chalk is linked with the MPI transport (core/dist/dist.mk). */
struct ct_dist_transport;
extern struct ct_dist_transport *ct_dist_mpi_world(int *rank) __attribute__((weak));

bool launch_wanted(int argc, char **argv);
int launch_mpirun(int argc, char **argv);
int launch_nccl_pipe(long n, const char *self, char **rest, int nrest); /* launch_nccl.c */

static bool on_path(const char *prog) {
  const char *path = getenv("PATH");
  char buf[4096];
  for (const char *p = path ? path : ""; *p;) {
    size_t n = strcspn(p, ":");
    snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
    if (n && access(buf, X_OK) == 0) return true;
    p += n + (p[n] == ':');
  }
  return false;
}

static bool flag_is(const char *a, const char *f) {
  size_t n = strlen(f);
  return strncmp(a, f, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

/* The flags of chalk that take a value in the next argument (so that value is not the script). */
static bool takes_value(const char *a) {
  static const char *const fl[] = {"--lesson", "--step", "--out", "--transcript", "--backend", NULL};
  if (strcmp(a, "-e") == 0) return true;
  for (int i = 0; fl[i]; i++)
    if (strcmp(a, fl[i]) == 0) return true;
  return false;
}

/* The value of --flag V or --flag=V at argv[*i]; NULL (said) when missing. */
static const char *value(int argc, char **argv, int *i, const char *f) {
  size_t n = strlen(f);
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (*i + 1 < argc) return argv[++*i];
  fprintf(stderr, "chalk: %s needs a value\n", f);
  return NULL;
}

int launch_mpirun(int argc, char **argv) {
  const char *np = NULL, *hostfile = NULL, *host = NULL, *backend = "mpi";
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  char **av = calloc((size_t)argc + 20, sizeof *av);
  if (!rest || !av) return fprintf(stderr, "chalk: out of memory\n"), 1;
  int nrest = 0, i = 1;
  for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "-") && strcmp(argv[i], "--"); i++) {
    const char **slot = flag_is(argv[i], "--nproc") ? &np : flag_is(argv[i], "--hostfile") ? &hostfile
                        : flag_is(argv[i], "--host") ? &host : flag_is(argv[i], "--backend") ? &backend : NULL;
    if (slot) {
      const char *f = slot == &np         ? "--nproc"
                      : slot == &hostfile ? "--hostfile"
                      : slot == &host     ? "--host"
                                          : "--backend";
      if (!(*slot = value(argc, argv, &i, f))) return free(rest), free(av), 1;
      continue;
    }
    if (flag_is(argv[i], "--serve") || flag_is(argv[i], "--transcript")) { /* N servers would fight for a port */
      fprintf(stderr, "chalk: %s does not go with --nproc: serve or record one process\n", argv[i]);
      return free(rest), free(av), 1;
    }
    rest[nrest++] = argv[i];
    if (takes_value(argv[i]) && i + 1 < argc) rest[nrest++] = argv[++i];
  }
  for (; i < argc; i++) rest[nrest++] = argv[i];
  char *end = NULL;
  long n = np ? strtol(np, &end, 10) : 0;
  if (!np || *end || n < 1 || n > 4096) {
    fprintf(stderr, "chalk: --nproc needs a number of processes (1 to 4096), got %s\n", np ? np : "nothing");
    return free(rest), free(av), 1;
  }
  bool nccl = !strcmp(backend, "nccl");
  if (!nccl && strcmp(backend, "mpi")) {
    fprintf(stderr, "chalk: --backend is mpi (the default) or nccl, got %s\n", backend);
    return free(rest), free(av), 1;
  }
  static char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return fprintf(stderr, "chalk: cannot find its own executable\n"), free(rest), free(av), 1;
  self[len] = '\0';
  const char *how = getenv("CHALK_LAUNCHER");
  if (nccl) {
    setenv("CHALK_DIST_BACKEND", "nccl", 1);
    setenv("NCCL_NVLS_ENABLE", "0", 0); /* NVLink multicast off unless asked for */
    if (!ct_dist_mpi_world || !on_path("mpirun") || (how && !strcmp(how, "pipe"))) {
      int rc = launch_nccl_pipe(n, self, rest, nrest);
      return free(rest), free(av), rc;
    }
  }
  if (!ct_dist_mpi_world) {
    fprintf(stderr, "chalk: --nproc needs OpenMPI, and this chalk was built without it: apt-get install openmpi-bin "
                    "libopenmpi-dev (or make deps), then make\n");
    return free(rest), free(av), 1;
  }
  int k = 0;
  const char *fixed[] = {"mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "--mca",
                         "btl_vader_single_copy_mechanism", "none", "-np", np};
  for (size_t j = 0; j < sizeof fixed / sizeof *fixed; j++) av[k++] = (char *)fixed[j];
  if (hostfile) av[k++] = "--hostfile", av[k++] = (char *)hostfile;
  if (host) av[k++] = "--host", av[k++] = (char *)host;
  if (hostfile || host) av[5] = "tcp,self,vader"; /* across nodes: TCP between hosts too */
  if (nccl) av[k++] = "-x", av[k++] = "CHALK_DIST_BACKEND", av[k++] = "-x", av[k++] = "NCCL_NVLS_ENABLE";
  av[k++] = self;
  for (int j = 0; j < nrest; j++) av[k++] = rest[j];
  av[k] = NULL;
  fflush(stdout);
  execvp("mpirun", av);
  fprintf(stderr, "chalk: cannot run mpirun (%s): apt-get install openmpi-bin libopenmpi-dev, or make deps\n",
          strerror(errno));
  free(rest);
  free(av);
  return 1;
}

bool launch_wanted(int argc, char **argv) {
  for (int i = 1; i < argc && argv[i][0] == '-' && strcmp(argv[i], "-") && strcmp(argv[i], "--"); i++) {
    if (flag_is(argv[i], "--nproc")) return true;
    if (takes_value(argv[i])) i++;
  }
  return false;
}
