/* Time spent in MPI_Allreduce, for docs/SCALING.md: an MPI profiling-interface wrapper linked into a trainer
 * built for several ranks (mpicc -DMPLC_MPI ... Benchmarks/mpi_allreduce_timer.c). Every MPI_Allreduce (the
 * step's all-reduces, the runner's stop agreement and evaluation sums) is timed around PMPI_Allreduce; at
 * MPI_Finalize each rank prints its count, total seconds and floats on stderr. */
#include <mpi.h>
#include <stdio.h>

static double seconds;
static long calls, elements;

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm) {
    double t = MPI_Wtime();
    int rc = PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
    seconds += MPI_Wtime() - t;
    calls++;
    elements += count;
    return rc;
}

int MPI_Finalize(void) {
    int rank = 0;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "allreduce rank %d: %ld calls, %.3f s, %ld elements\n", rank, calls, seconds, elements);
    return PMPI_Finalize();
}
