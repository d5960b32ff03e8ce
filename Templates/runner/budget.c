#include "budget.h"

#include <string.h>

static uint64_t planned_bytes;

int budget_reserve(uint64_t bytes, uint64_t *limit, const char **source, uint64_t *planned) {
    *limit = memory_limit(source);
    *planned = planned_bytes;
    /* An unknown limit (0) lets everything through, as the compiler's check does. */
    if (*limit != 0 && (bytes > *limit || planned_bytes > *limit - bytes)) return -1;
    planned_bytes += bytes;
    return 0;
}

int budget_take(uint64_t bytes, const char *path, const char *what, Err *e) {
    uint64_t limit, planned;
    const char *source;
    if (budget_reserve(bytes, &limit, &source, &planned) == 0) return 0;
    return err_set(e,
                   "%s: %s need %llu bytes; with the %llu bytes already planned (the model's arenas and the data "
                   "loaded so far) that is more than the %llu bytes of %s; not read",
                   path, what, (unsigned long long)bytes, (unsigned long long)planned, (unsigned long long)limit,
                   budget_source_name(source));
}

void budget_return(uint64_t bytes) { planned_bytes -= bytes; }

uint64_t budget_planned(void) { return planned_bytes; }

const char *budget_source_name(const char *source) {
    return strcmp(source, "physical memory") == 0 ? "this machine's physical memory" : source;
}
