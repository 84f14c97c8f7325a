/* repl.c: running code with tracebacks and Ctrl-C, and the interactive Readline loop. */
/*
 * Invariants. Ctrl-C has one handler for the whole process: while Lua code runs (docall depth
 * above zero) it arms a hook that raises "interrupted!" in that code, as lua.c does; at the
 * prompt it sets a flag that read_line() answers by discarding the line. It also raises the core's
 * interrupt flag, which long C loops poll (they fail with "interrupted"); repeated presses never
 * end chalk. Readline is used
 * through its callback interface with its own signal handling off, so no longjmp crosses it
 * and a signal can never arrive half-way through its redisplay.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lauxlib.h"
#include "lualib.h"
#include "repl.h"
#include "serve.h"

#define HISTORY_FILE ".chalk_history"
#define HISTORY_MAX 1000
#define INTERRUPTS_BEFORE_NOTE 3 /* unanswered Ctrl-Cs (say, in a long C op) that print a note */

static lua_State *globalL;
static volatile sig_atomic_t running;    /* depth of repl_docall */
static volatile sig_atomic_t unanswered; /* Ctrl-Cs the hook has not yet turned into errors */
static volatile sig_atomic_t sigint_at_prompt;
static volatile sig_atomic_t sigwinch_pending;

/* ---- running code ------------------------------------------------------------------------- */

static int msghandler(lua_State *L);

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  if ((ar->event == LUA_HOOKCALL || ar->event == LUA_HOOKRET) && lua_getinfo(L, "f", ar)) {
    /* a C op answered the interrupt with its own error ("backward: interrupted"): let that
       error reach the message handler; the hook stays armed for code after a pcall */
    bool handler = lua_tocfunction(L, -1) == msghandler;
    lua_pop(L, 1);
    if (handler) return;
  }
  lua_sethook(L, NULL, 0, 0);
  unanswered = 0;
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  (void)sig;
  if (running > 0) {
    ct_interrupt_request(); /* long C loops (backward, matmul batches, replay, render) poll it */
    if (++unanswered == INTERRUPTS_BEFORE_NOTE) { /* never kill: a session is worth more */
      static const char note[] = "\n(chalk: still inside C code; it stops at its next check. "
                                 "Ctrl-\\ quits chalk)\n";
      ssize_t w = write(STDERR_FILENO, note, sizeof note - 1);
      (void)w;
    }
    /* lua_sethook is safe to call from a signal handler (see lua.c) */
    lua_sethook(globalL, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
  } else {
    sigint_at_prompt = 1;
  }
}

static void on_sigwinch(int sig) {
  (void)sig;
  sigwinch_pending = 1;
}

static void set_handler(int sig, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a blocked read or select returns to us with EINTR */
  sigaction(sig, &sa, NULL);
}

void repl_init_signals(lua_State *L) {
  globalL = L;
  set_handler(SIGINT, on_sigint);
}

/* Message handler: the message with a traceback, as lua.c's msghandler. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int repl_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  if (running == 0) ct_interrupt_clear();
  running++;
  int status = lua_pcall(L, narg, nres, base);
  running--;
  if (running == 0) {
    ct_interrupt_clear(); /* answered: the next chunk starts afresh */
    unanswered = 0;
    if (lua_gethook(L) == interrupt_hook) lua_sethook(L, NULL, 0, 0); /* a late Ctrl-C */
  }
  lua_remove(L, base);
  return status;
}

/* Cut the traceback after the user's chunk: the frames below it are the REPL's own. */
static void trim_traceback(char *msg) {
  char *main_chunk = NULL; /* the last one: the chunk typed, not one it loaded (dofile) */
  for (char *p = strstr(msg, ": in main chunk"); p; p = strstr(p + 1, ": in main chunk")) main_chunk = p;
  if (main_chunk) {
    char *eol = strchr(main_chunk, '\n');
    if (eol) *eol = '\0';
  }
  for (;;) { /* drop trailing "[C]: in ?" frames (the pcall that ran us) */
    size_t n = strlen(msg);
    const char *tail = "\n\t[C]: in ?";
    size_t tn = strlen(tail);
    if (n >= tn && strcmp(msg + n - tn, tail) == 0)
      msg[n - tn] = '\0';
    else
      break;
  }
  size_t n = strlen(msg);
  const char *empty = "\nstack traceback:";
  size_t en = strlen(empty);
  if (n >= en && strcmp(msg + n - en, empty) == 0) msg[n - en] = '\0';
}

