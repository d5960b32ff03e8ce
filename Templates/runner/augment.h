/* Seeded, deterministic data augmentation on one image [H, W, C] of normalised floats.
 * Weak view: random translation by up to 2 pixels (pad with the dataset minimum, then crop).
 * Strong view: RandAugment-style, 2 random ops at random magnitudes, then Cutout. */
#ifndef RUNNER_AUGMENT_H
#define RUNNER_AUGMENT_H

#include "rng.h"

typedef struct {
    int h, w, c;
    float lo, hi; /* pixel range: padding value and range of the pixel operations */
    float mean;   /* Cutout fill value */
} AugSpec;

enum {
    AUG_IDENTITY, AUG_AUTOCONTRAST, AUG_EQUALIZE, AUG_ROTATE, AUG_SHEAR_X, AUG_SHEAR_Y, AUG_TRANSLATE_X,
    AUG_TRANSLATE_Y, AUG_SOLARIZE, AUG_POSTERIZE, AUG_CONTRAST, AUG_BRIGHTNESS, AUG_SHARPNESS, AUG_NUM_OPS
};

#define AUG_WEAK_SHIFT 2      /* pixels */
#define AUG_STRONG_OPS 2      /* ops per image */
#define AUG_MAX_ROTATE 30.0   /* degrees */
#define AUG_MAX_SHEAR 0.3
#define AUG_MAX_TRANSLATE 0.3 /* fraction of the side */
#define AUG_MAX_ENHANCE 0.9   /* contrast/brightness/sharpness factor 1 +- 0.9 */

void aug_weak(const AugSpec *s, const float *src, float *dst, Rng *r);
/* tmp: scratch of 2*h*w*c floats. */
void aug_strong(const AugSpec *s, const float *src, float *dst, float *tmp, Rng *r);
/* One op at magnitude m in [0, 1] (sign drawn from r where the op has one); tmp: h*w*c floats. */
void aug_apply_op(const AugSpec *s, int op, double m, const float *src, float *dst, float *tmp, Rng *r);
void aug_cutout(const AugSpec *s, float *img, Rng *r);

#endif
