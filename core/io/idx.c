/* idx.c: reads IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain, with zlib.
 *
 * Invariants: every header field is checked before it is trusted (magic bytes, type code, rank,
 * sizes, their product against the bytes actually present); a short, long or corrupt file is an
 * error naming the file and what was wrong, never a partly filled tensor. The caller chooses the
 * result dtype and an affine map v*scale + shift (images: f32, 1/255, 0; labels: i64, 1, 1 so that
 * class values are 1-based as the user contract says).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cpu/iter.h"
#include "ops/optable.h"
#include "tensor/checked.h"

/* IDX element types (third magic byte) and their sizes in bytes. */
static int idx_type_size(int code) {
  switch (code) {
  case 0x08: return 1; /* unsigned byte */
  case 0x09: return 1; /* signed byte */
  case 0x0B: return 2; /* big-endian short */
  case 0x0C: return 4; /* big-endian int */
  case 0x0D: return 4; /* big-endian float */
  case 0x0E: return 8; /* big-endian double */
  default: return 0;
  }
}

static uint64_t be_uint(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

static double idx_value(int code, const unsigned char *p) {
  switch (code) {
  case 0x08: return p[0];
  case 0x09: return (int8_t)p[0];
  case 0x0B: return (int16_t)(uint16_t)be_uint(p, 2);
  case 0x0C: return (int32_t)(uint32_t)be_uint(p, 4);
  case 0x0D: {
    uint32_t u = (uint32_t)be_uint(p, 4);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
  }
  default: {
    uint64_t u = be_uint(p, 8);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
  }
  }
}

/* Reads exactly n bytes; a short read is an error naming what was being read. */
static int read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what) {
  size_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      int zerr;
      const char *msg = gzerror(f, &zerr);
      return ct_errorf("read_idx: %s is corrupt (%s while reading the %s)", path,
                       zerr == Z_ERRNO ? strerror(errno) : msg, what);
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  if (got < n) {
    int zerr;
    const char *msg = gzerror(f, &zerr);
    return ct_errorf("read_idx: %s is truncated: the %s needs %zu bytes, the file holds %zu%s%s", path,
                     what, n, got, zerr != Z_OK ? "; zlib: " : "", zerr != Z_OK ? msg : "");
  }
  return 0;
}

ct_tensor *ct_idx_read(const char *path, ct_dtype dt, double scale, double shift) {
  gzFile f = gzopen(path, "rb");
  if (!f) return ct_errorf("read_idx: cannot open %s: %s", path, strerror(errno ? errno : ENOENT)), NULL;
  gzbuffer(f, 1 << 18);
  unsigned char magic[4], dims[4 * CT_MAX_DIMS];
  unsigned char *raw = NULL;
  ct_tensor *t = NULL;
  char shbuf[160];
  if (read_exact(f, path, magic, 4, "magic number") < 0) goto done;
  int esize = idx_type_size(magic[2]);
  int ndim = magic[3];
  if (magic[0] != 0 || magic[1] != 0 || esize == 0) {
    ct_errorf("read_idx: %s is not an IDX file (magic number %02x %02x %02x %02x; expected 00 00, a type "
              "code 08/09/0b/0c/0d/0e, and the rank)", path, magic[0], magic[1], magic[2], magic[3]);
    goto done;
  }
  if (ndim < 1 || ndim > CT_MAX_DIMS) {
    ct_errorf("read_idx: %s declares %d dimensions (chalk reads 1 to %d)", path, ndim, CT_MAX_DIMS);
    goto done;
  }
  if (read_exact(f, path, dims, 4 * (size_t)ndim, "dimension sizes") < 0) goto done;
  int64_t shape[CT_MAX_DIMS];
  int64_t inumel = 1; /* checked: 2^36 * a 32-bit dim would wrap a plain product */
  for (int d = 0; d < ndim; d++) {
    shape[d] = (int64_t)be_uint(dims + 4 * d, 4);
    if (!ct_size_mul(inumel, shape[d], &inumel) || inumel > ((int64_t)1 << 36)) {
      ct_errorf("read_idx: %s declares an implausible size %s", path,
                ct_shape_str(shape, d + 1, shbuf, sizeof shbuf));
      goto done;
    }
  }
  size_t numel = (size_t)inumel;
  size_t nbytes = numel * (size_t)esize;
  /* both the raw bytes and the converted tensor must fit under the memory limit (tensor/memlimit.c):
     a crafted header must not make chalk ask for 2^36 * 8 bytes before reading a byte of data */
  size_t outbytes = numel * ct_dtype_size(dt);
  if (ct_check_alloc("read_idx", shape, ndim, dt, (int64_t)(nbytes > outbytes ? nbytes : outbytes))) goto done;
  raw = malloc(nbytes ? nbytes : 1);
  if (!raw) {
    ct_errorf("read_idx: out of memory reading %zu bytes from %s", nbytes, path);
    goto done;
  }
  char what[200];
  snprintf(what, sizeof what, "data of shape %s", ct_shape_str(shape, ndim, shbuf, sizeof shbuf));
  if (read_exact(f, path, raw, nbytes, what) < 0) goto done;
  unsigned char extra;
  int r = gzread(f, &extra, 1);
  if (r != 0) {
    int zerr;
    const char *msg = gzerror(f, &zerr);
    if (r < 0) ct_errorf("read_idx: %s is corrupt (%s after the data)", path, msg);
    else ct_errorf("read_idx: %s has bytes after the data its header declares (shape %s)", path, shbuf);
    goto done;
  }
  t = ct_empty(shape, ndim, dt, ct_cpu());
  if (!t) goto done;
  char *out = t->storage->data;
  size_t isz = ct_dtype_size(dt);
  if (magic[2] == 0x08 && dt == CT_F32) { /* the common case, kept tight: images to [0,1] */
    float *o = (float *)out, s = (float)scale, b = (float)shift;
    for (size_t i = 0; i < numel; i++) o[i] = raw[i] * s + b;
  } else if (magic[2] == 0x08 && dt == CT_I64) {
    int64_t *o = (int64_t *)out;
    for (size_t i = 0; i < numel; i++) o[i] = (int64_t)(raw[i] * scale + shift);
  } else {
    for (size_t i = 0; i < numel; i++)
      ct_store_from_double(dt, out + i * isz, idx_value(magic[2], raw + i * (size_t)esize) * scale + shift);
  }
done:
  free(raw);
  gzclose(f);
  return t;
}