/* Under "attempt to call a nil value (method 'topk')": the nearest names, from chalk.help. */
static void suggest_name(lua_State *L, const char *msg) {
  if (strstr(msg, "attempt to call a nil value (") == NULL) return;
  int top = lua_gettop(L);
  lua_getglobal(L, "require");
  if (lua_isfunction(L, -1)) {
    lua_pushstring(L, "chalk.help");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) && lua_getfield(L, -1, "suggest") == LUA_TFUNCTION) {
      lua_pushstring(L, msg);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) fprintf(stderr, "%s\n", lua_tostring(L, -1));
    }
  }
  lua_settop(L, top);
}

int repl_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    char *copy = strdup(msg);
    if (copy) {
      trim_traceback(copy);
      char *rest = strchr(copy, '\n'); /* the suggestion goes under the message, above the traceback */
      if (rest) *rest = '\0';
      fprintf(stderr, "%s\n", copy);
      suggest_name(L, copy);
      if (rest) fprintf(stderr, "%s\n", rest + 1);
      free(copy);
    }
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* Print the values above base with the global print, as lua.c's l_print. */
static void print_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n <= 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  if (repl_docall(L, n, 0) != LUA_OK) {
    lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    repl_report(L, LUA_ERRRUN);
  }
}

/* Compile "return CODE;" so that a bare expression prints its values; else CODE itself. */
static int load_code(lua_State *L, const char *code, size_t len, const char *chunkname) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "return ");
  luaL_addlstring(&b, code, len);
  luaL_addstring(&b, ";");
  luaL_pushresult(&b);
  size_t rlen;
  const char *ret = lua_tolstring(L, -1, &rlen);
  int status = luaL_loadbuffer(L, ret, rlen, chunkname);
  lua_remove(L, -2);
  if (status == LUA_OK) return status;
  lua_pop(L, 1);
  return luaL_loadbuffer(L, code, len, chunkname);
}

/* Run the function on top of the stack and print what it returns. */
static int run_loaded(lua_State *L, int base) {
  int status = repl_docall(L, 0, LUA_MULTRET);
  if (status == LUA_OK)
    print_results(L, base);
  else
    repl_report(L, status);
  lua_settop(L, base);
  return status;
}

int repl_run_code(lua_State *L, const char *code, size_t len, const char *chunkname) {
  int base = lua_gettop(L);
  int status = load_code(L, code, len, chunkname);
  if (status != LUA_OK) {
    repl_report(L, status);
    lua_settop(L, base);
    return status;
  }
  return run_loaded(L, base);
}

/* ---- reading lines ------------------------------------------------------------------------ */

enum { LINE_OK, LINE_EOF, LINE_INTERRUPTED };

static char *accepted_line;
static bool line_done;

static void on_line(char *line) {
  accepted_line = line;
  line_done = true;
  rl_callback_handler_remove();
}

/* Read one line with Readline's callback interface; Ctrl-C discards it (LINE_INTERRUPTED). */
static int read_line(const char *prompt, char **out) {
  sigset_t block, saved, unblocked;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGWINCH);
  sigprocmask(SIG_BLOCK, &block, &saved); /* signals arrive only inside pselect */
  unblocked = saved;
  sigdelset(&unblocked, SIGINT);
  sigdelset(&unblocked, SIGWINCH);
  sigint_at_prompt = 0;
  line_done = false;
  accepted_line = NULL;
  int result = LINE_EOF;
  int fd = fileno(rl_instream ? rl_instream : stdin);
  rl_callback_handler_install(prompt, on_line);
  for (;;) {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    if (pselect(fd + 1, &fds, NULL, NULL, NULL, &unblocked) < 0) {
      if (errno != EINTR) {
        rl_callback_handler_remove();
        break;
      }
      if (sigwinch_pending) {
        sigwinch_pending = 0;
        rl_resize_terminal();
      }
      if (sigint_at_prompt) {
        sigint_at_prompt = 0;
        rl_echo_signal_char(SIGINT);
        rl_callback_sigcleanup();
        rl_replace_line("", 0);
        rl_point = rl_end = 0;
        rl_crlf();
        rl_callback_handler_remove();
        result = LINE_INTERRUPTED;
        break;
      }
      continue;
    }
    rl_callback_read_char();
    if (line_done) {
      *out = accepted_line;
      result = accepted_line ? LINE_OK : LINE_EOF;
      break;
    }
  }
  sigprocmask(SIG_SETMASK, &saved, NULL);
  return result;
}

/* ---- history -------------------------------------------------------------------------------- */

static char *history_path;

/* Entries are written with a "#<time>" line before each, so a multi-line chunk comes back
   as one entry (Readline 8.2 history_multiline_entries). */
