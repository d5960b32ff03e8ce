/* Seeded, deterministic data augmentation on one image [H, W, C] of normalised floats.
 * Weak view: random translation by up to `shift` pixels (pad with the channel's minimum, then crop), and a
 * random horizontal flip when `flip` is set.
 * Strong view: a random horizontal flip when `flip` is set, then RandAugment-style, 2 random ops, each at a
 * magnitude drawn uniformly from [0, `magnitude`] (1: the full ranges below), then Cutout. Pixel ops act on each
 * channel's range [lo[c], hi[c]]; on RGB images (C = 3) Contrast uses the luminance and Color (saturation) is among
 * the ops. */
#ifndef RUNNER_AUGMENT_H
#define RUNNER_AUGMENT_H

#include "rng.h"

typedef struct {
    int h, w, c;
    const float *lo, *hi; /* per channel (c values): padding value and range of the pixel operations */
    const float *mean;    /* per channel: Cutout fill value */
    int shift;            /* weak view: translation by up to this many pixels in x and y */
    int flip;             /* 1: random horizontal flips in both views (draws one more number per view) */
    double magnitude;     /* strong view: the largest magnitude of an op, in [0, 1] (--strong-magnitude; 1 default) */
} AugSpec;

/* The first AUG_NUM_OPS_GRAY ops are drawn for every image; AUG_COLOR only for RGB images (C = 3), so that
 * grayscale images draw exactly the numbers they always drew. */
enum {
    AUG_IDENTITY, AUG_AUTOCONTRAST, AUG_EQUALIZE, AUG_ROTATE, AUG_SHEAR_X, AUG_SHEAR_Y, AUG_TRANSLATE_X,
    AUG_TRANSLATE_Y, AUG_SOLARIZE, AUG_POSTERIZE, AUG_CONTRAST, AUG_BRIGHTNESS, AUG_SHARPNESS, AUG_COLOR, AUG_NUM_OPS
};
#define AUG_NUM_OPS_GRAY AUG_COLOR

#define AUG_WEAK_SHIFT 2      /* pixels, the default of `shift` (Fashion-MNIST) */
#define AUG_WEAK_SHIFT_RGB 4  /* pixels, for CIFAR-10 and SVHN: the usual "pad 4 and crop 32" */
#define AUG_STRONG_OPS 2      /* ops per image */
#define AUG_MAX_ROTATE 30.0   /* degrees */
#define AUG_MAX_SHEAR 0.3
#define AUG_MAX_TRANSLATE 0.3 /* fraction of the side */
#define AUG_MAX_ENHANCE 0.9   /* contrast/brightness/sharpness/color factor 1 +- 0.9 */

void aug_weak(const AugSpec *s, const float *src, float *dst, Rng *r);
/* tmp: scratch of 2*h*w*c floats. */
void aug_strong(const AugSpec *s, const float *src, float *dst, float *tmp, Rng *r);
/* One op at magnitude m in [0, 1] (sign drawn from r where the op has one); tmp: h*w*c floats. */
void aug_apply_op(const AugSpec *s, int op, double m, const float *src, float *dst, float *tmp, Rng *r);
void aug_cutout(const AugSpec *s, float *img, Rng *r);
/* Mirrors an image left to right, in place. */
void aug_flip(const AugSpec *s, float *img);

#endif
