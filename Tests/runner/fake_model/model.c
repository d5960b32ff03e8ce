/* The fake model: docs/STEP.md computed by hand for two linear softmax classifiers (see model.h). */
#include "model.h"

#include <math.h>
#include <string.h>

/* The step takes this rank's rows (docs/ABI.md): the whole batch with one rank. */
enum { D = MPLC_INPUT_SIZE, K = MPLC_CLASSES, BL = MPLC_LOCAL_BATCH_LABELED, BU = MPLC_LOCAL_BATCH_UNLABELED,
       N = BL + 2 * BU, F = MPLC_LOCAL_FINETUNE_BATCH, E = MPLC_EVAL_BATCH, WN = D * K };

#define LABEL_SMOOTHING 0.1f
#define UDA_TEMPERATURE 0.7f
#define UDA_THRESHOLD 0.6f
#define TEACHER_DROPOUT 0.1

/* State arena. */
enum { T_W = 0, T_B = T_W + WN, S_W = T_B + K, S_B = S_W + WN,
       TM_W = S_B + K, TM_B = TM_W + WN, SM_W = TM_B + K, SM_B = SM_W + WN, STATE_END = SM_B + K };
/* Step I/O arena. */
enum { IO_X = 0, IO_Y = IO_X + N * D, IO_MASK = IO_Y + BL * K, IO_LR_T = IO_MASK + N * D, IO_LR_S, IO_UDA, IO_FB, IO_FB_BASE,
       IO_LOSS_SUP, IO_LOSS_UDA, IO_MASK_RATE, IO_LOSS_SU, IO_LOSS_SL, IO_H, IO_END };
/* Supervised I/O arena. */
enum { SUP_X = 0, SUP_Y = SUP_X + F * D, SUP_LR = SUP_Y + F * K, SUP_LOSS, SUP_END };
/* Scratch arena. */
enum { SC_XD = 0, SC_Z = SC_XD + N * D, SC_DZ = SC_Z + N * K, SC_S = SC_DZ + N * K, SC_DS = SC_S + F * K,
       SC_GWU = SC_DS + F * K, SC_GBU = SC_GWU + WN, SC_GWL = SC_GBU + K, SC_GBL = SC_GWL + WN, SC_END = SC_GBL + K };

_Static_assert(STATE_END == MPLC_STATE_FLOATS, "state size");
_Static_assert(IO_END == MPLC_STEP_IO_FLOATS, "step io size");
_Static_assert(SUP_END == MPLC_SUPERVISED_IO_FLOATS, "supervised io size");
_Static_assert(SC_END == MPLC_SCRATCH_FLOATS, "scratch size");

#define W_(name, off, fan, isw) {name, 2, {D, K, 0, 0}, off, WN, fan, isw, 0}
#define B_(name, off) {name, 1, {K, 0, 0, 0}, off, K, 0, 0, 0}
#define S_(name, off) {name, 0, {0, 0, 0, 0}, off, 1, 0, 0, 0}

const mplc_tensor mplc_state_tensors[] = {
    W_("teacher/dense2/weight", T_W, D, 1), B_("teacher/dense2/bias", T_B),
    W_("student/dense1/weight", S_W, D, 1), B_("student/dense1/bias", S_B),
    W_("teacher_momentum/dense2/weight", TM_W, 0, 0), B_("teacher_momentum/dense2/bias", TM_B),
    W_("student_momentum/dense1/weight", SM_W, 0, 0), B_("student_momentum/dense1/bias", SM_B),
};
const mplc_tensor mplc_step_inputs[] = {
    {"x", 4, {N, MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS}, IO_X, N * D, 0, 0, 0},
    {"y", 2, {BL, K, 0, 0}, IO_Y, BL * K, 0, 0, 0},
    {"dropout/teacher/all/dropout1", 2, {N, D, 0, 0}, IO_MASK, N * D, 0, 0, TEACHER_DROPOUT},
    S_("lr_teacher", IO_LR_T), S_("lr_student", IO_LR_S), S_("uda_weight", IO_UDA), S_("feedback_scale", IO_FB),
    S_("feedback_baseline", IO_FB_BASE),
};
const mplc_tensor mplc_step_outputs[] = {
    S_("loss_sup", IO_LOSS_SUP), S_("loss_uda", IO_LOSS_UDA), S_("mask_rate", IO_MASK_RATE),
    S_("loss_student_u", IO_LOSS_SU), S_("loss_student_l", IO_LOSS_SL), S_("h", IO_H),
};
const mplc_tensor mplc_supervised_inputs[] = {
    {"x", 4, {F, MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS}, SUP_X, F * D, 0, 0, 0},
    {"y", 2, {F, K, 0, 0}, SUP_Y, F * K, 0, 0, 0},
    S_("lr", SUP_LR),
};
const mplc_tensor mplc_supervised_outputs[] = {S_("loss", SUP_LOSS)};

