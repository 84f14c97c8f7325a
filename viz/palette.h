/* palette.h: the one colour table of every chalk picture and legend (graphs, profiles, charts,
 * captured graphs), exported to Lua as chalk.viz.colors.
 *
 * Invariants: each colour has exactly one meaning, the same in every picture; a picture names its
 * colours from this table (no colour literal anywhere else in the tree) and its legend is built
 * from the same rows. hex is the main colour (bars, swatches, lines), tint a light version for
 * large areas under black text (graph nodes, cells), ink a dark version for borders and text. */
#ifndef CHALK_VIZ_PALETTE_H
#define CHALK_VIZ_PALETTE_H

/* X(ID, name, hex, tint, ink, meaning) */
#define VIZ_PALETTE(X)                                                                                      \
  X(FORWARD, "forward", "#f28e2b", "#fde3c8", "#b35806", "forward pass: forward ops and the activations they keep") \
  X(BACKWARD, "backward", "#e15759", "#f9d6d6", "#b22222", "backward pass: backward ops and gradients")          \
  X(RECOMPUTE, "recompute", "#ff9da7", "#ffe4e8", "#c2185b", "recomputed during backward (checkpointing)")      \
  X(OPTIMIZER, "optimizer", "#b07aa1", "#eadcf0", "#6a3d9a", "optimizer step and its state")                      \
  X(PARAMETER, "parameter", "#4e79a7", "#d6e3f0", "#2b4f7a", "parameters (leaves that require grad)")            \
  X(INPUT, "input", "#59a14f", "#d9ecd4", "#2e6b2a", "inputs and data fed to the program")                       \
  X(CONSTANT, "constant", "#bab0ac", "#eeeeee", "#8a8a8a", "constants and temporaries")                          \
  X(COPY, "copy", "#76b7b2", "#dcefed", "#2f7a74", "copies between devices")                                     \
  X(KV_CACHE, "kv_cache", "#edc948", "#fbf1c9", "#8c6d00", "a serving engine's key/value cache")              \
  X(COMM_BUFFER, "comm_buffer", "#8cd17d", "#e3f4df", "#3b7a2e", "buffers of collectives (gathered parameters)") \
  X(COLLECTIVE, "collective", "#9c755f", "#eadfd8", "#6b4a36", "collectives between workers")                     \
  X(CURRENT, "current", "#ffe066", "#fff5c2", "#b8860b", "what happens in this step (stepping, the chosen row)")  \
  X(MARK, "mark", "#c51b7d", "#f6d3e6", "#8e0152", "a level to compare with: peak, limit, best configuration")   \
  X(FREED, "freed", "#a3a3a3", "#f4f4f4", "#6b6b6b", "saved tensor freed by backward (the graph's structure is kept)") \
  X(BASELINE, "baseline", "#dadada", "#efefef", "#8c8c8c", "memory that existed before the profile began")     \
  X(SUMMARY, "summary", "#9fb3c8", "#eef3f8", "#5b6f85", "a summary of several nodes (folded layers)")           \
  X(SERIES1, "series1", "#2c7fb8", "#d0e4f2", "#1a4f73", "first line of a chart (see its legend)")               \
  X(SERIES2, "series2", "#d95f0e", "#fbe0cc", "#8a3b08", "second line of a chart (see its legend)")              \
  X(SERIES3, "series3", "#31a354", "#d5eddc", "#1d6332", "third line of a chart (see its legend)")               \
  X(SERIES4, "series4", "#756bb1", "#e1def0", "#4a4380", "fourth line of a chart (see its legend)")              \
  X(SERIES5, "series5", "#8c564b", "#e6d8d5", "#5a3630", "fifth line of a chart (see its legend)")               \
  X(SERIES6, "series6", "#17becf", "#d1f2f5", "#0f7c87", "sixth line of a chart (see its legend)")               \
  X(HEAT_LO, "heat_lo", "#f7fbff", "#f7fbff", "#222222", "low end of a value scale (heatmaps)")                  \
  X(HEAT_HI, "heat_hi", "#08306b", "#c6dbef", "#ffffff", "high end of a value scale (heatmaps)")                 \
  X(TITLE, "title", "#111111", "#d9d9d9", "#000000", "titles and values")                                        \
  X(TEXT, "text", "#333333", "#e0e0e0", "#222222", "labels, axes and ticks")                                     \
  X(MUTED, "muted", "#777777", "#f0f0f0", "#555555", "secondary text, notes, dimmed marks")                      \
  X(FAINT, "faint", "#b5b5b5", "#f6f6f6", "#cfcfcf", "not computed yet, or not shown in this frame")            \
  X(GRID, "grid", "#e5e5e5", "#f5f5f5", "#d0d0d0", "grid lines, lanes and empty cells")                         \
  X(PAPER, "paper", "#ffffff", "#ffffff", "#bdbdbd", "background, and cells left empty")

typedef enum {
#define VIZ_X(id, ...) VIZ_##id,
  VIZ_PALETTE(VIZ_X)
#undef VIZ_X
  VIZ_NCOLORS
} viz_color;

typedef struct {
  const char *name, *hex, *tint, *ink, *meaning;
} viz_color_def;

extern const viz_color_def viz_palette[VIZ_NCOLORS];

static inline const char *viz_hex(viz_color c) { return viz_palette[c].hex; }
static inline const char *viz_tint(viz_color c) { return viz_palette[c].tint; }
static inline const char *viz_ink(viz_color c) { return viz_palette[c].ink; }

/* The colour named name ("forward"), its tint ("forward:tint") or ink ("forward:ink") as #rrggbb;
   a number in [0, 1] written as "heat:0.25" gives the heat scale from heat_lo to heat_hi. NULL
   when no such colour exists. buf (8 bytes at least) holds computed colours. */
const char *viz_color_lookup(const char *name, char *buf, unsigned nbuf);
/* A point of the heat scale (t in [0, 1], clamped) as #rrggbb in buf. */
const char *viz_heat(double t, char *buf, unsigned nbuf);

#endif
