/* How long opening a full-size SD1.5 single-file checkpoint takes: the file
 * (1.07 G parameters in f16, ~2.1 GB, sparse: written as a header plus a hole)
 * is generated in $TMPDIR (default /tmp), opened N times, then deleted.
 * mmap means opening costs the header parse, not the weights' size.
 * Prints one JSON line per measurement (medians over the runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gen/gen.h>

#include "core/time.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "sd_ldm.h"

#include "bench_util.h"

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 1000)
        runs = 5;
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/libgen-bench-sd15-%ld.safetensors", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    uint64_t size = sd_ldm_write_sparse(path, &sd_ldm_sd15, "F16");
    if (!size) {
        fprintf(stderr, "cannot write %s\n", path);
        return 1;
    }
    double st_s[1000], model_s[1000], info_s[1000];
    size_t tensors = 0;
    uint64_t params = 0;
    int rc = 0;
    for (int i = 0; i < runs && rc == 0; i++) {
        int64_t t0 = gen__monotonic_ns();
        gen__st_file *f;
        if (gen__st_open(&f, path) != GEN_OK) {
            fprintf(stderr, "%s\n", gen_last_error_message());
            rc = 1;
            break;
        }
        int64_t t1 = gen__monotonic_ns();
        tensors = gen__st_count(f);
        gen__st_close(f);
        gen__model *m;
        int64_t t2 = gen__monotonic_ns();
        if (gen__model_open(&m, path, NULL) != GEN_OK) {
            fprintf(stderr, "%s\n", gen_last_error_message());
            rc = 1;
            break;
        }
        int64_t t3 = gen__monotonic_ns();
        params = 0;
        for (int p = 0; p < GEN__PART_COUNT; p++)
            params += gen__model_part_parameters(m, (gen__part)p);
        gen__model_close(m);
        gen_model_info *info;
        int64_t t4 = gen__monotonic_ns();
        if (gen_model_inspect(&info, path) != GEN_OK) {
            rc = 1;
            break;
        }
        int64_t t5 = gen__monotonic_ns();
        gen_model_info_destroy(info);
        st_s[i] = (double)(t1 - t0) * 1e-9;
        model_s[i] = (double)(t3 - t2) * 1e-9;
        info_s[i] = (double)(t5 - t4) * 1e-9;
    }
    unlink(path);
    if (rc != 0)
        return rc;
    double a = bench_median(st_s, runs), b = bench_median(model_s, runs), c = bench_median(info_s, runs);
    printf("{\"bench\":\"model_open\",\"what\":\"safetensors_open\",\"file_bytes\":%llu,"
           "\"tensors\":%zu,\"runs\":%d,\"median_s\":%.6f}\n",
           (unsigned long long)size, tensors, runs, a);
    printf("{\"bench\":\"model_open\",\"what\":\"model_open_single_file\",\"file_bytes\":%llu,"
           "\"parameters\":%llu,\"runs\":%d,\"median_s\":%.6f,\"under_1s\":%s}\n",
           (unsigned long long)size, (unsigned long long)params, runs, b, b < 1.0 ? "true" : "false");
    printf("{\"bench\":\"model_open\",\"what\":\"gen_model_inspect\",\"runs\":%d,\"median_s\":%.6f}\n",
           runs, c);
    return b < 1.0 ? 0 : 2;
}
