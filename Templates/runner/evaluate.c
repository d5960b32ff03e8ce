#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model.h"
#include "safetensors.h"
#include "train.h"
#include "trainer.h"

static int argmax(const float *z) {
    int best = 0;
    for (int k = 1; k < MPLC_CLASSES; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

void evaluate(const float *state, const DataSplit *test, float *x, float *logits, float *scratch, long correct[2]) {
    const size_t B = MPLC_EVAL_BATCH, D = MPLC_INPUT_SIZE;
    correct[0] = correct[1] = 0;
    for (size_t start = 0; start < test->n; start += B) {
        size_t rows = test->n - start < B ? test->n - start : B;
        memcpy(x, test->x + start * D, rows * D * sizeof(float));
        memset(x + rows * D, 0, (B - rows) * D * sizeof(float)); /* pad the last chunk; padded rows are ignored */
        for (int net = 0; net < 2; net++) {
            if (net == 0) mplc_predict_teacher(state, x, logits, scratch);
            else mplc_predict_student(state, x, logits, scratch);
            for (size_t i = 0; i < rows; i++)
                if (argmax(logits + i * MPLC_CLASSES) == test->y[start + i]) correct[net]++;
        }
    }
}

int eval_command(const char *checkpoint, const char *data_dir) {
    Err e;
    StepInputs in;
    SupInputs sup;
    Dataset data;
    if (locate_inputs(&in, &sup, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    if (arenas_fit_in_memory(&e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *state = arena_alloc(MPLC_STATE_FLOATS);
    if (st_load(checkpoint, state, NULL, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    if (dataset_load(data_dir, 0, &data, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *scratch = arena_alloc(MPLC_SCRATCH_FLOATS);
    float *x = arena_alloc((size_t)MPLC_EVAL_BATCH * MPLC_INPUT_SIZE);
    float *logits = arena_alloc((size_t)MPLC_EVAL_BATCH * MPLC_CLASSES);
    long correct[2];
    evaluate(state, &data.test, x, logits, scratch, correct);
    printf("{\"model\":");
    json_write_string(stdout, MPLC_MODEL_NAME);
    printf(",\"checkpoint\":");
    json_write_string(stdout, checkpoint);
    printf(",\"test_examples\":%zu,\"correct_teacher\":%ld,\"correct_student\":%ld,\"acc_teacher\":", data.test.n,
           correct[0], correct[1]);
    json_write_double(stdout, (double)correct[0] / (double)data.test.n);
    printf(",\"acc_student\":");
    json_write_double(stdout, (double)correct[1] / (double)data.test.n);
    printf("}\n");
    free(state);
    free(scratch);
    free(x);
    free(logits);
    dataset_free(&data);
    return 0;
}
