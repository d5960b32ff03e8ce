/* The global batch under MPI, linked with the runner (without main.c) and the fake model built for R ranks:
 *
 *   mpirun -np R test_mpi DATA_DIR OUT.bin
 *
 * Every rank fills its step arena (batch_fill_step) for steps 0..5; rank 0 gathers the ranks' rows and checks that,
 * put together in rank order, they are the global batch (docs/RUNNER.md, "Running under MPI"): global labeled row g
 * is the labeled image at position t·B_l + g of the seeded order (the one-process batch's image), its weak view
 * drawn from the stream (seed, RNG_AUGMENT_ROW_LABELED, t·B_l + g), its label one-hot; unlabeled row g likewise
 * (position t·B_u + g, weak then strong view from (seed, RNG_AUGMENT_ROW_UNLABELED, t·B_u + g)); the uniform draws
 * are the one-process draws. It writes the global x of every step to OUT.bin, which must not depend on R.
 * Prints "N checks passed"; exits 1 on the first failure. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ranks.h"
#include "trainer.h"

#define D MPLC_INPUT_SIZE
#define K MPLC_CLASSES

static void check(int ok, const char *what, long t, long g) {
    if (ok) return;
    fprintf(stderr, "FAIL: step %ld, global row %ld: %s\n", t, g, what);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv) {
    ranks_init(&argc, &argv);
    if (argc != 3) {
        fprintf(stderr, "usage: test_mpi DATA_DIR OUT.bin\n");
        return 2;
    }
    Trainer *T = xcalloc(1, sizeof *T);
    Err e;
    T->cfg.seed = 7;
    T->cfg.labels = 100;
    T->cfg.data_dir = argv[1];
    if (locate_inputs(&T->in, &T->sup, &e) != 0 || trainer_load_data(T, &e) != 0 ||
        dataset_pick_labeled(&T->data.train, T->cfg.labels, T->cfg.seed, &T->labeled, &e) != 0)
        die_err(&e, 1);
    T->n_labeled = (size_t)T->cfg.labels;
    T->step_io = arena_alloc(MPLC_STEP_IO_FLOATS);
    T->img = xcalloc(2 * (size_t)D, sizeof(float));
    order_init(&T->order_l, T->n_labeled, T->cfg.seed, RNG_ORDER_LABELED);
    order_init(&T->order_u, T->unl->n, T->cfg.seed, RNG_ORDER_UNLABELED);
    T->aug = aug_spec(&T->data, 1, 1); /* flips on: they draw numbers too */
    const int R = rank_count(), BL = MPLC_BATCH_LABELED, BU = MPLC_BATCH_UNLABELED;
    const int LBL = MPLC_LOCAL_BATCH_LABELED, LBU = MPLC_LOCAL_BATCH_UNLABELED;
    const size_t local_floats = (size_t)(LBL + 2 * LBU) * D, local_y = (size_t)LBL * K;
    float *all_x = xmalloc((size_t)R * local_floats * sizeof(float)), *all_y = xmalloc((size_t)R * local_y * sizeof(float));
    float *global = xmalloc((size_t)(BL + 2 * BU) * D * sizeof(float)), *want = xmalloc(2 * (size_t)D * sizeof(float));
    FILE *out = rank_leader() ? fopen(argv[2], "wb") : NULL;
    if (rank_leader() && !out) die(1, "%s: cannot create", argv[2]);
    long checks = 0;
    for (long t = 0; t < 6; t++) {
        batch_fill_step(T, t, 0.1, 0.1, 0, 1, 0);
        MPI_Gather(T->step_io + T->in.x->offset, (int)local_floats, MPI_FLOAT, all_x, (int)local_floats, MPI_FLOAT, 0,
                   MPI_COMM_WORLD);
        MPI_Gather(T->step_io + T->in.y->offset, (int)local_y, MPI_FLOAT, all_y, (int)local_y, MPI_FLOAT, 0,
                   MPI_COMM_WORLD);
        if (!rank_leader()) continue;
        for (int r = 0; r < R; r++) { /* rank r's blocks [LBL labeled; LBU weak; LBU strong] into the global blocks */
            const float *x = all_x + (size_t)r * local_floats;
            memcpy(global + (size_t)r * LBL * D, x, (size_t)LBL * D * sizeof(float));
            memcpy(global + (size_t)(BL + r * LBU) * D, x + (size_t)LBL * D, (size_t)LBU * D * sizeof(float));
            memcpy(global + (size_t)(BL + BU + r * LBU) * D, x + (size_t)(LBL + LBU) * D, (size_t)LBU * D * sizeof(float));
        }
        for (long g = 0; g < BL; g++) {
            uint32_t k = T->labeled[order_at(&T->order_l, (uint64_t)t * BL + (uint64_t)g)];
            Rng rng;
            rng_init(&rng, T->cfg.seed, RNG_AUGMENT_ROW_LABELED, (uint64_t)t * BL + (uint64_t)g);
            aug_weak(&T->aug, T->data.train.x + (size_t)k * D, want, &rng);
            check(memcmp(global + (size_t)g * D, want, D * sizeof(float)) == 0,
                  "labeled row: not the weak view of the one-process image", t, g);
            const float *y = all_y + (size_t)(g / LBL) * local_y + (size_t)(g % LBL) * K;
            check(y[T->data.train.y[k]] == 1.0f, "label: not the one-process image's", t, g);
            checks += 2;
        }
        for (long g = 0; g < BU; g++) {
            uint32_t k = order_at(&T->order_u, (uint64_t)t * BU + (uint64_t)g);
            Rng rng;
            rng_init(&rng, T->cfg.seed, RNG_AUGMENT_ROW_UNLABELED, (uint64_t)t * BU + (uint64_t)g);
            aug_weak(&T->aug, T->unl->x + (size_t)k * D, want, &rng);
            aug_strong(&T->aug, T->unl->x + (size_t)k * D, want + D, T->img, &rng);
            check(memcmp(global + (size_t)(BL + g) * D, want, D * sizeof(float)) == 0,
                  "unlabeled weak view: not the one-process image's", t, g);
            check(memcmp(global + (size_t)(BL + BU + g) * D, want + D, D * sizeof(float)) == 0,
                  "unlabeled strong view: not the one-process image's", t, g);
            checks += 2;
        }
        if (fwrite(global, sizeof(float), (size_t)(BL + 2 * BU) * D, out) != (size_t)(BL + 2 * BU) * D)
            die(1, "%s: write failed", argv[2]);
    }
    if (out && fclose(out) != 0) die(1, "%s: write failed", argv[2]);
    if (rank_leader()) printf("%ld checks passed (%d ranks, 6 steps)\n", checks, R);
    ranks_finish(0);
}
