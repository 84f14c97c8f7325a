/* serialize.c: chalk's save format (tensors and nested tables of them) and NumPy .npy files.
 *
 * Invariants:
 *  - Every file is written atomically: into a temporary file in the destination's directory,
 *    flushed, fsync'd, renamed over the destination, and the directory fsync'd. A crash or a kill
 *    at any moment leaves either the old file or the new one, never a mixture; a killed writer
 *    leaves at most a stray "<name>.tmp.<pid>.XXXXXX" beside it, which the next save to <name>
 *    removes (io/tmpfiles.c).
 *  - A save file ends with a trailer holding the payload length and its CRC32 (zlib); load checks
 *    both before it trusts a byte, and bounds-checks every record while parsing.
 *  - Numbers in both formats are little-endian, as on every machine chalk runs on (x86-64, arm64).
 *
 * Save file layout:
 *   "CHALKSV1"                                   8 bytes
 *   records (prefix order of the value tree)     the payload
 *   "CHALKEND" u64 payload_len u32 crc32(payload)
 * Records: 't' u32 n (n key/value pairs follow), 'n' f64, 'i' i64, 's' u32 len bytes, 'b' u8,
 *   'T' u8 dtype-name-len name u8 ndim i64 shape[ndim] u8 flags(1=requires_grad)
 *       u16 name-len name u64 nbytes data (contiguous, row-major).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/tmpfiles.h"
#include "ops/optable.h"
#include "tensor/checked.h"

static const char SAVE_MAGIC[8] = {'C', 'H', 'A', 'L', 'K', 'S', 'V', '1'};
static const char SAVE_END[8] = {'C', 'H', 'A', 'L', 'K', 'E', 'N', 'D'};
#define TRAILER_SIZE (8 + 8 + 4)

/* ---- atomic files ------------------------------------------------------------------------- */

typedef struct {
  FILE *f;
  char *path, *tmp;
  const char *op;
  uLong crc;      /* CRC32 of the bytes written since crc_on */
  uint64_t count; /* bytes written since crc_on */
  bool crc_on;
} atomic_file;

static int atomic_open(atomic_file *a, const char *path, const char *op) {
  memset(a, 0, sizeof *a);
  a->op = op;
  a->path = strdup(path);
  size_t n = strlen(path) + 40;
  a->tmp = malloc(n);
  if (!a->path || !a->tmp || ct_tmp_template(a->tmp, n, path)) {
    free(a->path), free(a->tmp);
    return ct_errorf("%s: out of memory", op);
  }
  ct_tmp_clean_stale(path); /* temporaries of writers killed before their rename */
  int fd = mkstemp(a->tmp);
  if (fd < 0) {
    int e = errno;
    free(a->path), free(a->tmp);
    return ct_errorf("%s: cannot create a temporary file beside %s: %s", op, path, strerror(e));
  }
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    int e = errno;
    close(fd);
    unlink(a->tmp);
    free(a->path), free(a->tmp);
    return ct_errorf("%s: cannot write %s: %s", op, path, strerror(e));
  }
  a->crc = crc32(0L, Z_NULL, 0);
  return 0;
}

static int atomic_write(atomic_file *a, const void *p, size_t n) {
  if (n == 0) return 0;
  if (fwrite(p, 1, n, a->f) != n) return ct_errorf("%s: writing %s failed: %s", a->op, a->path, strerror(errno));
  if (a->crc_on) {
    const Bytef *b = p;
    for (size_t left = n; left > 0;) { /* crc32 takes a uInt length */
      uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
      a->crc = crc32(a->crc, b, chunk);
      b += chunk, left -= chunk;
    }
    a->count += n;
  }
  return 0;
}

static void atomic_abort(atomic_file *a) {
  if (a->f) fclose(a->f);
  unlink(a->tmp);
  free(a->path), free(a->tmp);
  a->f = NULL;
}

