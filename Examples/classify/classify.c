/*
 * classify: the class and probabilities of each PNG (or JPEG, BMP, ...) image given on the command line, by a
 * student that `mplc export` wrote as a C library (docs/EXPORT.md).
 *
 *   mplc export Examples/fashion_cnn.swiftdsl --checkpoint RUN_DIR/checkpoint.safetensors -o export
 *   make -C Examples/classify EXPORT=$PWD/export MODEL=fashion_cnn     # or, by hand:
 *   cc -std=c11 -O3 -march=native -Wall -Wextra -Werror -DMODEL=fashion_cnn -Iexport $(pkg-config --cflags stb) \
 *       Examples/classify/classify.c export/fashion_cnn.c -o classify $(pkg-config --libs stb) -lopenblas -lm
 *   ./classify shirt.png
 *
 * Images are read by stb_image (Debian: libstb-dev) with the model's channels, must have the model's size, and are
 * normalised as the trainer normalised Fashion-MNIST's bytes: (p / 255 - 0.2860) / 0.3530. For a model trained on
 * other data, change `normalise` (CIFAR-10 and SVHN use per-channel values: Templates/runner/cifar.h, svhn.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include <stb_image.h>

#ifndef MODEL
#error "build with -DMODEL=<the exported model's name>, e.g. -DMODEL=fashion_cnn"
#endif
/* The library's names all start with the model's name: MODEL_predict, MODEL_classes, ... */
#define JOIN_(a, b) a##_##b
#define JOIN(a, b) JOIN_(a, b)
#define NAME(suffix) JOIN(MODEL, suffix)
#define STRING_(x) #x
#define STRING(x) STRING_(x)
#include STRING(MODEL.h)

/* Fashion-MNIST's classes, printed next to the class numbers of a 10-class model. */
static const char *const fashion_mnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static float normalise(unsigned char p) { return (float)(((double)p / 255.0 - 0.2860) / 0.3530); }

static float scratch[NAME(scratch_floats)];

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s IMAGE...\n", argv[0]);
        return 2;
    }
    int failed = 0;
    for (int a = 1; a < argc; a++) {
        int width, height, channels;
        unsigned char *pixels = stbi_load(argv[a], &width, &height, &channels, NAME(channels));
        if (!pixels) {
            fprintf(stderr, "%s: cannot read the image: %s\n", argv[a], stbi_failure_reason());
            failed = 1;
            continue;
        }
        if (width != NAME(width) || height != NAME(height)) {
            fprintf(stderr, "%s: the image is %dx%d, the model reads %dx%d\n", argv[a], width, height, NAME(width),
                    NAME(height));
            stbi_image_free(pixels);
            failed = 1;
            continue;
        }
        /* stb_image's rows are top to bottom, each pixel's channels together: the model's NHWC layout already. */
        float image[NAME(input_floats)], probabilities[NAME(classes)];
        for (int i = 0; i < NAME(input_floats); i++) image[i] = normalise(pixels[i]);
        stbi_image_free(pixels);
        if (NAME(predict)(image, 1, probabilities, scratch) != 0) {
            fprintf(stderr, "%s: predict failed\n", argv[a]);
            return 1;
        }
        NAME(probabilities)(probabilities, 1, probabilities);
        int best = 0;
        for (int k = 1; k < NAME(classes); k++)
            if (probabilities[k] > probabilities[best]) best = k;
        const int named = NAME(classes) == 10;
        printf("%s: class %d%s%s%s, probability %.4f\n", argv[a], best, named ? " (" : "",
               named ? fashion_mnist_classes[best] : "", named ? ")" : "", probabilities[best]);
        for (int k = 0; k < NAME(classes); k++)
            printf("  %2d %-12s %.4f\n", k, named ? fashion_mnist_classes[k] : "", probabilities[k]);
    }
    return failed;
}
