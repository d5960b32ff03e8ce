#include "augment.h"

#include <math.h>
#include <string.h>

#define AUG_PI 3.14159265358979323846
#define EQUALIZE_BINS 64

static size_t npix(const AugSpec *s) { return (size_t)s->h * (size_t)s->w * (size_t)s->c; }

/* A feature vector has nothing spatial to augment: its views add Gaussian noise whose standard deviation is
 * this fraction of the data's range hi - lo (two moons: lo = -2, hi = 3, so 0.05 and 0.165). */
#define AUG_VECTOR_WEAK_NOISE 0.01
#define AUG_VECTOR_STRONG_NOISE 0.033

static void add_noise(const AugSpec *s, const float *src, float *dst, double relative, Rng *r) {
    const double sigma = relative * (s->hi - s->lo);
    for (size_t i = 0; i < npix(s); i++) {
        double u = rng_double(r), v = rng_double(r);
        dst[i] = src[i] + (float)(sigma * sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * 3.14159265358979323846 * v));
    }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Shift by (dx, dy) pixels: dst(y, x) = src(y - dy, x - dx), lo where that falls outside. */
static void shift(const AugSpec *s, const float *src, float *dst, int dx, int dy) {
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int ch = 0; ch < s->c; ch++) {
                int sy = y - dy, sx = x - dx;
                int inside = sy >= 0 && sy < s->h && sx >= 0 && sx < s->w;
                dst[((size_t)y * s->w + x) * s->c + ch] = inside ? src[((size_t)sy * s->w + sx) * s->c + ch] : s->lo;
            }
}

void aug_weak(const AugSpec *s, const float *src, float *dst, Rng *r) {
    int dx = rng_range(r, -AUG_WEAK_SHIFT, AUG_WEAK_SHIFT);
    int dy = rng_range(r, -AUG_WEAK_SHIFT, AUG_WEAK_SHIFT);
    if (s->h == 1 && s->w == 1) {
        add_noise(s, src, dst, AUG_VECTOR_WEAK_NOISE, r);
        return;
    }
    shift(s, src, dst, dx, dy);
}

/* dst(x, y) = src(a*x + b*y + c, d*x + e*y + f) with coordinates relative to the image centre,
 * bilinear interpolation, lo outside the image. */
static void affine(const AugSpec *s, const float *src, float *dst, double a, double b, double c, double d, double e,
                   double f) {
    double cx = (s->w - 1) / 2.0, cy = (s->h - 1) / 2.0;
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            double u = x - cx, v = y - cy;
            double sx = a * u + b * v + c + cx, sy = d * u + e * v + f + cy;
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            double fx = sx - x0, fy = sy - y0;
            for (int ch = 0; ch < s->c; ch++) {
                double acc = 0;
                for (int j = 0; j < 2; j++)
                    for (int i = 0; i < 2; i++) {
                        int px = x0 + i, py = y0 + j;
                        double wgt = (i ? fx : 1 - fx) * (j ? fy : 1 - fy);
                        float val = (px >= 0 && px < s->w && py >= 0 && py < s->h)
                                        ? src[((size_t)py * s->w + px) * s->c + ch]
                                        : s->lo;
                        acc += wgt * val;
                    }
                dst[((size_t)y * s->w + x) * s->c + ch] = (float)acc;
            }
        }
}

static double signed_mag(double m, Rng *r) { return (rng_next(r) >> 63) ? -m : m; }

/* Pixel ops work on t = (v - lo)/(hi - lo) in [0, 1]. */
static float to_t(const AugSpec *s, float v) { return (v - s->lo) / (s->hi - s->lo); }
static float from_t(const AugSpec *s, float t) { return s->lo + clampf(t, 0, 1) * (s->hi - s->lo); }

static void autocontrast(const AugSpec *s, const float *src, float *dst) {
    size_t n = npix(s);
    for (int ch = 0; ch < s->c; ch++) {
        float mn = src[ch], mx = src[ch];
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c) {
            mn = fminf(mn, src[i]);
            mx = fmaxf(mx, src[i]);
        }
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c)
            dst[i] = mx > mn ? s->lo + (src[i] - mn) / (mx - mn) * (s->hi - s->lo) : src[i];
    }
}

/* Histogram equalisation on EQUALIZE_BINS bins per channel ("lite": no PIL special cases). */
static void equalize(const AugSpec *s, const float *src, float *dst) {
    size_t n = npix(s), count = n / (size_t)s->c;
    for (int ch = 0; ch < s->c; ch++) {
        size_t hist[EQUALIZE_BINS] = {0};
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c) {
            int b = (int)(clampf(to_t(s, src[i]), 0, 1) * (EQUALIZE_BINS - 1) + 0.5f);
            hist[b]++;
        }
        float cdf[EQUALIZE_BINS];
        size_t run = 0;
        for (int b = 0; b < EQUALIZE_BINS; b++) {
            run += hist[b];
            cdf[b] = (float)run / (float)count;
        }
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c) {
            int b = (int)(clampf(to_t(s, src[i]), 0, 1) * (EQUALIZE_BINS - 1) + 0.5f);
            dst[i] = from_t(s, cdf[b]);
        }
    }
}

