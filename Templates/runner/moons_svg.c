#include "moons_svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#define MOONS_GRID 120  /* cells per side of the decision picture */
#define MOONS_LEVELS 10 /* shades of P(class 1): cells of one shade in a row are one run of a path */
#define PANEL 360.0     /* side of a panel, in SVG units */

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

static int level(float q) {
    int l = (int)(q * MOONS_LEVELS);
    return l < 0 ? 0 : l >= MOONS_LEVELS ? MOONS_LEVELS - 1 : l;
}

/* The colour of a shade: blue for class 0, orange for class 1, paler near the boundary. */
static void shade(FILE *f, int l) {
    double q = (l + 0.5) / MOONS_LEVELS;
    fprintf(f, "rgb(%d,%d,%d)", (int)(120 + 135 * q), (int)(170 - 20 * fabs(q - 0.5)), (int)(255 - 175 * q));
}

/* The decision regions: one path per shade, each run of equal cells in a row one rectangle, in grid units. */
static void regions(FILE *f, const float *p) {
    fprintf(f, "<g transform=\"scale(%g)\" shape-rendering=\"crispEdges\">\n", PANEL / MOONS_GRID);
    for (int l = 0; l < MOONS_LEVELS; l++) {
        int any = 0;
        for (int row = 0; row < MOONS_GRID; row++)
            for (int col = 0; col < MOONS_GRID;) {
                int end = col;
                while (end < MOONS_GRID && level(p[row * MOONS_GRID + end]) == level(p[row * MOONS_GRID + col])) end++;
                if (level(p[row * MOONS_GRID + col]) == l) {
                    if (!any) fprintf(f, "<path fill=\""), shade(f, l), fprintf(f, "\" d=\""), any = 1;
                    fprintf(f, "M%d %dh%dv1h-%dz", col, row, end - col, end - col);
                }
                col = end;
            }
        if (any) fprintf(f, "\"/>\n");
    }
    fprintf(f, "</g>\n");
}

/* Ticks at the multiples of 0.5 inside [lo, hi] along both axes, with their values. */
static void axes(FILE *f, const float lo[2], const float hi[2]) {
    fprintf(f, "<g class=\"axes\" stroke=\"#333\" font-size=\"11\">\n<path fill=\"none\" d=\"M0 0V%gH%g\"/>\n", PANEL,
            PANEL);
    for (int k = 0; k < 2; k++)
        for (double v = ceil(lo[k] * 2) / 2; v <= hi[k]; v += 0.5) {
            double at = k == 0 ? (v - lo[0]) / (hi[0] - lo[0]) * PANEL : (hi[1] - v) / (hi[1] - lo[1]) * PANEL;
            if (k == 0)
                fprintf(f,
                        "<path d=\"M%.1f %gv5\"/>"
                        "<text x=\"%.1f\" y=\"%g\" stroke=\"none\" text-anchor=\"middle\">%g</text>\n",
                        at, PANEL, at, PANEL + 17, v);
            else
                fprintf(f,
                        "<path d=\"M0 %.1fh-5\"/>"
                        "<text x=\"-8\" y=\"%.1f\" stroke=\"none\" text-anchor=\"end\">%g</text>\n",
                        at, at + 4, v);
        }
    fprintf(f, "<text x=\"%g\" y=\"%g\" stroke=\"none\" text-anchor=\"middle\">x1</text>\n", PANEL / 2, PANEL + 32);
    fprintf(f, "<text x=\"-30\" y=\"%g\" stroke=\"none\" text-anchor=\"middle\">x2</text>\n</g>\n", PANEL / 2);
}

/* The training points, drawn once (in defs) and used by both panels: the unlabeled ones as dots of one path per
 * class (a round cap on a zero-length line), the labeled ones large. */