/* out[n, K] = x[n, D] . W[D, K] + b */
static void linear(const float *x, int n, const float *w, const float *b, float *out) {
    for (int i = 0; i < n; i++) {
        float *o = out + i * K;
        for (int k = 0; k < K; k++) o[k] = b[k];
        for (int d = 0; d < D; d++) {
            float xv = x[i * D + d];
            if (xv == 0.0f) continue;
            const float *wr = w + d * K;
            for (int k = 0; k < K; k++) o[k] += xv * wr[k];
        }
    }
}

/* gw[D, K] = x^T dz, gb = column sums of dz */
static void linear_grad(const float *x, int n, const float *dz, float *gw, float *gb) {
    memset(gw, 0, sizeof(float) * WN);
    memset(gb, 0, sizeof(float) * K);
    for (int i = 0; i < n; i++) {
        const float *g = dz + i * K;
        for (int k = 0; k < K; k++) gb[k] += g[k];
        for (int d = 0; d < D; d++) {
            float xv = x[i * D + d];
            if (xv == 0.0f) continue;
            float *gr = gw + d * K;
            for (int k = 0; k < K; k++) gr[k] += xv * g[k];
        }
    }
}

static void softmax_row(const float *z, float scale, float *p) {
    float m = z[0] * scale;
    for (int k = 1; k < K; k++) m = fmaxf(m, z[k] * scale);
    float s = 0;
    for (int k = 0; k < K; k++) s += p[k] = expf(z[k] * scale - m);
    for (int k = 0; k < K; k++) p[k] /= s;
}

static float log_sum_exp(const float *z) {
    float m = z[0];
    for (int k = 1; k < K; k++) m = fmaxf(m, z[k]);
    float s = 0;
    for (int k = 0; k < K; k++) s += expf(z[k] - m);
    return m + logf(s);
}

/* CE of target row q against logits row z; adds coef*(softmax(z) - q) to dz (q sums to 1). */
static float ce_row(const float *z, const float *q, float coef, float *dz) {
    float lse = log_sum_exp(z), loss = 0;
    for (int k = 0; k < K; k++) {
        loss -= q[k] * (z[k] - lse);
        if (dz) dz[k] += coef * (expf(z[k] - lse) - q[k]);
    }
    return loss;
}

static int argmax(const float *z) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

/* docs/STEP.md step 6: one SGD step with momentum, Nesterov and weight decay on weights. */
static void sgd(float *p, float *v, const float *grad, int n, float lr, float mu, int nesterov, float wd) {
    for (int i = 0; i < n; i++) {
        float g = grad[i] + wd * p[i];
        v[i] = mu * v[i] + g;
        float d = nesterov ? g + mu * v[i] : v[i];
        p[i] -= lr * d;
    }
}

static void update_student(float *state, const float *gw, const float *gb, float lr) {
    const float mu = (float)MPLC_STUDENT_MOMENTUM, wd = (float)MPLC_STUDENT_WEIGHT_DECAY;
    sgd(state + S_W, state + SM_W, gw, WN, lr, mu, MPLC_STUDENT_NESTEROV, wd);
    sgd(state + S_B, state + SM_B, gb, K, lr, mu, MPLC_STUDENT_NESTEROV, 0.0f);
}

/* One thread: this model's loops are tiny. */
int mplc_set_threads(int threads) {
    (void)threads;
    return 1;
}