static int atomic_commit(atomic_file *a) {
  int rc = 0;
  if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
    rc = ct_errorf("%s: writing %s failed: %s", a->op, a->path, strerror(errno));
  if (fclose(a->f) != 0 && rc == 0) rc = ct_errorf("%s: closing %s failed: %s", a->op, a->path, strerror(errno));
  a->f = NULL;
  if (rc == 0 && rename(a->tmp, a->path) != 0)
    rc = ct_errorf("%s: cannot rename the temporary file onto %s: %s", a->op, a->path, strerror(errno));
  if (rc != 0) {
    unlink(a->tmp);
  } else { /* make the rename itself durable */
    char *dcopy = strdup(a->path);
    if (dcopy) {
      int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY);
      if (dfd >= 0) fsync(dfd), close(dfd);
      free(dcopy);
    }
  }
  free(a->path), free(a->tmp);
  return rc;
}

static int read_whole_file(const char *path, const char *op, unsigned char **out, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return ct_errorf("%s: cannot open %s: %s", op, path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return ct_errorf("%s: %s is not a regular file", op, path);
  }
  size_t size = (size_t)st.st_size;
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf) {
    fclose(f);
    return ct_errorf("%s: out of memory reading %zu bytes from %s", op, size, path);
  }
  size_t got = fread(buf, 1, size, f);
  fclose(f);
  if (got != size) {
    free(buf);
    return ct_errorf("%s: reading %s failed (%zu of %zu bytes)", op, path, got, size);
  }
  *out = buf;
  *n = size;
  return 0;
}

/* ---- chalk save files: writing ---------------------------------------------------------- */

struct ct_saver {
  atomic_file file;
};

ct_saver *ct_save_open(const char *path) {
  ct_saver *s = calloc(1, sizeof *s);
  if (!s) return ct_errorf("save: out of memory"), NULL;
  if (atomic_open(&s->file, path, "save") < 0 || atomic_write(&s->file, SAVE_MAGIC, 8) < 0) {
    if (s->file.f) atomic_abort(&s->file);
    free(s);
    return NULL;
  }
  s->file.crc_on = true;
  return s;
}

static int put_u8(ct_saver *s, unsigned v) {
  unsigned char b = (unsigned char)v;
  return atomic_write(&s->file, &b, 1);
}
#define PUT(s, v) atomic_write(&(s)->file, &(v), sizeof(v))

int ct_save_table(ct_saver *s, uint32_t npairs) { return put_u8(s, 't') < 0 ? -1 : PUT(s, npairs); }
int ct_save_number(ct_saver *s, double v) { return put_u8(s, 'n') < 0 ? -1 : PUT(s, v); }
int ct_save_integer(ct_saver *s, int64_t v) { return put_u8(s, 'i') < 0 ? -1 : PUT(s, v); }
int ct_save_bool(ct_saver *s, bool v) { return put_u8(s, 'b') < 0 ? -1 : put_u8(s, v ? 1 : 0); }

int ct_save_string(ct_saver *s, const char *str, size_t len) {
  if (len > UINT32_MAX) return ct_errorf("save: a string of %zu bytes is too long", len);
  uint32_t n = (uint32_t)len;
  if (put_u8(s, 's') < 0 || PUT(s, n) < 0) return -1;
  return atomic_write(&s->file, str, len);
}

int ct_save_tensor(ct_saver *s, const ct_tensor *t) {
  const char *dname = ct_dtype_name(t->dtype);
  size_t dlen = strlen(dname), nlen = t->name ? strlen(t->name) : 0;
  if (nlen > UINT16_MAX) nlen = UINT16_MAX;
  uint64_t nbytes = (uint64_t)ct_numel(t) * ct_dtype_size(t->dtype);
  uint16_t nlen16 = (uint16_t)nlen;
  if (put_u8(s, 'T') < 0 || put_u8(s, (unsigned)dlen) < 0 || atomic_write(&s->file, dname, dlen) < 0 ||
      put_u8(s, (unsigned)t->ndim) < 0 || atomic_write(&s->file, t->shape, sizeof(int64_t) * (size_t)t->ndim) < 0 ||
      put_u8(s, t->requires_grad ? 1 : 0) < 0 || PUT(s, nlen16) < 0 || atomic_write(&s->file, t->name, nlen) < 0 ||
      PUT(s, nbytes) < 0)
    return -1;
  if (t->storage->device.type == CT_CPU && ct_is_contiguous(t))
    return atomic_write(&s->file, ct_data_ptr(t), (size_t)nbytes);
  void *buf = malloc(nbytes ? (size_t)nbytes : 1);
  if (!buf) return ct_errorf("save: out of memory staging %llu bytes", (unsigned long long)nbytes);
  int rc = ct_read_host(t, buf);
  if (rc == 0) rc = atomic_write(&s->file, buf, (size_t)nbytes);
  free(buf);
  return rc;
}

