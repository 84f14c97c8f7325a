/* main.c: the chalk executable's entry: command-line flags, the Lua state, and which mode runs. */
/*
 * Modes, in the order they are decided: --help, --version, --lessons; then -e chunks and a
 * script (as lua does: -e first); --lesson (paused at each step on a terminal, straight
 * through with --auto or when stdin is not a terminal); else the REPL on a terminal, or
 * the whole of stdin run as a script. Exit status: 0, or 1 for a bad flag or any error in
 * -e code, a script or an --auto lesson.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lualib.h"
#include "repl.h"
#include "serve.h"

#define DEFAULT_OUT_DIR "chalk-out"

repl_settings repl_config;

/* launch.c: chalk --nproc N runs this command on N processes through mpirun */
bool launch_wanted(int argc, char **argv);
int launch_mpirun(int argc, char **argv);

typedef struct {
  const char **exprs; /* -e chunks, in order */
  int nexprs;
  int script; /* index in argv of the script ("-" for stdin), 0 for none */
  const char *lesson;
  const char *step;
  bool auto_run;
  bool list_lessons;
  bool help;
  bool version;
  bool serve;             /* --serve [PORT] */
  int port;               /* 8080 unless given */
  const char *transcript; /* --transcript FILE.html: the session, written at exit */
} options;

static void print_usage(FILE *f) {
  fprintf(f, "usage: chalk [options] [FILE.lua [ARGS...]]\n"
             "  chalk                      the REPL (:help inside lists its commands)\n"
             "  chalk FILE.lua [ARGS...]   run a script (arg[0] = FILE.lua, arg[1..] = ARGS; - is stdin)\n"
             "  chalk -e 'CODE'            run CODE, then exit (may be repeated; runs before FILE)\n"
             "  chalk --lesson NAME [--step N] [--auto]\n"
             "                             step through lessons/NAME.lua (--auto: no pauses)\n"
             "  chalk --lessons            list lessons\n"
             "  chalk --nproc N [--hostfile FILE | --host LIST] FILE.lua | --lesson NAME\n"
             "                             run on N processes through OpenMPI (world = chalk.dist.init())\n"
             "  chalk --nproc N --backend nccl FILE.lua\n"
             "                             one process per GPU, collectives through NCCL (core/dist/README.md)\n"
             "  chalk --out DIR            where pictures go (default ./chalk-out, or $CHALK_OUT)\n"
             "  chalk --open               hand each picture to xdg-open\n"
             "  chalk --serve [PORT] [--host ADDR] [FILE.lua | --lesson NAME]\n"
             "                             a live page of the session (default port 8080, address 127.0.0.1)\n"
             "  chalk --transcript FILE.html  write the session as one page at exit (with --lesson NAME --auto)\n"
             "  chalk --version            print the version\n"
             "  chalk --help               this text\n");
}

/* The value of a flag: "--out DIR" or "--out=DIR". */
static const char *flag_value(int argc, char **argv, int *i, const char *flag) {
  size_t n = strlen(flag);
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (*i + 1 < argc) return argv[++*i];
  fprintf(stderr, "chalk: %s needs a value\n", flag);
  return NULL;
}