static void history_open(void) {
  const char *home = getenv("HOME");
  if (home == NULL || *home == '\0') return;
  size_t n = strlen(home) + strlen(HISTORY_FILE) + 2;
  history_path = malloc(n);
  if (history_path == NULL) return;
  snprintf(history_path, n, "%s/%s", home, HISTORY_FILE);
  history_comment_char = '#';
  history_write_timestamps = 1;
  history_multiline_entries = 1;
  int fd = open(history_path, O_WRONLY | O_CREAT | O_APPEND, 0600); /* append needs a file */
  if (fd < 0) {
    free(history_path);
    history_path = NULL;
    return;
  }
  close(fd);
  read_history(history_path);
  stifle_history(HISTORY_MAX);
}

static void history_save(const char *entry) {
  if (entry[0] == '\0') return;
  HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
  if (last && strcmp(last->line, entry) == 0) return;
  add_history(entry);
  if (history_path) append_history(1, history_path);
}

static void history_close(void) {
  if (history_path) history_truncate_file(history_path, 4 * HISTORY_MAX);
  free(history_path);
  history_path = NULL;
}

/* ---- the loop ----------------------------------------------------------------------------- */

#define EOFMARK "<eof>"

/* Whether a syntax error only means "more to come", as lua.c decides it. */
static bool incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return false;
  size_t lmsg;
  const char *msg = lua_tolstring(L, -1, &lmsg);
  size_t marklen = strlen(EOFMARK);
  if (lmsg >= marklen && strcmp(msg + lmsg - marklen, EOFMARK) == 0) {
    lua_pop(L, 1);
    return true;
  }
  return false;
}

static bool is_blank(const char *s) {
  s += strspn(s, " \t\r\n");
  return *s == '\0';
}

/* Read a whole chunk (continuation lines while incomplete), compile it, push the function.
   Returns LINE_OK with the function (or a syntax error and status) pushed, else nothing. */
static int read_chunk(lua_State *L, char *first, int *status) {
  luaL_Buffer b;
  lua_pushstring(L, first); /* the source so far, kept on the stack */
  free(first);
  size_t len;
  const char *src = lua_tolstring(L, -1, &len);
  *status = load_code(L, src, len, "=stdin");
  while (incomplete(L, *status)) {
    char *more;
    int r = read_line(CHALK_PROMPT2, &more);
    if (r == LINE_INTERRUPTED) {
      lua_pop(L, 1);
      return LINE_INTERRUPTED;
    }
    if (r == LINE_EOF) { /* Ctrl-D inside a chunk: compile what there is, to say what's wrong */
      src = lua_tolstring(L, -1, &len);
      *status = luaL_loadbuffer(L, src, len, "=stdin");
      break;
    }
    luaL_buffinit(L, &b);
    lua_pushvalue(L, -2);
    luaL_addvalue(&b);
    luaL_addchar(&b, '\n');
    luaL_addstring(&b, more);
    free(more);
    luaL_pushresult(&b);
    lua_remove(L, -2);
    src = lua_tolstring(L, -1, &len);
    *status = luaL_loadbuffer(L, src, len, "=stdin");
  }
  history_save(lua_tostring(L, -2));
  serve_input(EV_INPUT, lua_tostring(L, -2)); /* the session log (repl/serve.c) */
  lua_remove(L, -2); /* the source */
  return LINE_OK;
}

void repl_loop(lua_State *L) {
  char prompt_buf[64];
  rl_catch_signals = 0; /* ours: see the invariants at the top */
  rl_catch_sigwinch = 0;
  set_handler(SIGWINCH, on_sigwinch);
  history_open();
  complete_init(L);
  for (;;) {
    const char *prompt = lesson_prompt(L, prompt_buf, sizeof prompt_buf);
    char *line;
    int r = read_line(prompt ? prompt : CHALK_PROMPT, &line);
    if (r == LINE_INTERRUPTED) continue;
    if (r == LINE_EOF) {
      fputc('\n', stdout);
      break;
    }
    if (is_blank(line)) { /* Enter in a lesson goes on to the next step */
      free(line);
      if (prompt) {
        serve_input(EV_COMMAND, ":next");
        serve_run_begin();
        lesson_call(L, "next", NULL, NULL);
        serve_run_end();
      }
      continue;
    }
    if (meta_is_command(line)) {
      history_save(line);
      serve_input(EV_COMMAND, line);
      serve_run_begin(); /* what the command prints goes into the session log too */
      int m = meta_run(L, line);
      serve_run_end();
      free(line);
      if (m == META_QUIT) break;
      continue;
    }
    int base = lua_gettop(L);
    int status;
    if (read_chunk(L, line, &status) == LINE_INTERRUPTED) continue;
    serve_run_begin();
    if (status == LUA_OK)
      run_loaded(L, base);
    else
      repl_report(L, status);
    lua_settop(L, base);
    fflush(stdout);
    serve_run_end();
  }
  history_close();
}
