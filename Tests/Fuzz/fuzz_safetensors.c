/* libFuzzer target: checkpoints. st_load (file size, header length, JSON header and its UTF-8, tensor
 * table, data tiling, checksum, finite values) against the model linked in (the tiny model), then
 * checkpoint_resume, which also reads every piece of run metadata and must leave a run state the training
 * loop can use. The seeds carry valid checksums (make_seeds.c writes them with st_save), so the fuzzer starts
 * from checkpoints that load; a mutation of the data section fails the checksum, one of the header need not. */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <limits.h>
#include <math.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"
#include "trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static float *state;
    static StMeta *meta;
    static Trainer *T;
    if (!state) {
        state = arena_alloc(MPLC_STATE_FLOATS);
        meta = xmalloc(sizeof *meta);
        T = xcalloc(1, sizeof *T);
    }
    const char *path = fuzz_file(data, size);
    Err e;
    if (st_load(path, state, meta, &e) == 0) {
        FUZZ_ASSERT(meta->count >= 0 && meta->count <= ST_MAX_META);
        for (int i = 0; i < meta->count; i++) FUZZ_ASSERT(meta_get(meta, meta->key[i]) != NULL);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL);
    }

    /* The same bytes as the checkpoint of a run being resumed (mode mpl, seed 0, 10000 test images). */
    memset(T, 0, sizeof *T);
    T->cfg.mode = MODE_MPL;
    T->cfg.seed = 0;
    T->data.test.n = 10000;
    T->state = state;
    snprintf(T->ckpt_path, sizeof T->ckpt_path, "%s", path);
    T->cfg.data_dir = "unused"; /* the data directory the command gave; "data" (optional) replaces it */
    if (checkpoint_data_dir(T, &e) == 0) FUZZ_ASSERT(T->cfg.data_dir && T->cfg.data_dir[0] != '\0');
    else FUZZ_ASSERT(e.msg[0] != '\0');
    if (checkpoint_resume(T, &e) == 0) {
        /* What the training loop divides by, indexes with or counts down from. */
        FUZZ_ASSERT(T->cfg.labels >= 1 && T->cfg.steps >= 1 && T->cfg.finetune_steps >= 0);
        FUZZ_ASSERT(T->cfg.eval_every >= 1 && T->cfg.checkpoint_every >= 1);
        FUZZ_ASSERT(T->rs.step >= 0);
        if (T->rs.phase == PHASE_MAIN) FUZZ_ASSERT(T->rs.step <= T->cfg.steps);
        if (T->rs.phase == PHASE_FINETUNE) FUZZ_ASSERT(T->rs.step <= T->cfg.finetune_steps);
        /* Counters the run can have reached, so that no increment overflows (issue 15). */
        FUZZ_ASSERT(T->cfg.steps <= LONG_MAX - T->cfg.finetune_steps);
        FUZZ_ASSERT(T->rs.sum_n >= 0 && T->rs.sum_n <= T->rs.step && T->rs.metrics_bytes >= 0);
        FUZZ_ASSERT(T->rs.ema_updates >= 0 && T->rs.ema_updates <= T->cfg.steps + T->cfg.finetune_steps);
        FUZZ_ASSERT(T->cfg.ema_decay >= 0 && T->cfg.ema_decay < 1);
        for (int i = 0; i < MAX_OUTPUTS; i++) FUZZ_ASSERT(isfinite(T->rs.sums[i]));
        for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) FUZZ_ASSERT(first_nonfinite(state, &mplc_state_tensors[i]) < 0);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0');
    }
    return 0;
}
