/* complete.c: Tab completion of globals, table fields (a.b.c) and methods (x:su). */
/*
 * The word under the cursor is a path: names joined by '.', with an optional last ':'.
 * The path before the last separator is looked up from _G (rawget on tables, __index on
 * anything else, all inside lua_pcall so a failing __index cannot hurt), and the names
 * under it are offered:
 *   after '.'  the keys of a table, the keys of its metatable's __index table (following
 *              the chain), and a userdata's metatable.__fields (a list of field names);
 *   after ':'  the same keys whose values are functions, plus metatable.__methods (a table
 *              name -> function), which the binding provides for tensors whose __index is a
 *              function.
 * Names starting with "__" are offered only when the typed prefix starts with '_'.
 * At the start of a line, ":le" completes colon commands, and ":lesson ex" lesson names.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include "lauxlib.h"
#include "repl.h"

#define INDEX_CHAIN_MAX 8

static lua_State *completeL;
static char **candidates; /* NULL-terminated, handed to Readline one by one */
static size_t candidate_next;

static const char *const keywords[] = {"and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
                                       "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
                                       "repeat",   "return", "then", "true", "until",  "while", NULL};

static bool is_identifier(const char *s, size_t len) {
  if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
  for (size_t i = 1; i < len; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return false;
  return true;
}

/* Add name to the result table (at index out) when it extends the prefix. */
static void offer(lua_State *L, int out, const char *name, const char *prefix) {
  size_t plen = strlen(prefix);
  if (strncmp(name, prefix, plen) != 0) return;
  if (name[0] == '_' && name[1] == '_' && prefix[0] != '_') return;
  if (!is_identifier(name, strlen(name))) return;
  lua_pushboolean(L, 1);
  lua_setfield(L, out, name);
}

/* Offer the string keys of the table at index t (only function values if methods). */
static void offer_keys(lua_State *L, int t, int out, const char *prefix, bool methods) {
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      if (!methods || lua_type(L, -1) == LUA_TFUNCTION) offer(L, out, lua_tostring(L, -2), prefix);
    }
    lua_pop(L, 1);
  }
}

/* Offer the strings in the list at index t (metatable.__fields). */
static void offer_list(lua_State *L, int t, int out, const char *prefix) {
  t = lua_absindex(L, t);
  lua_Integer n = (lua_Integer)lua_rawlen(L, t);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, t, i) == LUA_TSTRING) offer(L, out, lua_tostring(L, -1), prefix);
    lua_pop(L, 1);
  }
}

/* Offer the names under the value at index v. */
static void offer_names(lua_State *L, int v, int out, const char *prefix, bool methods) {
  v = lua_absindex(L, v);
  lua_pushvalue(L, v);
  for (int depth = 0; depth < INDEX_CHAIN_MAX; depth++) {
    if (lua_istable(L, -1)) offer_keys(L, -1, out, prefix, methods);
    if (!lua_getmetatable(L, -1)) break;
    int mt = lua_gettop(L);
    if (lua_getfield(L, mt, methods ? "__methods" : "__fields") == LUA_TTABLE) {
      if (methods)
        offer_keys(L, -1, out, prefix, false);
      else
        offer_list(L, -1, out, prefix);
    }
    lua_pop(L, 1);
    lua_pushstring(L, "__index");
    lua_rawget(L, mt);
    lua_remove(L, mt);
    lua_remove(L, -2);              /* the previous value */
    if (!lua_istable(L, -1)) break; /* a function __index: __methods/__fields said it all */
  }
  lua_pop(L, 1);
}

/* [-2, +1] Replace the value and the name on top of the stack by value[name]: rawget on a
   plain table, an ordinary lookup (its __index may run) on anything with a metatable. */
static void get_field(lua_State *L) {
  if (lua_istable(L, -2)) {
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (!lua_isnil(L, -1) || !lua_getmetatable(L, -3)) {
      lua_replace(L, -3);
      lua_pop(L, 1);
      return;
    }
    lua_pop(L, 2); /* nil and the metatable: fall back to an ordinary lookup */
  }
  if (lua_istable(L, -2) || lua_isuserdata(L, -2) || lua_type(L, -2) == LUA_TSTRING) {
    lua_gettable(L, -2);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 2);
    lua_pushnil(L);
  }
}

/* [-0, +1] gather(text, before): a table whose keys are the full candidates for text, the word
   under the cursor; before is the line before it. */
/* Add to the result table (at index result) each string of the list on top that extends text;
   pop the list. */
