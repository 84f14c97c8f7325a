/* picture.c: announcing pictures: print the path, show PNGs inline (kitty, iTerm2), --open. */
/*
 * The contract with the binding: whenever viz writes a picture it calls
 * chalk.on_picture(path) if that field is a function. The REPL sets it (in scripts too) to
 * l_on_picture below, which remembers the path for :show, prints "picture: PATH", shows a PNG
 * inline when stdout is a terminal that speaks the kitty or iTerm2 image protocol, and with
 * --open hands the file to xdg-open. It also logs the picture for the live page and :save (serve.c).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lauxlib.h"
#include "repl.h"
#include "serve.h"

#define INLINE_MAX_BYTES (16 << 20) /* bigger files are only named, not streamed inline */
#define KITTY_CHUNK 4096

static char last_picture[PATH_MAX];

typedef enum { PROTO_NONE, PROTO_KITTY, PROTO_ITERM } image_protocol;

static image_protocol detect_protocol(void) {
  if (!isatty(STDOUT_FILENO)) return PROTO_NONE;
  const char *term = getenv("TERM");
  const char *program = getenv("TERM_PROGRAM");
  if ((term && strstr(term, "kitty")) || getenv("KITTY_WINDOW_ID")) return PROTO_KITTY;
  if (program && (strcmp(program, "iTerm.app") == 0 || strcmp(program, "WezTerm") == 0)) return PROTO_ITERM;
  return PROTO_NONE;
}

static bool is_png(const char *path) {
  size_t n = strlen(path);
  return n >= 4 && strcasecmp(path + n - 4, ".png") == 0;
}

/* The whole file, or NULL (too big, unreadable). */
static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  unsigned char *data = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    if (size > 0 && size <= INLINE_MAX_BYTES && fseek(f, 0, SEEK_SET) == 0) {
      data = malloc((size_t)size);
      if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
      }
      *len = (size_t)size;
    }
  }
  fclose(f);
  return data;
}

char *repl_base64(const unsigned char *in, size_t n, size_t *out_len) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t len = 4 * ((n + 2) / 3);
  char *out = malloc(len + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < n) v |= in[i + 2];
    out[o++] = abc[(v >> 18) & 63];
    out[o++] = abc[(v >> 12) & 63];
    out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? abc[v & 63] : '=';
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

/* kitty graphics protocol: transmit and display a PNG, in chunks of at most 4096 bytes. */
static void show_kitty(const char *b64, size_t len) {
  for (size_t off = 0; off < len; off += KITTY_CHUNK) {
    size_t n = len - off < KITTY_CHUNK ? len - off : KITTY_CHUNK;
    int more = off + n < len;
    if (off == 0)
      printf("\033_Ga=T,f=100,q=2,m=%d;", more);
    else
      printf("\033_Gm=%d;", more);
    fwrite(b64 + off, 1, n, stdout);
    printf("\033\\");
  }
  printf("\n");
}

/* iTerm2 (and WezTerm) inline images: OSC 1337 File. */
static void show_iterm(const char *b64, size_t file_len) {
  printf("\033]1337;File=inline=1;size=%zu;preserveAspectRatio=1:%s\a\n", file_len, b64);
}

static void show_inline(const char *path) {
  image_protocol proto = detect_protocol();
  if (proto == PROTO_NONE || !is_png(path)) return;
  size_t len = 0, b64_len = 0;
  unsigned char *data = read_file(path, &len);
  if (data == NULL) return;
  char *b64 = repl_base64(data, len, &b64_len);
  if (b64) {
    if (proto == PROTO_KITTY)
      show_kitty(b64, b64_len);
    else
      show_iterm(b64, len);
  }
  free(b64);
  free(data);
}

/* Hand the file to xdg-open without waiting for the viewer (double fork, so no zombie). */
static void open_external(const char *path) {
  fflush(stdout);
  fflush(stderr);
  pid_t child = fork();
  if (child < 0) return;
  if (child == 0) {
    if (fork() == 0) {
      setsid();
      execlp("xdg-open", "xdg-open", path, (char *)NULL);
      fprintf(stderr, "chalk: cannot run xdg-open for %s\n", path);
      _exit(127);
    }
    _exit(0);
  }
  waitpid(child, NULL, 0);
}

static void show(const char *path) {
  printf("picture: %s\n", path);
  show_inline(path);
  fflush(stdout);
  if (repl_config.open_pictures) open_external(path);
}

/* chalk.on_picture(path) */
static int l_on_picture(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  snprintf(last_picture, sizeof last_picture, "%s", path);
  show(path);
  serve_picture(path); /* into the session log: the live page and :save */
  return 0;
}

void picture_install(lua_State *L, int chalk_index) {
  lua_pushcfunction(L, l_on_picture);
  lua_setfield(L, chalk_index, "on_picture");
}

bool picture_show_last(void) {
  if (last_picture[0] == '\0') return false;
  show(last_picture);
  return true;
}
