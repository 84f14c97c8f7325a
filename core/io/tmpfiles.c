/* tmpfiles.c: temporary-file names of atomic writers, and cleanup of those killed writers left. */
#include "io/tmpfiles.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OLD_TEMP_AGE_S 3600 /* a "<path>.tmp.XXXXXX" without a pid is stale after an hour */

int ct_tmp_template(char *buf, size_t n, const char *path) {
  int w = snprintf(buf, n, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
  return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* Whether name (a directory entry) is a temporary of base left by a writer that is gone. */
static bool is_stale(const char *dir, const char *name, const char *base) {
  size_t bl = strlen(base);
  if (strncmp(name, base, bl) || strncmp(name + bl, ".tmp.", 5)) return false;
  const char *rest = name + bl + 5, *dot = strchr(rest, '.');
  if (dot && dot > rest && strlen(dot + 1) == 6) { /* <pid>.XXXXXX */
    char *end;
    long pid = strtol(rest, &end, 10);
    if (end != dot || pid <= 0) return false;
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
  }
  if (dot || strlen(rest) != 6) return false; /* old style: XXXXXX, judged by age */
  char full[4096];
  struct stat st;
  if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, name) >= sizeof full || stat(full, &st) != 0) return false;
  return time(NULL) - st.st_mtime > OLD_TEMP_AGE_S;
}

void ct_tmp_clean_stale(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (slash) {
    size_t dl = (size_t)(slash - path);
    if (dl >= sizeof dir) return;
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    if (!dl) strcpy(dir, "/");
  } else {
    strcpy(dir, ".");
  }
  const char *base = slash ? slash + 1 : path;
  if (!*base) return;
  DIR *d = opendir(dir);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    if (!is_stale(dir, e->d_name, base)) continue;
    char full[4096];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, e->d_name) < sizeof full) unlink(full);
  }
  closedir(d);
}
