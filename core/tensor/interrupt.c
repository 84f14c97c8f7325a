/* interrupt.c: the process-wide interrupt flag that Ctrl-C sets and long C loops poll. */
#include <stdatomic.h>

#include "chalk.h"

static atomic_int pending; /* lock-free int: safe to store from a signal handler */

void ct_interrupt_request(void) { atomic_store_explicit(&pending, 1, memory_order_relaxed); }
bool ct_interrupt_pending(void) { return atomic_load_explicit(&pending, memory_order_relaxed) != 0; }
void ct_interrupt_clear(void) { atomic_store_explicit(&pending, 0, memory_order_relaxed); }
int ct_interrupt_error(const char *op) { return ct_errorf("%s: interrupted", op ? op : "chalk"); }