void mplc_step(float *state, float *io, float *scratch) {
    const float *x = io + IO_X, *y = io + IO_Y, *mask = io + IO_MASK;
    const float lr_t = io[IO_LR_T], lr_s = io[IO_LR_S], lambda = io[IO_UDA], fb = io[IO_FB], fb_base = io[IO_FB_BASE];
    float *xd = scratch + SC_XD, *z = scratch + SC_Z, *dz = scratch + SC_DZ, *s = scratch + SC_S, *ds = scratch + SC_DS;
    float *gwu = scratch + SC_GWU, *gbu = scratch + SC_GBU, *gwl = scratch + SC_GWL, *gbl = scratch + SC_GBL;
    float yhat[BU][K], q[K];
    int cls[BU];

    /* 1. teacher forward over all rows, with its input dropout */
    for (int i = 0; i < N * D; i++) xd[i] = x[i] * mask[i];
    linear(xd, N, state + T_W, state + T_B, z);
    memset(dz, 0, sizeof(float) * N * K);

    /* 2. supervised loss with label smoothing */
    float loss_sup = 0;
    for (int i = 0; i < BL; i++) {
        for (int k = 0; k < K; k++) q[k] = (1 - LABEL_SMOOTHING) * y[i * K + k] + LABEL_SMOOTHING / K;
        loss_sup += ce_row(z + i * K, q, 1.0f / BL, dz + i * K) / BL;
    }

    /* 3. UDA: weak-view targets (constants), strong-view predictions */
    float loss_uda = 0, mask_rate = 0;
    for (int j = 0; j < BU; j++) {
        const float *zw = z + (BL + j) * K, *zs = z + (BL + BU + j) * K;
        softmax_row(zw, 1.0f / UDA_TEMPERATURE, q);
        float top = q[0];
        for (int k = 1; k < K; k++) top = fmaxf(top, q[k]);
        float m = top >= UDA_THRESHOLD ? 1.0f : 0.0f;
        loss_uda += m * ce_row(zs, q, lambda * m / BU, dz + (BL + BU + j) * K) / BU;
        mask_rate += m / BU;
        /* 4. hard-argmax pseudo label from the strong view */
        cls[j] = argmax(zs);
        for (int k = 0; k < K; k++) yhat[j][k] = k == cls[j] ? 1.0f : 0.0f;
    }

    /* 5. student on the strong view: g_u */
    const float *xus = x + (BL + BU) * D;
    linear(xus, BU, state + S_W, state + S_B, s);
    memset(ds, 0, sizeof(float) * BU * K);
    float loss_su = 0;
    for (int j = 0; j < BU; j++) loss_su += ce_row(s + j * K, yhat[j], 1.0f / BU, ds + j * K) / BU;
    linear_grad(xus, BU, ds, gwu, gbu);

    /* 6. student update */
    update_student(state, gwu, gbu, lr_s);
    float eta = MPLC_STUDENT_NESTEROV ? lr_s * (1.0f + (float)MPLC_STUDENT_MOMENTUM) : lr_s;

    /* 7. student labeled loss after its update: g_l */
    linear(x, BL, state + S_W, state + S_B, s);
    memset(ds, 0, sizeof(float) * BL * K);
    float loss_sl = 0;
    for (int i = 0; i < BL; i++) loss_sl += ce_row(s + i * K, y + i * K, 1.0f / BL, ds + i * K) / BL;
    linear_grad(x, BL, ds, gwl, gbl);

    /* 8. feedback h = eta * <g_l, g_u>; MPL term f*(h - b)*CE(yhat, z_us) */
    double dot = 0;
    for (int i = 0; i < WN; i++) dot += (double)gwl[i] * gwu[i];
    for (int k = 0; k < K; k++) dot += (double)gbl[k] * gbu[k];
    float h = eta * (float)dot;
    for (int j = 0; j < BU; j++) ce_row(z + (BL + BU + j) * K, yhat[j], fb * (h - fb_base) / BU, dz + (BL + BU + j) * K);

    /* 9. teacher update (its gradient flows through the dropped-out input) */
    linear_grad(xd, N, dz, gwu, gbu);
    const float mu = (float)MPLC_TEACHER_MOMENTUM, wd = (float)MPLC_TEACHER_WEIGHT_DECAY;
    sgd(state + T_W, state + TM_W, gwu, WN, lr_t, mu, MPLC_TEACHER_NESTEROV, wd);
    sgd(state + T_B, state + TM_B, gbu, K, lr_t, mu, MPLC_TEACHER_NESTEROV, 0.0f);

    io[IO_LOSS_SUP] = loss_sup;
    io[IO_LOSS_UDA] = loss_uda;
    io[IO_MASK_RATE] = mask_rate;
    io[IO_LOSS_SU] = loss_su;
    io[IO_LOSS_SL] = loss_sl;
    io[IO_H] = h;
}

void mplc_supervised_step(float *state, float *io, float *scratch) {
    const float *x = io + SUP_X, *y = io + SUP_Y;
    float *s = scratch + SC_S, *ds = scratch + SC_DS, *gw = scratch + SC_GWU, *gb = scratch + SC_GBU;
    linear(x, F, state + S_W, state + S_B, s);
    memset(ds, 0, sizeof(float) * F * K);
    float loss = 0;
    for (int i = 0; i < F; i++) loss += ce_row(s + i * K, y + i * K, 1.0f / F, ds + i * K) / F;
    linear_grad(x, F, ds, gw, gb);
    update_student(state, gw, gb, io[SUP_LR]);
    io[SUP_LOSS] = loss;
}

void mplc_predict_teacher(const float *state, const float *x, float *logits, float *scratch) {
    (void)scratch;
    linear(x, E, state + T_W, state + T_B, logits);
}

void mplc_predict_student(const float *state, const float *x, float *logits, float *scratch) {
    (void)scratch;
    linear(x, E, state + S_W, state + S_B, logits);
}
