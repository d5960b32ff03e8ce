#include "tensors.h"

#include <math.h>
#include <string.h>

#include "budget.h"

const TensorTable TABLE_STATE = {mplc_state_tensors, MPLC_NUM_STATE_TENSORS, MPLC_STATE_FLOATS, "state tensor"};
const TensorTable TABLE_STEP_IN = {mplc_step_inputs, MPLC_NUM_STEP_INPUTS, MPLC_STEP_IO_FLOATS, "step input"};
const TensorTable TABLE_STEP_OUT = {mplc_step_outputs, MPLC_NUM_STEP_OUTPUTS, MPLC_STEP_IO_FLOATS, "step output"};
const TensorTable TABLE_SUP_IN = {mplc_supervised_inputs, MPLC_NUM_SUPERVISED_INPUTS, MPLC_SUPERVISED_IO_FLOATS,
                                  "supervised input"};
const TensorTable TABLE_SUP_OUT = {mplc_supervised_outputs, MPLC_NUM_SUPERVISED_OUTPUTS, MPLC_SUPERVISED_IO_FLOATS,
                                   "supervised output"};

int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

const mplc_tensor *table_find(const TensorTable *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->items[i].name, name) == 0) return &t->items[i];
    return NULL;
}

int table_validate(const TensorTable *t, Err *e) {
    for (int i = 0; i < t->count; i++) {
        const mplc_tensor *x = &t->items[i];
        size_t n = 1;
        if (x->rank < 0 || x->rank > 4) return err_set(e, "model.h: %s '%s' has rank %d", t->what, x->name, x->rank);
        for (int d = 0; d < x->rank; d++) {
            if (x->shape[d] < 0 || size_mul(n, (size_t)x->shape[d], &n) != 0)
                return err_set(e, "model.h: %s '%s' has a bad shape", t->what, x->name);
        }
        if (n != x->count) return err_set(e, "model.h: %s '%s': count %zu != product of shape %zu", t->what, x->name, x->count, n);
        if (x->offset > t->arena_floats || x->count > t->arena_floats - x->offset)
            return err_set(e, "model.h: %s '%s' lies outside its arena", t->what, x->name);
    }
    return 0;
}

static int is_parameter(const char *name) { return starts_with(name, "teacher/") || starts_with(name, "student/"); }

/* BatchNorm's scale and running variance start at 1 (docs/ABI.md); everything else at 0 or random. */
static int starts_at_one(const char *name) {
    size_t n = strlen(name);
    return (n >= 6 && strcmp(name + n - 6, "/scale") == 0) || (n >= 12 && strcmp(name + n - 12, "/running_var") == 0);
}

void init_state(float *state, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, RNG_INIT, 0);
    memset(state, 0, sizeof(float) * (size_t)MPLC_STATE_FLOATS);
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (!is_parameter(t->name)) continue; /* momenta start at zero */
        if (starts_at_one(t->name)) {
            float *p = state + t->offset;
            for (size_t k = 0; k < t->count; k++) p[k] = 1.0f;
            continue;
        }
        double bound = 0;
        if (MPLC_INIT_UNIFORM) bound = (double)(MPLC_INIT_BOUND);
        else if (t->is_weight && t->fan_in > 0) bound = sqrt(6.0 / t->fan_in);
        if (bound == 0) continue;
        float *p = state + t->offset;
        for (size_t k = 0; k < t->count; k++) p[k] = (float)((2.0 * rng_double(&r) - 1.0) * bound);
    }
}

void zero_state_prefix(float *state, const char *prefix) {
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (starts_with(t->name, prefix)) memset(state + t->offset, 0, sizeof(float) * t->count);
    }
}

void fill_dropout_masks(const TensorTable *t, float *io, Rng *r) {
    for (int i = 0; i < t->count; i++) {
        const mplc_tensor *x = &t->items[i];
        if (!starts_with(x->name, "dropout/")) continue;
        double rate = x->dropout_rate;
        float keep = rate < 1 ? (float)(1.0 / (1.0 - rate)) : 0.0f;
        float *m = io + x->offset;
        for (size_t k = 0; k < x->count; k++) m[k] = rng_double(r) < rate ? 0.0f : keep;
    }
}

long first_nonfinite(const float *arena, const mplc_tensor *t) {
    const float *p = arena + t->offset;
    for (size_t k = 0; k < t->count; k++)
        if (!isfinite(p[k])) return (long)k;
    return -1;
}

static int check_count(const TensorTable *t, const mplc_tensor *x, size_t want, const char *what, Err *e) {
    if (x->count != want)
        return err_set(e, "model.h: %s '%s' has %zu floats, the runner expects %zu (%s)", t->what, x->name, x->count,
                       want, what);
    return 0;
}

static int require(const TensorTable *t, const char *name, const mplc_tensor **out, Err *e) {
    *out = table_find(t, name);
    if (!*out) return err_set(e, "model.h: the %s table has no '%s'", t->what, name);
    return 0;
}

int arenas_fit_in_memory(int ema_arenas, Err *e) {
    const uint64_t f = sizeof(float);
    const uint64_t state = f * (uint64_t)MPLC_STATE_FLOATS * (1 + (uint64_t)(ema_arenas > 0)),
                   step = f * (uint64_t)MPLC_STEP_IO_FLOATS,
                   sup = f * (uint64_t)MPLC_SUPERVISED_IO_FLOATS, scratch = f * (uint64_t)MPLC_SCRATCH_FLOATS,
                   eval = f * (uint64_t)MPLC_EVAL_BATCH * ((uint64_t)MPLC_INPUT_SIZE + (uint64_t)MPLC_CLASSES);
    const uint64_t total = state + step + sup + scratch + eval;
    const char *source;
    uint64_t limit, planned;
    if (budget_reserve(total, &limit, &source, &planned) == 0) return 0; /* the data loaded later counts on top */
    return err_set(e,
                   "model %s needs %llu bytes of arenas (state%s %llu, step I/O %llu, supervised I/O %llu, scratch %llu, "
                   "evaluation %llu), more than the %llu bytes of %s; nothing was allocated",
                   MPLC_MODEL_NAME, (unsigned long long)total, ema_arenas > 0 ? " and its EMA" : "",
                   (unsigned long long)state, (unsigned long long)step,
                   (unsigned long long)sup, (unsigned long long)scratch, (unsigned long long)eval,
                   (unsigned long long)limit, budget_source_name(source));
}

