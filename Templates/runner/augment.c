#include "augment.h"

#include <math.h>
#include <string.h>

#define AUG_PI 3.14159265358979323846
#define EQUALIZE_BINS 64

static size_t npix(const AugSpec *s) { return (size_t)s->h * (size_t)s->w * (size_t)s->c; }
static size_t at(const AugSpec *s, int y, int x, int ch) { return ((size_t)y * s->w + x) * s->c + ch; }

/* A feature vector has nothing spatial to augment: its views add Gaussian noise whose standard deviation is
 * this fraction of the data's range hi - lo (two moons: lo = -2, hi = 3, so 0.05 and 0.165). */
#define AUG_VECTOR_WEAK_NOISE 0.01
#define AUG_VECTOR_STRONG_NOISE 0.033

static void add_noise(const AugSpec *s, const float *src, float *dst, double relative, Rng *r) {
    for (size_t i = 0; i < npix(s); i++) {
        const size_t ch = i % (size_t)s->c;
        const double sigma = relative * (s->hi[ch] - s->lo[ch]);
        double u = rng_double(r), v = rng_double(r);
        dst[i] = src[i] + (float)(sigma * sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * 3.14159265358979323846 * v));
    }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Shift by (dx, dy) pixels: dst(y, x) = src(y - dy, x - dx), the channel's lo where that falls outside. */
static void shift(const AugSpec *s, const float *src, float *dst, int dx, int dy) {
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int ch = 0; ch < s->c; ch++) {
                int sy = y - dy, sx = x - dx;
                int inside = sy >= 0 && sy < s->h && sx >= 0 && sx < s->w;
                dst[at(s, y, x, ch)] = inside ? src[at(s, sy, sx, ch)] : s->lo[ch];
            }
}

void aug_flip(const AugSpec *s, float *img) {
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w / 2; x++)
            for (int ch = 0; ch < s->c; ch++) {
                size_t a = at(s, y, x, ch), b = at(s, y, s->w - 1 - x, ch);
                float t = img[a];
                img[a] = img[b];
                img[b] = t;
            }
}

/* One random bit decides the flip; drawn only when flips are on, so that other runs draw what they drew. */
static void maybe_flip(const AugSpec *s, float *img, Rng *r) {
    if (s->flip && (rng_next(r) >> 63)) aug_flip(s, img);
}

void aug_weak(const AugSpec *s, const float *src, float *dst, Rng *r) {
    int dx = rng_range(r, -s->shift, s->shift);
    int dy = rng_range(r, -s->shift, s->shift);
    if (s->h == 1 && s->w == 1) {
        add_noise(s, src, dst, AUG_VECTOR_WEAK_NOISE, r);
        return;
    }
    shift(s, src, dst, dx, dy);
    maybe_flip(s, dst, r);
}

/* dst(x, y) = src(a*x + b*y + c, d*x + e*y + f) with coordinates relative to the image centre,
 * bilinear interpolation, the channel's lo outside the image. */
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
                        float val = (px >= 0 && px < s->w && py >= 0 && py < s->h) ? src[at(s, py, px, ch)] : s->lo[ch];
                        acc += wgt * val;
                    }
                dst[at(s, y, x, ch)] = (float)acc;
            }
        }
}

static double signed_mag(double m, Rng *r) { return (rng_next(r) >> 63) ? -m : m; }

/* Pixel ops work on t = (v - lo)/(hi - lo) in [0, 1], each channel with its own range (for 8-bit data,
 * t = p/255 whatever the normalisation). */
static float to_t(const AugSpec *s, int ch, float v) { return (v - s->lo[ch]) / (s->hi[ch] - s->lo[ch]); }
static float from_t(const AugSpec *s, int ch, float t) { return s->lo[ch] + clampf(t, 0, 1) * (s->hi[ch] - s->lo[ch]); }

/* PIL's luminance weights (ITU-R 601), on t values. */
static float luma(const AugSpec *s, const float *px) {
    return 0.299f * to_t(s, 0, px[0]) + 0.587f * to_t(s, 1, px[1]) + 0.114f * to_t(s, 2, px[2]);
}

static void autocontrast(const AugSpec *s, const float *src, float *dst) {
    size_t n = npix(s);
    for (int ch = 0; ch < s->c; ch++) {
        float mn = src[ch], mx = src[ch];
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c) {
            mn = fminf(mn, src[i]);
            mx = fmaxf(mx, src[i]);
        }
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c)
            dst[i] = mx > mn ? s->lo[ch] + (src[i] - mn) / (mx - mn) * (s->hi[ch] - s->lo[ch]) : src[i];
    }
}

/* Histogram equalisation on EQUALIZE_BINS bins per channel ("lite": no PIL special cases). */
static void equalize(const AugSpec *s, const float *src, float *dst) {
    size_t n = npix(s), count = n / (size_t)s->c;
    for (int ch = 0; ch < s->c; ch++) {
        size_t hist[EQUALIZE_BINS] = {0};
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c) {
            int b = (int)(clampf(to_t(s, ch, src[i]), 0, 1) * (EQUALIZE_BINS - 1) + 0.5f);
            hist[b]++;
        }
        float cdf[EQUALIZE_BINS];
        size_t run = 0;
        for (int b = 0; b < EQUALIZE_BINS; b++) {
            run += hist[b];
            cdf[b] = (float)run / (float)count;
        }
        for (size_t i = (size_t)ch; i < n; i += (size_t)s->c) {
            int b = (int)(clampf(to_t(s, ch, src[i]), 0, 1) * (EQUALIZE_BINS - 1) + 0.5f);
            dst[i] = from_t(s, ch, cdf[b]);
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
                    for (int i = -1; i <= 1; i++) acc += src[at(s, y + j, x + i, ch)] * (i == 0 && j == 0 ? 5.0f : 1.0f);
                dst[at(s, y, x, ch)] = acc / 13.0f;
            }
}

