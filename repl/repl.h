/* repl.h: what the files of the chalk executable (repl/) share with one another. */
#ifndef CHALK_REPL_H
#define CHALK_REPL_H

#include <stdbool.h>
#include <stddef.h>

#include "lua.h"

#define CHALK_VERSION "0.1.0"
#define CHALK_PROMPT "> "
#define CHALK_PROMPT2 ">> "

/* The Lua binding (lua/, linked from libchalk_lua.a) opens the chalk table with this. */
int luaopen_chalk(lua_State *L);

/* The core's interrupt flag (core/tensor/interrupt.c; standalone.c stands in for it). */
void ct_interrupt_request(void);
void ct_interrupt_clear(void);

/* Settings from the command line that several files consult. */
typedef struct {
  const char *progname; /* argv[0], for messages */
  const char *out_dir;  /* where pictures go: --out, $CHALK_OUT or ./chalk-out */
  bool open_pictures;   /* --open: hand each picture to xdg-open */
  const char *serve_host; /* --host: the address the page is served on (default 127.0.0.1) */
} repl_settings;
extern repl_settings repl_config;

/* ---- repl.c: running code, and the interactive loop ---------------------------------------- */
/* Install the SIGINT handler that turns Ctrl-C into the Lua error "interrupted!". */
void repl_init_signals(lua_State *L);
/* Re-executes once with OPENBLAS_CORETYPE set when OpenBLAS would misdetect the CPU. */
void repl_tune_blas(char **argv);
/* lua_pcall with a traceback message handler and Ctrl-C armed; pops the function and narg
   arguments, pushes nres results (or the error message, traceback included). */
int repl_docall(lua_State *L, int narg, int nres);
/* Print the message on top of the stack (if status is an error) to stderr and pop it. */
int repl_report(lua_State *L, int status);
/* Compile and run code as the prompt does: a bare expression prints its values. Errors are
   reported on stderr. Leaves the stack as it found it; returns the Lua status. */
int repl_run_code(lua_State *L, const char *code, size_t len, const char *chunkname);
/* The interactive loop, until Ctrl-D or :quit. */
void repl_loop(lua_State *L);

/* ---- complete.c: Tab completion of globals, fields and methods ---------------------------- */
void complete_init(lua_State *L);

/* ---- meta.c: the colon commands ------------------------------------------------------------ */
enum { META_OK, META_QUIT };
/* Whether a line typed at the prompt is a colon command (":help", not "::label::"). */
bool meta_is_command(const char *line);
int meta_run(lua_State *L, const char *line);
void meta_print_help(void);
/* The name of the i-th command ("help"), NULL past the last. */
const char *meta_command_name(int i);

/* ---- lesson.c (and the embedded lesson.lua): the lesson runner ----------------------------- */
/* Load the runner; call once the chalk table and globals are in place. */
void lesson_init(lua_State *L, const char *argv0);
/* Call the runner's function fn (list, start, next, back, step, auto) with up to two string
   arguments (NULL for none); returns its boolean result (false on any error). */
bool lesson_call(lua_State *L, const char *fn, const char *arg1, const char *arg2);
/* Push the list of lesson names found (for completion); an empty list when none. */
void lesson_push_names(lua_State *L);
/* The prompt while a lesson is running ("lesson 3/7> "), or NULL when none is. */
const char *lesson_prompt(lua_State *L, char *buf, size_t size);

/* ---- picture.c: announcing the pictures the binding writes -------------------------------- */
/* Set chalk.on_picture (the table is on top of the stack) to the REPL's presenter. */
void picture_install(lua_State *L, int chalk_index);
/* Show a picture again (:show); false when there is none yet. */
bool picture_show_last(void);
/* The base64 text of n bytes (malloc'd, NUL-terminated; its length in *out_len), or NULL. */
char *repl_base64(const unsigned char *in, size_t n, size_t *out_len);

#endif