int locate_inputs(StepInputs *step, SupInputs *sup, Err *e) {
    const TensorTable *all[] = {&TABLE_STATE, &TABLE_STEP_IN, &TABLE_STEP_OUT, &TABLE_SUP_IN, &TABLE_SUP_OUT};
    for (int i = 0; i < 5; i++)
        if (table_validate(all[i], e) != 0) return -1;
    /* The step functions take this rank's rows of each batch (the whole batch with one rank). */
    const size_t D = MPLC_INPUT_SIZE, K = MPLC_CLASSES, BL = MPLC_LOCAL_BATCH_LABELED,
                 BU = MPLC_LOCAL_BATCH_UNLABELED, F = MPLC_LOCAL_FINETUNE_BATCH;
    memset(step, 0, sizeof *step);
    memset(sup, 0, sizeof *sup);
    if (require(&TABLE_STEP_IN, "x", &step->x, e) || require(&TABLE_STEP_IN, "y", &step->y, e) ||
        require(&TABLE_STEP_IN, "lr_teacher", &step->lr_teacher, e) ||
        require(&TABLE_STEP_IN, "lr_student", &step->lr_student, e) ||
        require(&TABLE_STEP_IN, "uda_weight", &step->uda_weight, e) ||
        require(&TABLE_STEP_IN, "feedback_scale", &step->feedback_scale, e) ||
        require(&TABLE_SUP_IN, "x", &sup->x, e) || require(&TABLE_SUP_IN, "y", &sup->y, e) ||
        require(&TABLE_SUP_IN, "lr", &sup->lr, e))
        return -1;
    step->uniform = table_find(&TABLE_STEP_IN, "uniform");
    step->teacher_x = table_find(&TABLE_STEP_IN, "teacher_x");
    step->feedback_baseline = table_find(&TABLE_STEP_IN, "feedback_baseline");
    /* The macro decides whether the runner loads a teacher cache, the table where the rows go: they must agree. */
    if (!step->teacher_x != !MPLC_TEACHER_READS_PREDICTIONS)
        return err_set(e, "model.h: MPLC_TEACHER_READS_PREDICTIONS is %d but the step %s an input 'teacher_x'",
                       MPLC_TEACHER_READS_PREDICTIONS, step->teacher_x ? "has" : "has no");
    if (check_count(&TABLE_STEP_IN, step->x, (BL + 2 * BU) * D, "(B_l + 2 B_u) x H x W x C", e) ||
        check_count(&TABLE_STEP_IN, step->y, BL * K, "B_l x classes", e) ||
        (step->uniform && check_count(&TABLE_STEP_IN, step->uniform, BU, "B_u", e)) ||
        (step->teacher_x && check_count(&TABLE_STEP_IN, step->teacher_x, (BL + BU) * K, "(B_l + B_u) x classes", e)) ||
        check_count(&TABLE_STEP_IN, step->lr_teacher, 1, "a scalar", e) ||
        check_count(&TABLE_STEP_IN, step->lr_student, 1, "a scalar", e) ||
        check_count(&TABLE_STEP_IN, step->uda_weight, 1, "a scalar", e) ||
        check_count(&TABLE_STEP_IN, step->feedback_scale, 1, "a scalar", e) ||
        (step->feedback_baseline && check_count(&TABLE_STEP_IN, step->feedback_baseline, 1, "a scalar", e)) ||
        check_count(&TABLE_SUP_IN, sup->x, F * D, "finetune batch x H x W x C", e) ||
        check_count(&TABLE_SUP_IN, sup->y, F * K, "finetune batch x classes", e) ||
        check_count(&TABLE_SUP_IN, sup->lr, 1, "a scalar", e))
        return -1;
    static const char *const known_step[] = {"x",          "y",          "uniform",        "lr_teacher",
                                             "lr_student", "uda_weight", "feedback_scale", "teacher_x",
                                             "feedback_baseline"};
    for (int i = 0; i < MPLC_NUM_STEP_INPUTS; i++) {
        const char *name = mplc_step_inputs[i].name;
        int ok = starts_with(name, "dropout/");
        for (size_t k = 0; k < sizeof known_step / sizeof *known_step; k++) ok |= strcmp(name, known_step[k]) == 0;
        if (!ok) return err_set(e, "model.h: step input '%s' is unknown to this runner", name);
    }
    for (int i = 0; i < MPLC_NUM_SUPERVISED_INPUTS; i++) {
        const char *name = mplc_supervised_inputs[i].name;
        if (!starts_with(name, "dropout/") && strcmp(name, "x") && strcmp(name, "y") && strcmp(name, "lr"))
            return err_set(e, "model.h: supervised input '%s' is unknown to this runner", name);
    }
    const TensorTable *outs[] = {&TABLE_STEP_OUT, &TABLE_SUP_OUT};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < outs[k]->count; i++)
            if (check_count(outs[k], &outs[k]->items[i], 1, "outputs are scalars", e) != 0) return -1;
    return 0;
}
