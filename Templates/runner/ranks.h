/* Data parallelism over MPI (docs/RUNNER.md, "Running under MPI"). A model compiled with `--ranks R`, R > 1, is
 * built with `mpicc -DMPLC_MPI` and runs as R processes under mpirun: each takes its slice of every global batch,
 * the step all-reduces what it must (mplc_allreduce_sum of the runtime), rank 0 alone writes files. Built without
 * MPLC_MPI (R = 1), every function here is the one-process case and the runner has no MPI dependency. */
#ifndef RUNNER_RANKS_H
#define RUNNER_RANKS_H

#include <stddef.h>

/* MPI_Init; under MPI also makes every later exit of this process end the job cleanly (see ranks_exit). */
void ranks_init(int *argc, char ***argv);
/* For train and replay: the world must have MPLC_RANKS processes, else a usage error (exit 2) from rank 0. */
void ranks_require_model_count(const char *command);
/* For commands that are not data parallel (cache, predict): one process only. */
void ranks_require_one(const char *command);
int rank_id(void);    /* 0 without MPI */
int rank_count(void); /* 1 without MPI */
static inline int rank_leader(void) { return rank_id() == 0; }
/* Ends this process with code, alone: under MPI with more than one process, a failure (code != 0) ends the whole
 * job (MPI_Abort), so that no other rank waits for this one in a collective. */
void ranks_exit(int code) __attribute__((noreturn));
/* Ends the process with code where every rank ends together (the run's end, --stop-at, a signal, a usage error
 * of the command line): MPI_Finalize waits for the others, so rank 0 finishes writing before the job ends. */
void ranks_finish(int code) __attribute__((noreturn));
/* In place, over all ranks (the identity for one process). */
void ranks_sum_longs(long *x, size_t n);
int ranks_max_int(int v);

#endif