/* 3x3 smoothing (PIL's SMOOTH kernel: centre 5, neighbours 1, /13); border pixels unchanged. */
static void smooth(const AugSpec *s, const float *src, float *dst) {
    memcpy(dst, src, npix(s) * sizeof(float));
    for (int y = 1; y + 1 < s->h; y++)
        for (int x = 1; x + 1 < s->w; x++)
            for (int ch = 0; ch < s->c; ch++) {
                float acc = 0;
                for (int j = -1; j <= 1; j++)
                    for (int i = -1; i <= 1; i++)
                        acc += src[((size_t)(y + j) * s->w + (x + i)) * s->c + ch] * (i == 0 && j == 0 ? 5.0f : 1.0f);
                dst[((size_t)y * s->w + x) * s->c + ch] = acc / 13.0f;
            }
}

/* dst = base + f*(src - base), clipped to [lo, hi] (PIL's ImageEnhance blend). */
static void blend(const AugSpec *s, const float *src, const float *base, float base_value, float f, float *dst) {
    for (size_t i = 0; i < npix(s); i++) {
        float b = base ? base[i] : base_value;
        dst[i] = clampf(b + f * (src[i] - b), s->lo, s->hi);
    }
}

void aug_apply_op(const AugSpec *s, int op, double m, const float *src, float *dst, float *tmp, Rng *r) {
    size_t n = npix(s);
    switch (op) {
    case AUG_IDENTITY: memcpy(dst, src, n * sizeof(float)); break;
    case AUG_AUTOCONTRAST: autocontrast(s, src, dst); break;
    case AUG_EQUALIZE: equalize(s, src, dst); break;
    case AUG_ROTATE: {
        double th = signed_mag(m, r) * AUG_MAX_ROTATE * AUG_PI / 180.0, cs = cos(th), sn = sin(th);
        affine(s, src, dst, cs, -sn, 0, sn, cs, 0);
        break;
    }
    case AUG_SHEAR_X: affine(s, src, dst, 1, signed_mag(m, r) * AUG_MAX_SHEAR, 0, 0, 1, 0); break;
    case AUG_SHEAR_Y: affine(s, src, dst, 1, 0, 0, signed_mag(m, r) * AUG_MAX_SHEAR, 1, 0); break;
    case AUG_TRANSLATE_X: affine(s, src, dst, 1, 0, signed_mag(m, r) * AUG_MAX_TRANSLATE * s->w, 0, 1, 0); break;
    case AUG_TRANSLATE_Y: affine(s, src, dst, 1, 0, 0, 0, 1, signed_mag(m, r) * AUG_MAX_TRANSLATE * s->h); break;
    case AUG_SOLARIZE: {
        float thr = (float)(1.0 - m); /* m = 0 inverts nothing, m = 1 inverts everything */
        for (size_t i = 0; i < n; i++) {
            float t = to_t(s, src[i]);
            dst[i] = t > thr ? from_t(s, 1 - t) : src[i];
        }
        break;
    }
    case AUG_POSTERIZE: {
        int bits = 8 - (int)(m * 4); /* 8 .. 4 bits */
        float levels = (float)(1 << bits);
        for (size_t i = 0; i < n; i++) {
            float t = clampf(to_t(s, src[i]), 0, 1);
            dst[i] = from_t(s, fminf(floorf(t * levels), levels - 1) / (levels - 1));
        }
        break;
    }
    case AUG_CONTRAST: {
        double mean = 0;
        for (size_t i = 0; i < n; i++) mean += src[i];
        blend(s, src, NULL, (float)(mean / (double)n), (float)(1 + signed_mag(m, r) * AUG_MAX_ENHANCE), dst);
        break;
    }
    case AUG_BRIGHTNESS: blend(s, src, NULL, s->lo, (float)(1 + signed_mag(m, r) * AUG_MAX_ENHANCE), dst); break;
    case AUG_SHARPNESS:
        smooth(s, src, tmp);
        blend(s, src, tmp, 0, (float)(1 + signed_mag(m, r) * AUG_MAX_ENHANCE), dst);
        break;
    default: memcpy(dst, src, n * sizeof(float)); break;
    }
}

void aug_cutout(const AugSpec *s, float *img, Rng *r) {
    int side = (int)lround((s->h < s->w ? s->h : s->w) * 8.0 / 28.0); /* 8x8 on a 28x28 image */
    if (side < 1) side = 1;
    int cy = rng_range(r, 0, s->h - 1), cx = rng_range(r, 0, s->w - 1);
    for (int y = cy - side / 2; y < cy - side / 2 + side; y++)
        for (int x = cx - side / 2; x < cx - side / 2 + side; x++) {
            if (y < 0 || y >= s->h || x < 0 || x >= s->w) continue;
            for (int ch = 0; ch < s->c; ch++) img[((size_t)y * s->w + x) * s->c + ch] = s->mean;
        }
}

void aug_strong(const AugSpec *s, const float *src, float *dst, float *tmp, Rng *r) {
    size_t n = npix(s);
    if (s->h == 1 && s->w == 1) {
        add_noise(s, src, dst, AUG_VECTOR_STRONG_NOISE, r);
        return;
    }
    /* Each op reads a copy of the current image from tmp[0, n) and writes dst; tmp[n, 2n) is the
     * op's own scratch (sharpness). */
    memcpy(dst, src, n * sizeof(float));
    for (int k = 0; k < AUG_STRONG_OPS; k++) {
        int op = (int)rng_below(r, AUG_NUM_OPS);
        double m = rng_double(r);
        memcpy(tmp, dst, n * sizeof(float));
        aug_apply_op(s, op, m, tmp, dst, tmp + n, r);
    }
    aug_cutout(s, dst, r);
}
