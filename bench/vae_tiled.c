/* Tiled vs untiled VAE on one CPU device: seconds (median of the runs) and
 * peak device memory (gen__backend_memory peak_bytes above what was in use
 * before the call: the input is excluded, the output included) of decode and
 * encode at a given size, untiled and with each tile size. One JSON line per
 * (op, tile); also the working-memory estimate the auto choice uses.
 *
 * usage: bench_vae_tiled [--model DIR] [--size PX] [--runs N] [--tiles 0,128,256]
 * (defaults: the tiny fixture model, 512 px, 3 runs, tiles 0 (= untiled), 128,
 * 256). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gen/gen.h>

#include "backend/backend.h"
#include "core/time.h"
#include "model/model.h"
#include "pipeline/rng.h"
#include "pipeline/vae.h"
#include "pipeline/vae_tiled.h"
#include "pipeline/weights.h"
#include "pipeline/weights_model.h"

#include "bench_util.h"

static int measure(gen__backend *be, const gen__vae *vae, bool encode, const gen__tensor *in,
                   int tile, int runs, double *seconds, double *peak_mib)
{
    double t[64];
    uint64_t peak = 0;
    for (int r = 0; r < runs; r++) {
        gen__backend_mem_info mi;
        gen__backend_reset_peak(be);
        gen__backend_memory(be, &mi);
        uint64_t base = mi.bytes_in_use;
        gen__tensor a = GEN__TENSOR_EMPTY, b = GEN__TENSOR_EMPTY;
        int64_t t0 = gen__monotonic_ns();
        gen_status st;
        if (encode)
            st = tile ? gen__vae_encode_tiled(vae, &a, &b, in, tile)
                      : gen__vae_encode(vae, &a, &b, in);
        else
            st = tile ? gen__vae_decode_tiled(vae, &a, in, tile) : gen__vae_decode(vae, &a, in);
        t[r] = (double)(gen__monotonic_ns() - t0) / 1e9;
        gen__backend_memory(be, &mi);
        gen__tensor_free(&a);
        gen__tensor_free(&b);
        if (st != GEN_OK) {
            fprintf(stderr, "bench_vae_tiled: %s\n", gen_last_error_message());
            return 1;
        }
        peak = mi.peak_bytes - base;
    }
    *seconds = bench_median(t, runs);
    *peak_mib = (double)peak / 1048576.0;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_dir = GEN_BENCH_FIXTURES "/tiny-sd15";
    int size = 512, runs = 3, tiles[8] = {0, 128, 256}, n_tiles = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--model") == 0) {
            model_dir = argv[i + 1];
        } else if (strcmp(argv[i], "--size") == 0) {
            size = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--runs") == 0) {
            runs = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--tiles") == 0) {
            n_tiles = 0;
            for (char *p = argv[i + 1]; *p && n_tiles < 8; p++) {
                tiles[n_tiles++] = (int)strtol(p, &p, 10);
                if (!*p)
                    break;
            }
        } else {
            fprintf(stderr, "usage: %s [--model DIR] [--size PX] [--runs N] [--tiles 0,128]\n",
                    argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 64 || size < 8 || size % 8) {
        fprintf(stderr, "bench_vae_tiled: bad --runs or --size\n");
        return 2;
    }
    gen__backend *be = NULL;
    gen__model *model = NULL;
    gen__host_weights *hw = NULL;
    gen__device_weights *dw = NULL;
    gen__vae *vae = NULL;
    gen__cpu_backend_options o = {0, 0, 0};
    if (gen__cpu_backend_create(&be, &o) != GEN_OK ||
        gen__model_open(&model, model_dir, NULL) != GEN_OK ||
        gen__host_weights_from_model(&hw, model, GEN__PART_VAE) != GEN_OK ||
        gen__device_weights_upload(&dw, hw, be, GEN__F32) != GEN_OK ||
        gen__vae_create(&vae, gen__model_vae_config(model), dw, true) != GEN_OK) {
        fprintf(stderr, "bench_vae_tiled: %s\n", gen_last_error_message());
        return 1;
    }
    const int f = gen__vae_scale_factor(vae);
    size_t nl = 4 * (size_t)(size / f) * (size_t)(size / f), ni = 3 * (size_t)size * (size_t)size;
    float *host = malloc((ni > nl ? ni : nl) * sizeof *host);
    gen__rng rng;
    gen__rng_seed(&rng, 1);
    gen__rng_randn(&rng, host, ni > nl ? ni : nl);
    gen__tensor lat, img;
    int rc = 0;
    if (gen__tensor_alloc(&lat, be, GEN__F32, 4, (int64_t[]){1, 4, size / f, size / f}) != GEN_OK ||
        gen__tensor_upload(&lat, host, nl * sizeof *host) != GEN_OK ||
        gen__tensor_alloc(&img, be, GEN__F32, 4, (int64_t[]){1, 3, size, size}) != GEN_OK) {
        fprintf(stderr, "bench_vae_tiled: %s\n", gen_last_error_message());
        return 1;
    }
    for (size_t i = 0; i < ni; i++)
        host[i] = host[i] > 1.0f ? 1.0f : host[i] < -1.0f ? -1.0f : host[i];
    rc |= gen__tensor_upload(&img, host, ni * sizeof *host) != GEN_OK;
    for (int e = 0; e < 2 && !rc; e++) {
        bool encode = e == 1;
        for (int k = 0; k < n_tiles && !rc; k++) {
            double sec = 0, peak = 0;
            rc = measure(be, vae, encode, encode ? &img : &lat, tiles[k], runs, &sec, &peak);
            if (rc)
                break;
            uint64_t est = gen__vae_working_memory(encode, size, size, GEN__F32, tiles[k]);
            printf("{\"bench\": \"vae_tiled\", \"op\": \"%s\", \"size\": %d, \"tile_px\": %d, "
                   "\"runs\": %d, \"seconds_median\": %.4f, \"peak_device_mib\": %.2f, "
                   "\"estimate_mib\": %.1f}\n",
                   encode ? "encode" : "decode", size, tiles[k], runs, sec, peak,
                   (double)est / 1048576.0);
            fflush(stdout);
        }
    }
    gen__tensor_free(&lat);
    gen__tensor_free(&img);
    free(host);
    gen__vae_destroy(vae);
    gen__device_weights_release(dw);
    gen__host_weights_destroy(hw);
    gen__model_close(model);
    gen__backend_destroy(be);
    return rc;
}
