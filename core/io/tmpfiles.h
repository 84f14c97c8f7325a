/* tmpfiles.h: names of the temporary files atomic writers put beside their target, and the
 * cleanup of those a killed writer left behind (tmpfiles.c). */
#ifndef CHALK_IO_TMPFILES_H
#define CHALK_IO_TMPFILES_H

#include <stddef.h>

/* "<path>.tmp.<pid>.XXXXXX" into buf (a mkstemp template); -1 when buf is too small. */
int ct_tmp_template(char *buf, size_t n, const char *path);
/* Removes "<path>.tmp.<pid>.XXXXXX" files whose writer process no longer exists, and old-style
   "<path>.tmp.XXXXXX" files untouched for an hour. Best effort: errors are ignored. */
void ct_tmp_clean_stale(const char *path);

#endif
