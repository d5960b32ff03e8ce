/* The tiny fuzzing model's tables (see model.h); the entry points are never called by the fuzz targets. */
#include "model.h"

#define T2(name, off, fan, isw) {name, 2, {3, 2, 0, 0}, off, 6, fan, isw, 0}
#define T1(name, off) {name, 1, {2, 0, 0, 0}, off, 2, 0, 0, 0}
#define S_(name, off) {name, 0, {0, 0, 0, 0}, off, 1, 0, 0, 0}

const mplc_tensor mplc_state_tensors[] = {
    T2("teacher/dense0/weight", 0, 3, 1),          T1("teacher/dense0/bias", 8),
    T2("student/dense0/weight", 10, 3, 1),         T1("student/dense0/bias", 16),
    T2("teacher_momentum/dense0/weight", 18, 0, 0), T1("teacher_momentum/dense0/bias", 24),
    T2("student_momentum/dense0/weight", 26, 0, 0), T1("student_momentum/dense0/bias", 30),
};
const mplc_tensor mplc_step_inputs[] = {
    {"x", 4, {6, 1, 1, 3}, 0, 18, 0, 0, 0}, {"y", 2, {2, 2, 0, 0}, 18, 4, 0, 0, 0},
    S_("lr_teacher", 22), S_("lr_student", 23), S_("uda_weight", 24), S_("feedback_scale", 25),
};
const mplc_tensor mplc_step_outputs[] = {
    S_("loss_sup", 26), S_("loss_uda", 27), S_("mask_rate", 28), S_("loss_student_u", 29), S_("loss_student_l", 30), S_("h", 31),
};
const mplc_tensor mplc_supervised_inputs[] = {
    {"x", 4, {2, 1, 1, 3}, 0, 6, 0, 0, 0}, {"y", 2, {2, 2, 0, 0}, 6, 4, 0, 0, 0}, S_("lr", 10),
};
const mplc_tensor mplc_supervised_outputs[] = {S_("loss", 11)};

int mplc_set_threads(int threads) { (void)threads; return 1; }
void mplc_step(float *state, float *io, float *scratch) { (void)state, (void)io, (void)scratch; }
void mplc_supervised_step(float *state, float *io, float *scratch) { (void)state, (void)io, (void)scratch; }
void mplc_predict_teacher(const float *state, const float *x, float *logits, float *scratch) {
    (void)state, (void)x, (void)logits, (void)scratch;
}
void mplc_predict_student(const float *state, const float *x, float *logits, float *scratch) {
    (void)state, (void)x, (void)logits, (void)scratch;
}