int ct_save_commit(ct_saver *s) {
  uint64_t len = s->file.count;
  uint32_t crc = (uint32_t)s->file.crc;
  s->file.crc_on = false;
  int rc = atomic_write(&s->file, SAVE_END, 8);
  if (rc == 0) rc = PUT(s, len);
  if (rc == 0) rc = PUT(s, crc);
  if (rc == 0) rc = atomic_commit(&s->file);
  else atomic_abort(&s->file);
  free(s);
  return rc;
}

void ct_save_abort(ct_saver *s) {
  if (!s) return;
  atomic_abort(&s->file);
  free(s);
}

/* ---- chalk save files: reading ---------------------------------------------------------- */

struct ct_loader {
  unsigned char *buf;
  size_t pos, end; /* payload is buf[8 .. end) */
  char *path;
};

ct_loader *ct_load_open(const char *path) {
  unsigned char *buf;
  size_t n;
  if (read_whole_file(path, "load", &buf, &n) < 0) return NULL;
  if (n < 8 || memcmp(buf, SAVE_MAGIC, 8) != 0) {
    free(buf);
    return ct_errorf("load: %s is not a chalk save file (it does not start with CHALKSV1)", path), NULL;
  }
  if (n < 8 + TRAILER_SIZE || memcmp(buf + n - TRAILER_SIZE, SAVE_END, 8) != 0) {
    free(buf);
    return ct_errorf("load: %s is truncated: it has no end marker (was its writer interrupted?)", path), NULL;
  }
  uint64_t len;
  uint32_t crc;
  memcpy(&len, buf + n - TRAILER_SIZE + 8, 8);
  memcpy(&crc, buf + n - 4, 4);
  if (len != n - 8 - TRAILER_SIZE) {
    free(buf);
    return ct_errorf("load: %s is corrupt: its trailer records %llu payload bytes, the file holds %zu", path,
                     (unsigned long long)len, n - 8 - TRAILER_SIZE), NULL;
  }
  uLong c = crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < len;) {
    uInt chunk = len - off > (1u << 30) ? (1u << 30) : (uInt)(len - off);
    c = crc32(c, buf + 8 + off, chunk);
    off += chunk;
  }
  if ((uint32_t)c != crc) {
    free(buf);
    return ct_errorf("load: %s is corrupt: checksum mismatch (stored crc32 %08x, computed %08x)", path, crc,
                     (uint32_t)c), NULL;
  }
  ct_loader *l = calloc(1, sizeof *l);
  char *p = strdup(path);
  if (!l || !p) {
    free(l), free(p), free(buf);
    return ct_errorf("load: out of memory"), NULL;
  }
  l->buf = buf;
  l->pos = 8;
  l->end = 8 + (size_t)len;
  l->path = p;
  return l;
}

static int take(ct_loader *l, void *dst, size_t n) {
  if (n > l->end - l->pos)
    return ct_errorf("load: %s is corrupt: a record runs past the end of the data (offset %zu)", l->path, l->pos);
  if (dst) memcpy(dst, l->buf + l->pos, n);
  l->pos += n;
  return 0;
}

bool ct_load_done(const ct_loader *l) { return l->pos >= l->end; }

