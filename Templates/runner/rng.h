/* Deterministic random numbers.
 *
 * The runner never keeps a long-lived generator. Every use derives a fresh xoshiro256** generator
 * from (seed, stream, index), e.g. (seed, RNG_AUGMENT, step). The whole random state of a run at
 * step t is therefore (seed, t): a resumed run draws exactly the numbers an uninterrupted run
 * draws, and the checkpoint only has to store the seed and the step counter. */
#ifndef RUNNER_RNG_H
#define RUNNER_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

/* Streams: one per purpose, so that changing how many numbers one purpose draws never shifts another. */
enum {
    RNG_INIT = 1,        /* weight initialisation (index 0) */
    RNG_SPLIT,           /* choice of the labeled subset (index 0) */
    RNG_ORDER_LABELED,   /* labeled order for MPL/UDA steps (index: epoch) */
    RNG_ORDER_UNLABELED, /* unlabeled order (index: epoch) */
    RNG_AUGMENT,         /* augmentation of step t (index: t) */
    RNG_DROPOUT,         /* dropout masks of step t */
    RNG_UNIFORM,         /* the `uniform` input of step t */
    RNG_ORDER_SUP,       /* labeled order of the supervised baseline (index: epoch) */
    RNG_AUGMENT_SUP,
    RNG_DROPOUT_SUP,
    RNG_ORDER_FT,        /* labeled order while finetuning (index: epoch) */
    RNG_AUGMENT_FT,
    RNG_DROPOUT_FT,
    /* With ranks (MPLC_RANKS > 1, batch.c): one stream per image of the global batch instead of one per step, so
     * that each rank augments its slice alone (index: step x batch + row); and dropout per (step, rank). */
    RNG_AUGMENT_ROW_LABELED,
    RNG_AUGMENT_ROW_UNLABELED,
    RNG_AUGMENT_ROW_SUP,
    RNG_AUGMENT_ROW_FT,
    RNG_DROPOUT_RANK,
    RNG_DROPOUT_RANK_SUP,
    RNG_DROPOUT_RANK_FT
};

uint64_t splitmix64(uint64_t *x);
void rng_init(Rng *r, uint64_t seed, uint64_t stream, uint64_t index);
uint64_t rng_next(Rng *r);
double rng_double(Rng *r);            /* uniform in [0, 1), 53 bits */
float rng_float(Rng *r);              /* uniform in [0, 1), 24 bits */
uint32_t rng_below(Rng *r, uint32_t n); /* uniform in [0, n), unbiased; n > 0 */
int rng_range(Rng *r, int lo, int hi);  /* uniform integer in [lo, hi] */

#endif
