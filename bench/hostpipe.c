/* Host-side pipeline pieces: tokenizer (cold: empty word cache, and warm),
 * torch-compatible randn for SD latents, scheduler steps, PNG encode.
 * Usage: bench_hostpipe TOKENIZER_DIR [RUNS]. One JSON line per measurement,
 * medians over RUNS (default 20). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "image/png.h"
#include "pipeline/rng.h"
#include "pipeline/scheduler.h"
#include "pipeline/tokenizer.h"

#include "bench_util.h"

static const char *prompts[] = {
    "a photo of an astronaut riding a horse on mars",
    "masterpiece, best quality, 1girl, solo, looking at viewer, caf\xc3\xa9, 8k, trending on artstation",
    "portrait of a woman, highly detailed, by greg rutkowski and alphonse mucha, dramatic lighting",
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TOKENIZER_DIR [RUNS]\n", argv[0]);
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 20;
    if (runs < 1 || runs > 100000)
        runs = 20;
    double *t = malloc(sizeof *t * (size_t)runs);
    int64_t t0 = gen__monotonic_ns();
    gen__tokenizer *tok;
    if (gen__tokenizer_load(&tok, argv[1]) != GEN_OK) {
        fprintf(stderr, "%s\n", gen_last_error_message());
        return 1;
    }
    printf("{\"bench\":\"tokenizer_load\",\"vocab\":%zu,\"ms\":%.2f}\n", gen__tokenizer_vocab_size(tok),
           (gen__monotonic_ns() - t0) / 1e6);
    for (int cold = 1; cold >= 0; cold--) {
        for (int r = 0; r < runs; r++) {
            gen__tokenizer *tk = tok;
            if (cold && gen__tokenizer_load(&tk, argv[1]) != GEN_OK)
                return 1;
            int32_t ids[77];
            int64_t a = gen__monotonic_ns();
            for (int k = 0; k < 3; k++)
                gen__tokenizer_encode_padded(tk, prompts[k], strlen(prompts[k]), ids, 77, NULL);
            t[r] = (gen__monotonic_ns() - a) / 3e3;
            if (cold)
                gen__tokenizer_destroy(tk);
        }
        printf("{\"bench\":\"tokenize_prompt\",\"cache\":\"%s\",\"us_median\":%.2f,\"runs\":%d}\n",
               cold ? "cold" : "warm", bench_median(t, runs), runs);
    }
    gen__tokenizer_destroy(tok);

    size_t n = 1 * 4 * 64 * 64;
    float *x = malloc(n * sizeof *x), *m = malloc(n * sizeof *m);
    for (int r = 0; r < runs; r++) {
        gen__rng rng;
        int64_t a = gen__monotonic_ns();
        gen__rng_seed(&rng, (uint64_t)r);
        gen__rng_randn(&rng, x, n);
        t[r] = (gen__monotonic_ns() - a) / 1e3;
    }
    printf("{\"bench\":\"randn\",\"shape\":\"1x4x64x64\",\"us_median\":%.1f,\"runs\":%d}\n",
           bench_median(t, runs), runs);

    static const gen__sched_kind kinds[] = { GEN__SCHED_DDIM, GEN__SCHED_EULER, GEN__SCHED_EULER_A,
                                             GEN__SCHED_DPMPP_2M };
    for (int k = 0; k < 4; k++) {
        /* SD1.5's scheduler_config.json, as the pipeline gets it. */
        static const char sd15[] = "{\"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085, "
                                   "\"beta_end\": 0.012, \"steps_offset\": 1}";
        gen__scheduler_config file;
        gen__sched_params cfg;
        if (gen__scheduler_config_parse("sd15", sd15, strlen(sd15), &file) != GEN_OK ||
            gen__sched_params_from_config(&cfg, kinds[k], &file, -1, "sd15") != GEN_OK)
            return 1;
        gen__scheduler_config_free(&file);
        for (int r = 0; r < runs; r++) {
            gen__scheduler *s;
            gen__rng rng;
            gen__rng_seed(&rng, 1);
            int64_t a = gen__monotonic_ns();
            gen__scheduler_create(&s, kinds[k], &cfg, 20, 0.0f);
            int64_t b = gen__monotonic_ns();
            for (size_t i = 0; i < 20; i++) {
                memcpy(m, x, n * sizeof *m);
                gen__scheduler_step(s, i, m, x, n, &rng);
            }
            t[r] = (gen__monotonic_ns() - b) / 20e3;
            (void)a;
            gen__scheduler_destroy(s);
        }
        printf("{\"bench\":\"scheduler_step\",\"scheduler\":\"%s\",\"shape\":\"1x4x64x64\","
               "\"us_median\":%.1f,\"runs\":%d}\n", gen__sched_kind_name(kinds[k]), bench_median(t, runs), runs);
    }

    uint32_t w = 512, h = 512;
    uint8_t *px = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        px[i] = (uint8_t)((i * 2654435761u) >> 13);
    for (int r = 0; r < runs && r < 10; r++) {
        uint8_t *png;
        size_t len;
        int64_t a = gen__monotonic_ns();
        gen__png_encode_memory(px, w, h, (size_t)w * 3, "{\"prompt\":\"x\"}", &png, &len);
        t[r] = (gen__monotonic_ns() - a) / 1e6;
        free(png);
    }
    printf("{\"bench\":\"png_encode\",\"size\":\"512x512\",\"content\":\"noise\",\"ms_median\":%.1f,"
           "\"runs\":%d}\n", bench_median(t, runs < 10 ? runs : 10), runs < 10 ? runs : 10);
    free(px);
    free(x);
    free(m);
    free(t);
    return 0;
}