int ct_load_next(ct_loader *l, ct_saved_value *v) {
  memset(v, 0, sizeof *v);
  unsigned char tag = 0;
  if (take(l, &tag, 1) < 0) return -1;
  switch (tag) {
  case 't': v->kind = CT_SAVED_TABLE; return take(l, &v->count, 4);
  case 'n': v->kind = CT_SAVED_NUMBER; return take(l, &v->number, 8);
  case 'i': v->kind = CT_SAVED_INTEGER; return take(l, &v->integer, 8);
  case 'b': {
    unsigned char b = 0;
    v->kind = CT_SAVED_BOOL;
    if (take(l, &b, 1) < 0) return -1;
    v->boolean = b != 0;
    return 0;
  }
  case 's': {
    uint32_t n = 0;
    v->kind = CT_SAVED_STRING;
    if (take(l, &n, 4) < 0) return -1;
    v->str = (const char *)l->buf + l->pos;
    v->len = n;
    return take(l, NULL, n);
  }
  case 'T': {
    unsigned char dlen = 0, ndim = 0, flags = 0;
    char dname[32];
    uint16_t nlen = 0;
    uint64_t nbytes = 0;
    int64_t shape[CT_MAX_DIMS];
    ct_dtype dt;
    if (take(l, &dlen, 1) < 0 || dlen >= sizeof dname || take(l, dname, dlen) < 0)
      return ct_errorf("load: %s is corrupt: bad dtype field at offset %zu", l->path, l->pos);
    dname[dlen] = 0;
    if (ct_dtype_from_name(dname, &dt) < 0)
      return ct_errorf("load: %s holds a tensor of unknown dtype '%s'", l->path, dname);
    if (take(l, &ndim, 1) < 0) return -1;
    if (ndim > CT_MAX_DIMS) return ct_errorf("load: %s is corrupt: a tensor of %d dims", l->path, ndim);
    if (take(l, shape, 8 * (size_t)ndim) < 0 || take(l, &flags, 1) < 0 || take(l, &nlen, 2) < 0) return -1;
    const char *name = (const char *)l->buf + l->pos;
    if (take(l, NULL, nlen) < 0 || take(l, &nbytes, 8) < 0) return -1;
    int64_t numel, want;
    for (int d = 0; d < ndim; d++)
      if (shape[d] < 0) return ct_errorf("load: %s is corrupt: negative size in a tensor's shape", l->path);
    if (!ct_shape_numel(shape, ndim, &numel) || !ct_size_mul(numel, (int64_t)ct_dtype_size(dt), &want)) {
      char sb[160];
      return ct_errorf("load: %s is corrupt: size too large: a tensor of shape %s", l->path, ct_shape_str(shape, ndim, sb, sizeof sb));
    }
    if ((uint64_t)want != nbytes || nbytes > l->end - l->pos)
      return ct_errorf("load: %s is corrupt: a tensor's data size does not match its shape", l->path);
    ct_tensor *t = ct_from_data(l->buf + l->pos, shape, ndim, dt, ct_cpu());
    if (!t) return -1;
    l->pos += (size_t)nbytes;
    if (nlen) {
      char *nm = strndup(name, nlen);
      if (nm) ct_set_name(t, nm);
      free(nm);
    }
    if ((flags & 1) && ct_dtype_is_float(dt)) t->requires_grad = true;
    v->kind = CT_SAVED_TENSOR;
    v->tensor = t;
    return 0;
  }
  default:
    return ct_errorf("load: %s is corrupt: unknown record tag 0x%02x at offset %zu", l->path, tag, l->pos - 1);
  }
}

void ct_load_close(ct_loader *l) {
  if (!l) return;
  free(l->buf);
  free(l->path);
  free(l);
}

/* ---- NumPy .npy ------------------------------------------------------------------------- */

static const char *npy_descr(ct_dtype dt) {
  switch (dt) {
  case CT_F32: return "<f4";
  case CT_F64: return "<f8";
  case CT_F16: return "<f2";
  case CT_I32: return "<i4";
  case CT_I64: return "<i8";
  case CT_I8: return "|i1";
  case CT_BOOL: return "|b1";
  default: return NULL;
  }
}

