#include "rng.h"

uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_init(Rng *r, uint64_t seed, uint64_t stream, uint64_t index) {
    /* Hash the three keys one after another so that nearby (stream, index) pairs give unrelated states. */
    uint64_t k = seed;
    uint64_t h = splitmix64(&k);
    k = h ^ stream;
    h = splitmix64(&k);
    k = h ^ index;
    h = splitmix64(&k);
    k = h;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&k);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(Rng *r) { /* xoshiro256** */
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_double(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

float rng_float(Rng *r) { return (float)(rng_next(r) >> 40) * 0x1.0p-24f; }

uint32_t rng_below(Rng *r, uint32_t n) {
    /* Lemire's multiply-and-reject: unbiased without division in the common case. */
    uint64_t m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int rng_range(Rng *r, int lo, int hi) { return lo + (int)rng_below(r, (uint32_t)(hi - lo + 1)); }
