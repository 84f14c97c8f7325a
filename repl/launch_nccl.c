/* launch_nccl.c: chalk --nproc N --backend nccl where MPI is absent (or CHALK_LAUNCHER=pipe): this
 * process makes the NCCL unique id, starts N copies of chalk with the same arguments (less
 * --nproc and --backend), gives each its rank in the environment (CHALK_NCCL_RANK, 0-based;
 * CHALK_NCCL_SIZE) and the id's 128 bytes over a pipe (fd CHALK_NCCL_ID_FD, read by dist.init()),
 * and waits for them.
 * Invariants: the parent lives until every child ended (NCCL's bootstrap root, started by
 * ncclGetUniqueId, runs in it); the first child that fails ends the others (SIGTERM) and its
 * status is the launcher's; each child holds only its own pipe's read end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* core/dist (libchalk); the id is CT_NCCL_ID_BYTES (dist/nccl_api.h) long */
#define ID_BYTES 128
int ct_dist_nccl_unique_id(void *out128);
const char *ct_last_error(void);

int launch_nccl_pipe(long n, const char *self, char **rest, int nrest);

static pid_t start(long rank, long n, const char *self, char **av, const char *id) {
  int p[2];
  if (pipe(p)) return fprintf(stderr, "chalk: pipe: %s\n", strerror(errno)), -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return fprintf(stderr, "chalk: fork: %s\n", strerror(errno)), close(p[0]), close(p[1]), -1;
  if (pid == 0) {
    char v[3][32];
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);
    snprintf(v[0], sizeof v[0], "%ld", rank);
    snprintf(v[1], sizeof v[1], "%ld", n);
    snprintf(v[2], sizeof v[2], "%d", p[0]);
    setenv("CHALK_NCCL_RANK", v[0], 1);
    setenv("CHALK_NCCL_SIZE", v[1], 1);
    setenv("CHALK_NCCL_ID_FD", v[2], 1);
    execv(self, av);
    fprintf(stderr, "chalk: cannot run %s: %s\n", self, strerror(errno));
    _exit(127);
  }
  close(p[0]);
  ssize_t k = write(p[1], id, ID_BYTES);
  close(p[1]);
  if (k != ID_BYTES) fprintf(stderr, "chalk: rank %ld did not take its NCCL id (it ended early)\n", rank + 1);
  return pid;
}

int launch_nccl_pipe(long n, const char *self, char **rest, int nrest) {
  char id[ID_BYTES];
  if (ct_dist_nccl_unique_id(id)) return fprintf(stderr, "chalk: --backend nccl: %s\n", ct_last_error()), 1;
  char **av = calloc((size_t)nrest + 2, sizeof *av);
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  if (!av || !pids) return free(av), free(pids), fprintf(stderr, "chalk: out of memory\n"), 1;
  av[0] = (char *)self;
  for (int j = 0; j < nrest; j++) av[j + 1] = rest[j];
  signal(SIGPIPE, SIG_IGN); /* a child that dies before reading its id is reported, not fatal here */
  setenv("CHALK_DIST_BACKEND", "nccl", 1);
  int status = 0;
  long live = 0;
  for (long r = 0; r < n && !status; r++) {
    pids[r] = start(r, n, self, av, id);
    if (pids[r] < 0)
      status = 1;
    else
      live++;
  }
  while (live > 0) {
    int st = 0;
    pid_t pid = wait(&st);
    if (pid < 0) break;
    live--;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code && !status) {
      status = code;
      for (long r = 0; r < n; r++)
        if (pids[r] > 0 && pids[r] != pid) kill(pids[r], SIGTERM);
    }
    for (long r = 0; r < n; r++)
      if (pids[r] == pid) pids[r] = 0;
  }
  free(av);
  free(pids);
  return status;
}