int ct_npy_save(const ct_tensor *t, const char *path) {
  const char *descr = npy_descr(t->dtype);
  if (!descr)
    return ct_errorf("save_npy: NumPy has no %s dtype; convert first (x:to(\"f32\"))", ct_dtype_name(t->dtype));
  char hdr[512];
  int k = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int d = 0; d < t->ndim; d++) k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%lld, ", (long long)t->shape[d]);
  if (t->ndim > 1) k -= 2; /* (2, 3) but (5,) */
  else if (t->ndim == 1) k -= 1;
  k += snprintf(hdr + k, sizeof hdr - (size_t)k, "), }");
  size_t total = 10 + (size_t)k + 1, padded = (total + 63) / 64 * 64; /* magic+ver+len, header, '\n' */
  while ((size_t)k < padded - 10 - 1) hdr[k++] = ' ';
  hdr[k++] = '\n';
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(k & 0xff), (unsigned char)(k >> 8)};
  atomic_file a;
  if (atomic_open(&a, path, "save_npy") < 0) return -1;
  size_t nbytes = (size_t)ct_numel(t) * ct_dtype_size(t->dtype);
  int rc = atomic_write(&a, pre, 10);
  if (rc == 0) rc = atomic_write(&a, hdr, (size_t)k);
  if (rc == 0) {
    if (t->storage->device.type == CT_CPU && ct_is_contiguous(t) && t->dtype != CT_BOOL) {
      rc = atomic_write(&a, ct_data_ptr(t), nbytes);
    } else {
      unsigned char *buf = malloc(nbytes ? nbytes : 1);
      if (!buf) rc = ct_errorf("save_npy: out of memory staging %zu bytes", nbytes);
      else rc = ct_read_host(t, buf);
      if (rc == 0 && t->dtype == CT_BOOL) /* numpy's bools are exactly 0 or 1 */
        for (size_t i = 0; i < nbytes; i++) buf[i] = buf[i] != 0;
      if (rc == 0) rc = atomic_write(&a, buf, nbytes);
      free(buf);
    }
  }
  if (rc != 0) {
    atomic_abort(&a);
    return -1;
  }
  return atomic_commit(&a);
}