static bool is_flag(const char *arg, const char *flag) {
  size_t n = strlen(flag);
  return strncmp(arg, flag, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* false on a bad command line (the message is printed). */
static bool parse_args(int argc, char **argv, options *o) {
  o->exprs = calloc((size_t)argc, sizeof *o->exprs);
  if (o->exprs == NULL) return false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v;
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      o->script = i;
      break;
    } else if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) o->script = i + 1;
      break;
    } else if (strncmp(a, "-e", 2) == 0) { /* -e CODE or -eCODE */
      if (a[2] != '\0') {
        o->exprs[o->nexprs++] = a + 2;
      } else if (i + 1 < argc) {
        o->exprs[o->nexprs++] = argv[++i];
      } else {
        fprintf(stderr, "chalk: -e needs code to run\n");
        return false;
      }
    } else if (is_flag(a, "--lessons")) {
      o->list_lessons = true;
    } else if (is_flag(a, "--lesson")) {
      if ((v = flag_value(argc, argv, &i, "--lesson")) == NULL) return false;
      o->lesson = v;
    } else if (is_flag(a, "--step")) {
      if ((v = flag_value(argc, argv, &i, "--step")) == NULL) return false;
      o->step = v;
    } else if (is_flag(a, "--auto")) {
      o->auto_run = true;
    } else if (is_flag(a, "--out")) {
      if ((v = flag_value(argc, argv, &i, "--out")) == NULL) return false;
      repl_config.out_dir = v;
    } else if (is_flag(a, "--open")) {
      repl_config.open_pictures = true;
    } else if (is_flag(a, "--serve")) {
      o->serve = true;
      const char *port = a[7] == '=' ? a + 8 : i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9' ? argv[++i] : NULL;
      char *end = NULL;
      long n = port ? strtol(port, &end, 10) : 8080;
      if (port && (*end != '\0' || n < 0 || n > 65535)) {
        fprintf(stderr, "chalk: --serve takes a port number (0 to 65535, 0 for any free one), got %s\n", port);
        return false;
      }
      o->port = (int)n;
    } else if (is_flag(a, "--host")) {
      if ((v = flag_value(argc, argv, &i, "--host")) == NULL) return false;
      repl_config.serve_host = v;
    } else if (is_flag(a, "--transcript")) {
      if ((v = flag_value(argc, argv, &i, "--transcript")) == NULL) return false;
      o->transcript = v;
    } else if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
      o->version = true;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      o->help = true;
    } else {
      fprintf(stderr, "chalk: unknown option %s\n", a);
      return false;
    }
  }
  if ((o->step || o->auto_run) && o->lesson == NULL) {
    fprintf(stderr, "chalk: --step and --auto go with --lesson NAME\n");
    return false;
  }
  if (repl_config.serve_host && !o->serve) {
    fprintf(stderr, "chalk: --host goes with --serve (or with --nproc, for mpirun's hosts)\n");
    return false;
  }
  return true;
}

/* mkdir -p */
static bool make_dirs(const char *path) {
  char *p = strdup(path);
  if (p == NULL) return false;
  bool ok = true;
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        ok = false;
        break;
      }
      *s = c;
      if (c == '\0') break;
    }
  }
  free(p);
  struct stat st;
  return ok && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the Lua state -------------------------------------------------------------------------- */

static int open_chalk(lua_State *L) {
  luaL_requiref(L, "chalk", luaopen_chalk, 1);
  return 1;
}

/* chalk as a global, its nn/optim/data/viz as globals too, chalk.out_dir, chalk.on_picture, help. */
static void setup_globals(lua_State *L) {
  lua_pushcfunction(L, open_chalk);
  int status = repl_docall(L, 0, 1);
  if (status != LUA_OK) {
    fprintf(stderr, "chalk: the chalk library failed to load (the REPL runs without it):\n");
    repl_report(L, status);
    return;
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  int chalk = lua_gettop(L);
  static const char *const fields[] = {"nn", "optim", "data", "viz", "dist", "sim", "serve", "quant", NULL};
  for (int i = 0; fields[i]; i++) {
    if (lua_getfield(L, chalk, fields[i]) != LUA_TNIL)
      lua_setglobal(L, fields[i]);
    else
      lua_pop(L, 1);
  }
  lua_pushstring(L, repl_config.out_dir);
  lua_setfield(L, chalk, "out_dir");
  picture_install(L, chalk);
  if (lua_getfield(L, chalk, "viz") == LUA_TTABLE) serve_install(L, lua_gettop(L)); /* viz.show */
  lua_pop(L, 2);
  lua_getglobal(L, "require"); /* help(f), help "viz.step": lua/chalk/help.lua */
  lua_pushstring(L, "chalk.help");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK)
    lua_setglobal(L, "help");
  else
    lua_pop(L, 1);
}

