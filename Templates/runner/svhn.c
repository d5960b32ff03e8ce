#include "svhn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "mat.h"

static void list_vars(const MatFile *m, char *out, size_t cap) {
    size_t used = (size_t)snprintf(out, cap, "%s", m->nvars ? "" : "none");
    for (int i = 0; i < m->nvars && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, i ? ", %s" : "%s", m->vars[i].name);
}

/* The variable `name`, a real uint8 or double array. */
static const MatVar *find_var(const char *path, const MatFile *m, const char *name, const char *what, Err *e) {
    const MatVar *v = mat_find(m, name);
    if (!v) {
        char vars[256];
        list_vars(m, vars, sizeof vars);
        err_set(e, "%s: no variable '%s' (%s); the file has: %s", path, name, what, vars);
        return NULL;
    }
    if ((v->cls != MAT_CLASS_UINT8 && v->cls != MAT_CLASS_DOUBLE) || !v->numeric) {
        err_set(e, "%s: variable '%s' is a%s %s; expected a real uint8 or double array", path, name,
                v->complex_ ? " complex" : "", mat_class_name(v->cls));
        return NULL;
    }
    return v;
}

/* X[row, col, ch, i] (column-major) -> pixels[i][row][col][ch]; every value must be an integer in [0, 255]. */
static int convert_images(const char *path, const MatVar *x, size_t n, uint8_t *pixels, Err *e) {
    const size_t plane = SVHN_SIDE * SVHN_SIDE;
    const int bytes = x->elem == 1 && x->cls == MAT_CLASS_UINT8 && x->data != NULL;
    for (size_t i = 0; i < n; i++)
        for (int ch = 0; ch < SVHN_CHANNELS; ch++)
            for (int col = 0; col < SVHN_SIDE; col++)
                for (int row = 0; row < SVHN_SIDE; row++) {
                    size_t src = (size_t)row + SVHN_SIDE * (size_t)col + plane * (size_t)ch + SVHN_PIXELS * i;
                    double v = bytes ? x->data[src] : mat_get(x, src);
                    if (!(v >= 0 && v <= 255 && v == floor(v)))
                        return err_set(e, "%s: X(%d, %d, %d, %zu) = %g is not a pixel value (an integer in 0..255)", path,
                                       row + 1, col + 1, ch + 1, i + 1, v);
                    pixels[((i * SVHN_SIDE + (size_t)row) * SVHN_SIDE + (size_t)col) * SVHN_CHANNELS + (size_t)ch] = (uint8_t)v;
                }
    return 0;
}

static int convert_labels(const char *path, const MatVar *y, size_t n, uint8_t *labels, Err *e) {
    for (size_t i = 0; i < n; i++) {
        double v = mat_get(y, i);
        if (!(v >= 0 && v <= 10 && v == floor(v)))
            return err_set(e, "%s: y(%zu) = %g is not an SVHN label (1..10, 10 for the digit 0)", path, i + 1, v);
        labels[i] = (uint8_t)((int)v % 10);
    }
    return 0;
}

static int check_shapes(const char *path, const MatVar *x, const MatVar *y, size_t *n, Err *e) {
    char dims[96];
    mat_dims_str(x, dims, sizeof dims);
    /* MATLAB drops trailing singleton dimensions: one image is 32x32x3. */
    int ok = (x->ndim == 4 || x->ndim == 3) && x->dims[0] == SVHN_SIDE && x->dims[1] == SVHN_SIDE &&
             x->dims[2] == SVHN_CHANNELS;
    if (!ok)
        return err_set(e, "%s: X is %s; SVHN images are 32x32x3xN (height, width, channels, images)", path, dims);
    *n = x->ndim == 4 ? x->dims[3] : 1;
    if (*n == 0) return err_set(e, "%s: X holds no images (%s)", path, dims);
    mat_dims_str(y, dims, sizeof dims);
    int vector = y->ndim == 1 || (y->ndim == 2 && (y->dims[0] == 1 || y->dims[1] == 1));
    if (!vector || y->count != *n)
        return err_set(e, "%s: y is %s; expected %zux1 labels, one per image of X", path, dims, *n);
    return 0;
}

int svhn_read(const char *path, SvhnSet *s, Err *e) {
    memset(s, 0, sizeof *s);
    MatFile *m = xmalloc(sizeof *m);
    int rc = -1;
    if (mat_read(path, m, e) != 0) {
        free(m);
        return -1;
    }
    const MatVar *x = find_var(path, m, "X", "the images", e), *y = x ? find_var(path, m, "y", "the labels", e) : NULL;
    size_t n = 0;
    if (!x || !y || check_shapes(path, x, y, &n, e) != 0) goto done;
    /* n * 3073 fits: X's byte count was checked against the file */
    if (budget_take(n * (SVHN_PIXELS + 1), path, "the SVHN images and labels", e) != 0) goto done;
    s->pixels = xmalloc(n * SVHN_PIXELS);
    s->labels = xmalloc(n);
    s->n = n;
    if (convert_images(path, x, n, s->pixels, e) != 0 || convert_labels(path, y, n, s->labels, e) != 0) goto done;
    rc = 0;
done:
    mat_free(m);
    free(m);
    if (rc != 0) svhn_free(s);
    return rc;
}

void svhn_free(SvhnSet *s) {
    budget_return(s->n * (SVHN_PIXELS + 1));
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}