/* Finds 'key': in the header dict and returns a pointer just past the colon and spaces. */
static const char *npy_field(const char *hdr, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  const char *p = strstr(hdr, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ' || *p == ':') p++;
  return p;
}

ct_tensor *ct_npy_load(const char *path) {
  unsigned char *buf;
  size_t n;
  if (read_whole_file(path, "load_npy", &buf, &n) < 0) return NULL;
  ct_tensor *result = NULL;
  char *hdr = NULL;
  if (n < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
    ct_errorf("load_npy: %s is not a .npy file (no \\x93NUMPY magic)", path);
    goto done;
  }
  int major = buf[6];
  size_t hlen, hstart;
  if (major == 1) hlen = buf[8] | (size_t)buf[9] << 8, hstart = 10;
  else if ((major == 2 || major == 3) && n >= 12)
    hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24, hstart = 12;
  else {
    ct_errorf("load_npy: %s has .npy format version %d.%d, which chalk does not read", path, major, buf[7]);
    goto done;
  }
  if (hstart + hlen > n) {
    ct_errorf("load_npy: %s is truncated inside its header", path);
    goto done;
  }
  hdr = strndup((const char *)buf + hstart, hlen);
  if (!hdr) {
    ct_errorf("load_npy: out of memory");
    goto done;
  }
  const char *dp = npy_field(hdr, "descr"), *fp = npy_field(hdr, "fortran_order"), *sp = npy_field(hdr, "shape");
  if (!dp || !fp || !sp || *dp != '\'' || *sp != '(') {
    ct_errorf("load_npy: %s has a header chalk cannot parse: %.200s", path, hdr);
    goto done;
  }
  char descr[16] = {0};
  size_t dl = strcspn(dp + 1, "'");
  if (dl >= sizeof descr) dl = sizeof descr - 1;
  memcpy(descr, dp + 1, dl);
  bool fortran = strncmp(fp, "True", 4) == 0;
  int64_t shape[CT_MAX_DIMS];
  int ndim = 0;
  const char *q = sp + 1;
  while (*q && *q != ')') {
    while (*q == ' ' || *q == ',') q++;
    if (*q == ')') break;
    char *endp;
    long long v = strtoll(q, &endp, 10);
    if (endp == q || v < 0 || ndim == CT_MAX_DIMS) {
      ct_errorf("load_npy: %s has a shape chalk cannot read (%.60s; at most %d dims)", path, sp, CT_MAX_DIMS);
      goto done;
    }
    shape[ndim++] = v;
    q = endp;
  }
  /* byte order, kind, size: '<f4', '>i8', '|u1', '=f8' */
  char order = descr[0], kind = descr[1];
  int size = atoi(descr + 2);
  bool swap = order == '>';
  ct_dtype dt;
  if (kind == 'f' && size == 4) dt = CT_F32;
  else if (kind == 'f' && size == 8) dt = CT_F64;
  else if (kind == 'f' && size == 2) dt = CT_F16;
  else if (kind == 'i' && size == 4) dt = CT_I32;
  else if (kind == 'i' && size == 8) dt = CT_I64;
  else if (kind == 'i' && size == 1) dt = CT_I8;
  else if (kind == 'b' && size == 1) dt = CT_BOOL;
  else if ((kind == 'u' && (size == 1 || size == 2)) || (kind == 'i' && size == 2)) dt = CT_I32; /* widened */
  else if (kind == 'u' && size == 4) dt = CT_I64;
  else {
    ct_errorf("load_npy: %s has NumPy dtype '%s', which chalk does not read (f2/f4/f8, i1/i2/i4/i8, u1/u2/u4, b1)",
              path, descr);
    goto done;
  }
  int64_t inumel, ibytes;
  if (!ct_shape_numel(shape, ndim, &inumel) || !ct_size_mul(inumel, size, &ibytes)) {
    char sb[160];
    ct_errorf("load_npy: %s is corrupt: size too large: shape %s of '%s'", path, ct_shape_str(shape, ndim, sb, sizeof sb), descr);
    goto done;
  }
  uint64_t numel = (uint64_t)inumel;
  size_t dstart = hstart + hlen;
  if (numel * (uint64_t)size != n - dstart) {
    char sb[160];
    ct_errorf("load_npy: %s is %s: shape %s of '%s' needs %llu data bytes, the file holds %zu", path,
              numel * (uint64_t)size > n - dstart ? "truncated" : "corrupt", ct_shape_str(shape, ndim, sb, sizeof sb),
              descr, (unsigned long long)(numel * (uint64_t)size), n - dstart);
    goto done;
  }
  /* A Fortran-ordered array of shape (a,b,c) is a C-ordered one of shape (c,b,a), transposed. */
  int64_t fshape[CT_MAX_DIMS];
  for (int d = 0; d < ndim; d++) fshape[d] = fortran ? shape[ndim - 1 - d] : shape[d];
  ct_tensor *t = ct_empty(fshape, ndim, dt, ct_cpu());
  if (!t) goto done;
  unsigned char *src = buf + dstart;
  char *dst = t->storage->data;
  if (swap && size > 1)
    for (uint64_t i = 0; i < numel; i++) /* reverse each element's bytes in place */
      for (int b = 0; b < size / 2; b++) {
        unsigned char tmp = src[i * (uint64_t)size + (uint64_t)b];
        src[i * (uint64_t)size + (uint64_t)b] = src[i * (uint64_t)size + (uint64_t)(size - 1 - b)];
        src[i * (uint64_t)size + (uint64_t)(size - 1 - b)] = tmp;
      }
  if ((size_t)size == ct_dtype_size(dt)) {
    memcpy(dst, src, (size_t)(numel * (uint64_t)size));
    if (dt == CT_BOOL)
      for (uint64_t i = 0; i < numel; i++) dst[i] = dst[i] != 0;
  } else { /* widened unsigned / short integers */
    for (uint64_t i = 0; i < numel; i++) {
      const unsigned char *e = src + i * (uint64_t)size;
      int64_t v = size == 1 ? (kind == 'u' ? (int64_t)e[0] : (int64_t)(int8_t)e[0])
                : size == 2 ? (kind == 'u' ? (int64_t)(e[0] | e[1] << 8) : (int64_t)(int16_t)(e[0] | e[1] << 8))
                            : (int64_t)((uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 |
                                        (uint32_t)e[3] << 24);
      if (dt == CT_I32) ((int32_t *)dst)[i] = (int32_t)v;
      else ((int64_t *)dst)[i] = v;
    }
  }
  if (!fortran || ndim < 2) {
    result = t;
  } else {
    int perm[CT_MAX_DIMS];
    for (int d = 0; d < ndim; d++) perm[d] = ndim - 1 - d;
    ct_tensor *p = ct_permute(t, perm, ndim);
    ct_release(t);
    if (p) {
      ct_tensor *c = ct_contiguous(p);
      ct_release(p);
      result = c;
    }
  }
done:
  free(hdr);
  free(buf);
  return result;
}
