/* graph_internal.h: what graph/'s own files share and nothing above them needs (not for lua/ or viz/).
 * The split files of the graph (graph.c, capture.c, replay.c, inspect.c, optimize.c)
 * reach each other's helpers only through this header. */
#ifndef CHALK_GRAPH_INTERNAL_H
#define CHALK_GRAPH_INTERNAL_H

#include "graph/capture_internal.h"

/* Grow *p (elements of `elem` bytes, capacity *cap) to hold `need`; 0 or -1 with the error set. */
int ct_graph_grow(void **p, int *cap, int need, size_t elem);
/* Bytes a value occupies (its numel times its dtype's size). */
double ct_gvalue_bytes(const ct_gvalue *v);
/* Free a node's owned arrays (not the node). */
void ct_gnode_free(ct_gnode *n);
/* Stop the op hook if the graph is still capturing and free its capture-time state. */
void ct_capture_release(ct_graph *g);

#endif
