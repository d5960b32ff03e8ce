#include "moons_svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#define MOONS_GRID 120 /* cells per side of the decision picture */

static void bounds(const DataSplit *s, float lo[2], float hi[2]) {
    lo[0] = hi[0] = s->x[0], lo[1] = hi[1] = s->x[1];
    for (size_t i = 0; i < s->n; i++)
        for (int k = 0; k < 2; k++) {
            float v = s->x[2 * i + k];
            lo[k] = v < lo[k] ? v : lo[k];
            hi[k] = v > hi[k] ? v : hi[k];
        }
    for (int k = 0; k < 2; k++) lo[k] -= 0.25f, hi[k] += 0.25f;
}

/* P(class 1) on a MOONS_GRID x MOONS_GRID grid, row 0 at the top, in chunks of MPLC_EVAL_BATCH points. */
static void grid_probabilities(int teacher, const float *state, float *scratch, float *x, float *logits,
                               const float lo[2], const float hi[2], float *p) {
    const size_t cells = (size_t)MOONS_GRID * MOONS_GRID;
    for (size_t start = 0; start < cells; start += MPLC_EVAL_BATCH) {
        for (size_t j = 0; j < MPLC_EVAL_BATCH; j++) {
            size_t cell = start + j < cells ? start + j : cells - 1;
            size_t row = cell / MOONS_GRID, col = cell % MOONS_GRID;
            x[2 * j] = lo[0] + (hi[0] - lo[0]) * ((float)col + 0.5f) / MOONS_GRID;
            x[2 * j + 1] = hi[1] - (hi[1] - lo[1]) * ((float)row + 0.5f) / MOONS_GRID;
        }
        if (teacher) mplc_predict_teacher(state, x, logits, scratch);
        else mplc_predict_student(state, x, logits, scratch);
        for (size_t j = 0; j < MPLC_EVAL_BATCH && start + j < cells; j++)
            p[start + j] = (float)(1.0 / (1.0 + exp((double)logits[2 * j] - (double)logits[2 * j + 1])));
    }
}

static void panel(FILE *f, double ox, const char *title, const float *p, const DataSplit *s, const uint32_t *labeled,
                  size_t n_labeled, const float lo[2], const float hi[2]) {
    const double size = 360, cell = size / MOONS_GRID;
    fprintf(f, "<g transform=\"translate(%.0f,30)\">\n<text x=\"0\" y=\"-10\" font-size=\"16\">%s</text>\n", ox, title);
    for (int row = 0; row < MOONS_GRID; row++)
        for (int col = 0; col < MOONS_GRID; col++) {
            double q = p[row * MOONS_GRID + col]; /* blue for class 0, orange for class 1 */
            int red = (int)(120 + 135 * q), green = (int)(170 - 20 * fabs(q - 0.5)), blue = (int)(255 - 175 * q);
            fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"rgb(%d,%d,%d)\"/>\n",
                    col * cell, row * cell, cell + 0.05, cell + 0.05, red, green, blue);
        }
    for (size_t i = 0; i < s->n; i++) {
        double px = (s->x[2 * i] - lo[0]) / (hi[0] - lo[0]) * size, py = (hi[1] - s->x[2 * i + 1]) / (hi[1] - lo[1]) * size;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.2\" fill=\"%s\" fill-opacity=\"0.5\"/>\n", px, py,
                s->y[i] ? "#7a3200" : "#0b2a6b");
    }
    for (size_t k = 0; k < n_labeled; k++) {
        size_t i = labeled[k];
        double px = (s->x[2 * i] - lo[0]) / (hi[0] - lo[0]) * size, py = (hi[1] - s->x[2 * i + 1]) / (hi[1] - lo[1]) * size;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\" stroke=\"white\" stroke-width=\"2\"/>\n", px, py,
                s->y[i] ? "#ff7f0e" : "#1f77b4");
    }
    fprintf(f, "</g>\n");
}

int moons_write_boundary(const char *path, const float *state, float *scratch, float *x, float *logits,
                         const Dataset *d, const uint32_t *labeled, size_t n_labeled, Err *e) {
    float lo[2], hi[2];
    bounds(&d->train, lo, hi);
    float *p = xcalloc(2 * (size_t)MOONS_GRID * MOONS_GRID, sizeof(float));
    grid_probabilities(0, state, scratch, x, logits, lo, hi, p);
    grid_probabilities(1, state, scratch, x, logits, lo, hi, p + MOONS_GRID * MOONS_GRID);
    AtomicFile out;
    if (atomic_create(&out, path, e) != 0) {
        free(p);
        return -1;
    }
    FILE *f = out.fp;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"780\" height=\"400\" font-family=\"sans-serif\">\n");
    panel(f, 10, "student", p, &d->train, labeled, n_labeled, lo, hi);
    panel(f, 410, "teacher", p + MOONS_GRID * MOONS_GRID, &d->train, labeled, n_labeled, lo, hi);
    fprintf(f, "</svg>\n");
    free(p);
    return atomic_commit(&out, e);
}