static void offer_words(lua_State *L, int result, const char *text) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) == LUA_TSTRING && strncmp(lua_tostring(L, -1), text, strlen(text)) == 0) {
      lua_pushboolean(L, 1);
      lua_settable(L, result);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Colon commands: ":le<Tab>" offers :lesson and :lessons, ":lesson ex<Tab>" the lessons. */
static bool gather_command(lua_State *L, int result, const char *text, const char *before) {
  before += strspn(before, " \t");
  if (*before == '\0' && text[0] == ':') {
    lua_newtable(L);
    for (int i = 0; meta_command_name(i); i++) {
      lua_pushfstring(L, ":%s", meta_command_name(i));
      lua_rawseti(L, -2, i + 1);
    }
    offer_words(L, result, text);
    return true;
  }
  if (strncmp(before, ":lesson", 7) == 0 && (before[7] == ' ' || before[7] == '\t') &&
      before[8 + strspn(before + 8, " \t")] == '\0') {
    lesson_push_names(L);
    offer_words(L, result, text);
    return true;
  }
  return before[0] == ':'; /* the other commands' arguments: nothing to offer */
}

static int gather(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  const char *before = luaL_checkstring(L, 2);
  lua_newtable(L);
  int result = lua_gettop(L);
  if (gather_command(L, result, text, before)) return 1;
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  lua_newtable(L); /* names, as a set */
  int names = lua_gettop(L);
  const char *prefix = sep ? sep + 1 : text;
  if (sep == NULL) {
    lua_pushglobaltable(L);
    offer_names(L, -1, names, prefix, false);
    lua_pop(L, 1);
    for (int i = 0; keywords[i]; i++) offer(L, names, keywords[i], prefix);
  } else {
    lua_pushglobaltable(L);
    const char *p = text;
    while (p < sep) {
      const char *dot = memchr(p, '.', (size_t)(sep - p));
      const char *end = dot ? dot : sep;
      if (!is_identifier(p, (size_t)(end - p))) return 1; /* not a path: nothing to offer */
      lua_pushlstring(L, p, (size_t)(end - p));
      get_field(L);
      if (lua_isnil(L, -1)) return 1;
      p = end + 1;
    }
    if (memchr(text, ':', (size_t)(sep - text))) return 1; /* x:y.z is not a path */
    offer_names(L, -1, names, prefix, *sep == ':');
    lua_pop(L, 1);
  }
  size_t stem = (size_t)(prefix - text);
  lua_pushnil(L);
  while (lua_next(L, names)) {
    lua_pop(L, 1);
    lua_pushlstring(L, text, stem);
    lua_pushvalue(L, -2);
    lua_concat(L, 2);
    lua_pushboolean(L, 1);
    lua_settable(L, result);
  }
  lua_settop(L, result);
  return 1;
}

static void free_candidates(void) {
  if (candidates == NULL) return;
  for (size_t i = 0; candidates[i]; i++) free(candidates[i]);
  free(candidates);
  candidates = NULL;
}

/* Fill candidates for text, which starts at start in the line; false if there are none. */
static bool collect(const char *text, int start) {
  lua_State *L = completeL;
  free_candidates();
  int top = lua_gettop(L);
  lua_pushcfunction(L, gather);
  lua_pushstring(L, text);
  lua_pushlstring(L, rl_line_buffer, (size_t)start);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_settop(L, top);
    return false;
  }
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    n++;
    lua_pop(L, 1);
  }
  candidates = calloc(n + 1, sizeof *candidates);
  if (candidates == NULL) {
    lua_settop(L, top);
    return false;
  }
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    char *s = strdup(lua_tostring(L, -1));
    if (s) candidates[i++] = s;
  }
  lua_settop(L, top);
  candidate_next = 0;
  return i > 0;
}

static char *generator(const char *text, int state) {
  (void)text;
  (void)state;
  if (candidates == NULL || candidates[candidate_next] == NULL) return NULL;
  return strdup(candidates[candidate_next++]);
}

/* Inside a string literal, complete file names instead (dofile("les<Tab>). */
static bool in_string(int start) {
  char quote = 0;
  for (int i = 0; i < start && rl_line_buffer[i]; i++) {
    char c = rl_line_buffer[i];
    if (quote) {
      if (c == '\\')
        i++;
      else if (c == quote)
        quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    }
  }
  return quote != 0;
}

static char **attempt(const char *text, int start, int end) {
  (void)end;
  if (in_string(start)) return NULL; /* Readline's file-name completion */
  rl_attempted_completion_over = 1;
  rl_completion_suppress_append = 1; /* "chalk.tensor" is followed by ( or {, not a space */
  if (!collect(text, start)) return NULL;
  char **matches = rl_completion_matches(text, generator);
  free_candidates();
  return matches;
}

/* List matches by their last name only ("alpha  alpine", not "foo.alpha  foo.alpine"). */
static void display(char **matches, int n, int max_length) {
  const char *first = matches[1] ? matches[1] : matches[0];
  size_t cut = 0;
  for (size_t i = 0; first[i]; i++)
    if (first[i] == '.' || first[i] == ':') cut = i + 1;
  char **shown = calloc((size_t)n + 2, sizeof *shown);
  if (shown == NULL) return;
  for (int i = 0; i <= n; i++) shown[i] = strlen(matches[i]) >= cut ? matches[i] + cut : matches[i];
  rl_display_match_list(shown, n, max_length - (int)cut);
  rl_forced_update_display();
  free(shown);
}

void complete_init(lua_State *L) {
  completeL = L;
  rl_readline_name = "chalk";
  rl_attempted_completion_function = attempt;
  rl_completion_display_matches_hook = display;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(),+-*/%^#~[]}";
  rl_completer_word_break_characters = rl_basic_word_break_characters;
  /* a second Tab lists the candidates once no more can be filled in (~/.inputrc may differ) */
  rl_variable_bind("show-all-if-unmodified", "on");
}