static void points(FILE *f, const DataSplit *s, const uint32_t *labeled, size_t n_labeled, const float lo[2],
                   const float hi[2]) {
    fprintf(f, "<defs><g id=\"points\">\n");
    for (int k = 0; k < 2; k++) {
        fprintf(f, "<path stroke=\"%s\" stroke-opacity=\"0.5\" stroke-width=\"2.4\" stroke-linecap=\"round\" d=\"",
                k ? "#7a3200" : "#0b2a6b");
        for (size_t i = 0; i < s->n; i++)
            if (s->y[i] == k)
                fprintf(f, "M%.1f %.1fh0", (s->x[2 * i] - lo[0]) / (hi[0] - lo[0]) * PANEL,
                        (hi[1] - s->x[2 * i + 1]) / (hi[1] - lo[1]) * PANEL);
        fprintf(f, "\"/>\n");
    }
    for (size_t j = 0; j < n_labeled; j++) {
        size_t i = labeled[j];
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\" stroke=\"white\" stroke-width=\"2\"/>\n",
                (s->x[2 * i] - lo[0]) / (hi[0] - lo[0]) * PANEL, (hi[1] - s->x[2 * i + 1]) / (hi[1] - lo[1]) * PANEL,
                s->y[i] ? "#ff7f0e" : "#1f77b4");
    }
    fprintf(f, "</g></defs>\n");
}

static void panel(FILE *f, double ox, const char *name, double accuracy, const float *p, const float lo[2],
                  const float hi[2]) {
    fprintf(f, "<g class=\"panel\" transform=\"translate(%.0f,40)\">\n<text x=\"0\" y=\"-12\" font-size=\"15\">%s", ox,
            name);
    if (accuracy >= 0) fprintf(f, ": test accuracy %.2f%%", 100 * accuracy);
    fprintf(f, "</text>\n");
    regions(f, p);
    fprintf(f, "<use href=\"#points\"/>\n");
    axes(f, lo, hi);
    fprintf(f, "</g>\n");
}

/* The legend below the panels: the classes' colours, the two point sizes, the shading. */
static void legend(FILE *f, double y) {
    fprintf(f, "<g class=\"legend\" transform=\"translate(60,%g)\" font-size=\"12\">\n", y);
    fprintf(f, "<circle cx=\"6\" cy=\"0\" r=\"6\" fill=\"#1f77b4\" stroke=\"white\" stroke-width=\"2\"/>"
               "<text x=\"16\" y=\"4\">class 0, labeled</text>\n");
    fprintf(f, "<circle cx=\"136\" cy=\"0\" r=\"6\" fill=\"#ff7f0e\" stroke=\"white\" stroke-width=\"2\"/>"
               "<text x=\"146\" y=\"4\">class 1, labeled</text>\n");
    fprintf(f, "<circle cx=\"266\" cy=\"0\" r=\"1.2\" fill=\"#0b2a6b\"/><circle cx=\"272\" cy=\"0\" r=\"1.2\" "
               "fill=\"#7a3200\"/><text x=\"280\" y=\"4\">unlabeled (class 0, 1)</text>\n");
    fprintf(f, "<text x=\"440\" y=\"4\">P(class 1):</text>\n");
    for (int l = 0; l < MOONS_LEVELS; l++) {
        fprintf(f, "<rect x=\"%d\" y=\"-6\" width=\"12\" height=\"12\" fill=\"", 510 + 12 * l);
        shade(f, l);
        fprintf(f, "\"/>\n");
    }
    fprintf(f,
            "<text x=\"506\" y=\"20\" font-size=\"10\">0</text>"
            "<text x=\"%d\" y=\"20\" font-size=\"10\">1</text>\n</g>\n",
            506 + 12 * MOONS_LEVELS);
}

int moons_write_boundary(const char *path, const float *state, float *scratch, float *x, float *logits,
                         const Dataset *d, const uint32_t *labeled, size_t n_labeled, const double accuracy[2],
                         Err *e) {
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
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"490\" font-family=\"sans-serif\">\n");
    fprintf(f, "<title>two moons: decision regions of the student and the teacher, %s</title>\n", MPLC_MODEL_NAME);
    points(f, &d->train, labeled, n_labeled, lo, hi);
    panel(f, 50, "student", accuracy[1], p, lo, hi);
    panel(f, 480, "teacher", accuracy[0], p + MOONS_GRID * MOONS_GRID, lo, hi);
    legend(f, 40 + PANEL + 60);
    fprintf(f, "</svg>\n");
    free(p);
    return atomic_commit(&out, e);
}