/* The arg table as lua makes it: arg[0] the script, arg[1..] after it, flags below 0. */
static void create_arg_table(lua_State *L, int argc, char **argv, int script) {
  int narg = script > 0 ? argc - (script + 1) : argc - 1;
  lua_createtable(L, narg, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_exprs(lua_State *L, const options *o) {
  for (int i = 0; i < o->nexprs; i++)
    if (serve_input(EV_INPUT, o->exprs[i]), repl_run_code(L, o->exprs[i], strlen(o->exprs[i]), "=(command line)") != LUA_OK) return 1;
  return 0;
}

/* Run a script file (NULL for stdin) with ARGS as its ... ; 0 or 1. */
static int run_script(lua_State *L, const char *fname, int argc, char **argv, int script) {
  if (fname && strcmp(fname, "-") == 0) fname = NULL;
  int status = luaL_loadfile(L, fname);
  int narg = 0;
  if (status == LUA_OK) {
    for (int i = script + 1; script > 0 && i < argc; i++, narg++) lua_pushstring(L, argv[i]);
    status = repl_docall(L, narg, 0);
  }
  if (status != LUA_OK) {
    fprintf(stderr, "chalk: ");
    repl_report(L, status);
    return 1;
  }
  return 0;
}

static void print_banner(void) {
  printf("chalk %s (%s)  :help for commands, Ctrl-D to leave\n", CHALK_VERSION, LUA_RELEASE);
}

int main(int argc, char **argv) {
  if (launch_wanted(argc, argv)) return launch_mpirun(argc, argv);
  repl_tune_blas(argv);
  options o;
  memset(&o, 0, sizeof o);
  repl_config.progname = argv[0];
  if (!parse_args(argc, argv, &o)) {
    print_usage(stderr);
    free(o.exprs);
    return 1;
  }
  if (o.help) {
    print_usage(stdout);
    free(o.exprs);
    return 0;
  }
  if (o.version) {
    printf("chalk %s (%s)\n", CHALK_VERSION, LUA_RELEASE);
    free(o.exprs);
    return 0;
  }
  if (repl_config.out_dir) {
    if (!make_dirs(repl_config.out_dir)) {
      fprintf(stderr, "chalk: cannot create %s: %s\n", repl_config.out_dir, strerror(errno));
      free(o.exprs);
      return 1;
    }
  } else {
    const char *env = getenv("CHALK_OUT");
    repl_config.out_dir = env && *env ? env : DEFAULT_OUT_DIR;
  }
  setenv("CHALK_OUT", repl_config.out_dir, 1); /* for the binding and child processes */

  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "chalk: cannot create the Lua state: out of memory\n");
    free(o.exprs);
    return 1;
  }
  repl_init_signals(L);
  luaL_openlibs(L);
  create_arg_table(L, argc, argv, o.script);
  setup_globals(L);
  lesson_init(L, argv[0]);

  int status = 0;
  bool interactive = isatty(STDIN_FILENO);
  bool repl = !o.list_lessons && o.nexprs == 0 && o.script == 0 && interactive && !(o.lesson && o.auto_run);
  if (o.serve || o.transcript || repl) serve_record(true); /* the session log: the page, :save, --transcript */
  if (o.serve && (!make_dirs(repl_config.out_dir) || !serve_start(repl_config.serve_host, o.port))) {
    lua_close(L);
    free(o.exprs);
    return 1;
  }
  serve_run_begin();
  if (o.list_lessons) {
    status = lesson_call(L, "list", NULL, NULL) ? 0 : 1;
  } else if (o.nexprs > 0 || o.script > 0) {
    status = run_exprs(L, &o);
    if (status == 0 && o.script > 0) status = run_script(L, argv[o.script], argc, argv, o.script);
  } else if (o.lesson && (o.auto_run || !interactive)) {
    status = lesson_call(L, "auto", o.lesson, o.step) ? 0 : 1;
  } else if (interactive) {
    print_banner();
    if (o.lesson && !lesson_call(L, "start", o.lesson, o.step)) {
      status = 1; /* no such lesson */
    } else {
      serve_run_end(); /* the loop routes output around each chunk itself */
      repl_loop(L);
      serve_run_begin();
    }
  } else {
    status = run_script(L, NULL, argc, argv, 0);
  }
  fflush(stdout);
  serve_run_end();
  if (o.serve && !repl && interactive) { /* a script or --auto lesson is over; the room may still be reading */
    printf("chalk: the page stays up until Enter (or Ctrl-D)\n");
    fflush(stdout);
    int c;
    while ((c = getchar()) != EOF && c != '\n') continue;
  }
  if (o.transcript && !transcript_save(o.transcript)) status = 1;
  serve_shutdown(); /* the server's threads end before the Lua state does */
  lua_close(L);
  free(o.exprs);
  return status;
}
