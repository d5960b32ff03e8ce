/* MPI for the runner's own needs: start and end, counts summed over ranks, agreement on stopping. The step's
 * all-reduces are the runtime's mplc_allreduce_sum (model.c), not these. See ranks.h. */
#include "ranks.h"

#include <stdio.h>
#include <stdlib.h>

#include "model.h"
#include "util.h"

#if MPLC_RANKS > 1 && !defined(MPLC_MPI)
#error "this model was compiled with --ranks > 1: build the runner with mpicc -DMPLC_MPI (mplc train does)"
#endif

#ifdef MPLC_MPI
#include <mpi.h>

static int rank = 0, world = 1, started = 0;

/* A library call that fails ends the job: a rank that went on alone would leave the others waiting. */
static void check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    fprintf(stderr, "mplc-run: error: rank %d of %d: %s failed: %s\n", rank, world, what, text);
    MPI_Abort(MPI_COMM_WORLD, EXIT_BAD_INPUT);
    exit(EXIT_BAD_INPUT);
}

void ranks_init(int *argc, char ***argv) {
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "mplc-run: error: MPI_Init failed (run the trainer under mpirun)\n");
        exit(EXIT_BAD_INPUT);
    }
    started = 1;
    /* Errors come back as codes (check) instead of MPI's default of aborting without a word. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &world), "MPI_Comm_size");
}

int rank_id(void) { return rank; }
int rank_count(void) { return world; }

void ranks_exit(int code) {
    fflush(stdout);
    fflush(stderr);
    if (started && code != 0 && world > 1) MPI_Abort(MPI_COMM_WORLD, code);
    ranks_finish(code);
}

void ranks_finish(int code) {
    fflush(stdout);
    fflush(stderr);
    if (started) MPI_Finalize();
    exit(code);
}

void ranks_sum_longs(long *x, size_t n) {
    if (world > 1) check(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_LONG, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
}

int ranks_max_int(int v) {
    if (world > 1) check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return v;
}

/* Every rank sees the same world, so every rank takes the same branch: rank 0 says why, all finish together. */
static void refuse(const char *command, const char *needs) {
    if (rank == 0)
        fprintf(stderr, "mplc-run: usage error: %s: %s, but this job has %d process%s\n", command, needs, world,
                world == 1 ? "" : "es");
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    exit(EXIT_USAGE);
}

void ranks_require_model_count(const char *command) {
    if (world == MPLC_RANKS) return;
    char needs[256];
    snprintf(needs, sizeof needs,
             "model %s was compiled for %d ranks (mplc --ranks %d, MPLC_RANKS in model.h); start it with mpirun -np "
             "%d (mplc train --ranks %d does)",
             MPLC_MODEL_NAME, MPLC_RANKS, MPLC_RANKS, MPLC_RANKS, MPLC_RANKS);
    refuse(command, needs);
}

void ranks_require_one(const char *command) {
    if (world != 1) refuse(command, "this command runs as one process (it is not data parallel)");
}

#else /* one process: no MPI */

void ranks_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
}
void ranks_require_model_count(const char *command) { (void)command; }
void ranks_require_one(const char *command) { (void)command; }
int rank_id(void) { return 0; }
int rank_count(void) { return 1; }
void ranks_exit(int code) { exit(code); }
void ranks_finish(int code) { exit(code); }
void ranks_sum_longs(long *x, size_t n) {
    (void)x;
    (void)n;
}
int ranks_max_int(int v) { return v; }

#endif