/* One channel of dst = base + f*(src - base), clipped to the channel's [lo, hi] (PIL's ImageEnhance blend);
 * base is an image, or the value base_value when NULL. */
static void blend_channel(const AugSpec *s, int ch, const float *src, const float *base, float base_value, float f,
                          float *dst) {
    for (size_t i = (size_t)ch; i < npix(s); i += (size_t)s->c) {
        float b = base ? base[i] : base_value;
        dst[i] = clampf(b + f * (src[i] - b), s->lo[ch], s->hi[ch]);
    }
}

/* Contrast: blend towards the mean. PIL takes the mean of the grayscale image for every channel, which is
 * what an RGB image gets here; other channel counts blend each channel towards its own mean. */
static void contrast(const AugSpec *s, const float *src, float f, float *dst) {
    size_t n = npix(s), pixels = n / (size_t)s->c;
    double gray = 0;
    if (s->c == 3)
        for (size_t i = 0; i < n; i += 3) gray += luma(s, src + i);
    for (int ch = 0; ch < s->c; ch++) {
        float base;
        if (s->c == 3) {
            base = from_t(s, ch, (float)(gray / (double)pixels));
        } else {
            double mean = 0;
            for (size_t i = (size_t)ch; i < n; i += (size_t)s->c) mean += src[i];
            base = (float)(mean / (double)pixels);
        }
        blend_channel(s, ch, src, NULL, base, f, dst);
    }
}

/* Color (PIL's ImageEnhance.Color, saturation): blend each pixel with its gray value; f = 0 is grayscale,
 * f = 1 the image, f > 1 more saturated. Only RGB images have colour; others are copied. */
static void color(const AugSpec *s, const float *src, float f, float *dst) {
    size_t n = npix(s);
    if (s->c != 3) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i += 3) {
        float g = luma(s, src + i);
        for (int ch = 0; ch < 3; ch++) dst[i + (size_t)ch] = from_t(s, ch, g + f * (to_t(s, ch, src[i + (size_t)ch]) - g));
    }
}

static float enhance_factor(double m, Rng *r) { return (float)(1 + signed_mag(m, r) * AUG_MAX_ENHANCE); }

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
            int ch = (int)(i % (size_t)s->c);
            float t = to_t(s, ch, src[i]);
            dst[i] = t > thr ? from_t(s, ch, 1 - t) : src[i];
        }
        break;
    }
    case AUG_POSTERIZE: {
        int bits = 8 - (int)(m * 4); /* 8 .. 4 bits */
        float levels = (float)(1 << bits);
        for (size_t i = 0; i < n; i++) {
            int ch = (int)(i % (size_t)s->c);
            float t = clampf(to_t(s, ch, src[i]), 0, 1);
            dst[i] = from_t(s, ch, fminf(floorf(t * levels), levels - 1) / (levels - 1));
        }
        break;
    }
    case AUG_CONTRAST: contrast(s, src, enhance_factor(m, r), dst); break;
    case AUG_BRIGHTNESS: {
        float f = enhance_factor(m, r);
        for (int ch = 0; ch < s->c; ch++) blend_channel(s, ch, src, NULL, s->lo[ch], f, dst);
        break;
    }
    case AUG_SHARPNESS: {
        float f = enhance_factor(m, r);
        smooth(s, src, tmp);
        for (int ch = 0; ch < s->c; ch++) blend_channel(s, ch, src, tmp, 0, f, dst);
        break;
    }
    case AUG_COLOR: color(s, src, enhance_factor(m, r), dst); break;
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
            for (int ch = 0; ch < s->c; ch++) img[at(s, y, x, ch)] = s->mean[ch];
        }
}

void aug_strong(const AugSpec *s, const float *src, float *dst, float *tmp, Rng *r) {
    size_t n = npix(s);
    if (s->h == 1 && s->w == 1) {
        add_noise(s, src, dst, AUG_VECTOR_STRONG_NOISE, r);
        return;
    }
    const uint32_t ops = s->c == 3 ? AUG_NUM_OPS : AUG_NUM_OPS_GRAY;
    /* Each op reads a copy of the current image from tmp[0, n) and writes dst; tmp[n, 2n) is the
     * op's own scratch (sharpness). */
    memcpy(dst, src, n * sizeof(float));
    maybe_flip(s, dst, r);
    for (int k = 0; k < AUG_STRONG_OPS; k++) {
        int op = (int)rng_below(r, ops);
        double m = rng_double(r) * s->magnitude; /* the same draw at every magnitude: 1 gives what it always gave */
        memcpy(tmp, dst, n * sizeof(float));
        aug_apply_op(s, op, m, tmp, dst, tmp + n, r);
    }
    aug_cutout(s, dst, r);
}
