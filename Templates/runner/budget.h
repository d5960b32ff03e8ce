/* The memory a run plans to hold, counted before it is allocated: the model's arenas (arenas_fit_in_memory,
 * tensors.h) and every buffer whose size a file announces (the IDX, NPY and MAT readers, CIFAR-10 records,
 * the data sets built from them). A request that would take the total past memory_limit() (util.h:
 * MPLC_MEMORY_LIMIT, else physical memory) is refused with the sizes before anything is allocated or read,
 * so a small gzip file whose header claims gigabytes is refused from its header. Whoever frees a planned
 * buffer returns its bytes. The runner is single-threaded while it loads, so the total is a plain counter. */
#ifndef RUNNER_BUDGET_H
#define RUNNER_BUDGET_H

#include <stdint.h>

#include "util.h"

/* Plans `bytes` more if they fit beside what is planned (0); else -1 with the limit, its source and the
 * bytes planned so far in *limit, *source and *planned (for the caller's message). */
int budget_reserve(uint64_t bytes, uint64_t *limit, const char **source, uint64_t *planned);
/* budget_reserve with the message "PATH: WHAT need BYTES bytes; ... more than the LIMIT bytes of SOURCE". */
int budget_take(uint64_t bytes, const char *path, const char *what, Err *e);
void budget_return(uint64_t bytes);
/* The bytes planned now (tests and fuzz targets check that every reader returns what it took). */
uint64_t budget_planned(void);
/* "MPLC_MEMORY_LIMIT" or "this machine's physical memory", for messages. */
const char *budget_source_name(const char *source);

#endif
