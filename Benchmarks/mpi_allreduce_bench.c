/* The cost of the all-reduce alone, without the waiting for a slower rank that a training run's timing includes
 * (docs/SCALING.md): every rank sums N floats in place with MPI_Allreduce, REPS times, each after a barrier.
 *   mpicc -O2 Benchmarks/mpi_allreduce_bench.c -o allreduce_bench && mpirun -np 2 ./allreduce_bench 620000 50 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    long n = argc > 1 ? atol(argv[1]) : 620000;
    int reps = argc > 2 ? atoi(argv[2]) : 50, rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    float *x = malloc((size_t)n * sizeof *x);
    for (long i = 0; i < n; i++) x[i] = (float)(i % 7);
    double total = 0, best = 1e30;
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t = MPI_Wtime() - t;
        total += t;
        if (t < best) best = t;
    }
    if (rank == 0)
        printf("%d ranks, %ld floats (%.2f MB): mean %.3f ms, best %.3f ms per all-reduce (%d reps)\n", size, n,
               n * 4e-6, 1e3 * total / reps, 1e3 * best, reps);
    free(x);
    MPI_Finalize();
    return 0;
}
