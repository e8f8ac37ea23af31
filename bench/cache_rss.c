/* Host memory of one model held by N devices: the process RSS after every
 * device of "cpu:0..cpu:N-1" has locked the model's parts (UNet, VAE, text
 * encoder) through its own cache. The host copy is shared, so RSS should grow
 * by a small fraction of the model size from 1 to 2 and 4 devices.
 *
 * usage: bench_cache_rss MODEL [N...]   (default N = 1 2 4; each N runs in a
 * fresh process so the figures do not include the previous run's pages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gen/gen.h>

#include "context/context_internal.h"
#include "core/time.h"
#include "pipeline/engine.h"

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static int measure(const char *model_path, int n)
{
    char devices[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(devices + strlen(devices), sizeof(devices) - strlen(devices), "%scpu:%d",
                 i ? "," : "", i);
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    gen_context *ctx = NULL;
    if (gen_context_options_set(&o, "generation_devices", devices) != GEN_OK ||
        gen_context_options_set(&o, "max_cache_ram", "20GiB") != GEN_OK ||
        gen_context_create(&ctx, &o) != GEN_OK) {
        fprintf(stderr, "%s\n", gen_last_error_message());
        return 1;
    }
    gen__model *model = NULL;
    if (gen__model_open(&model, model_path, NULL) != GEN_OK) {
        fprintf(stderr, "%s\n", gen_last_error_message());
        return 1;
    }
    uint64_t model_bytes = 0;
    for (int p = 0; p < GEN__PART_COUNT; p++)
        model_bytes += gen__model_part_bytes(model, (gen__part)p);
    long before = rss_kib();
    int64_t t0 = gen__monotonic_ns();
    gen__engine_part parts[8][GEN__PART_COUNT];
    for (int d = 0; d < n; d++) {
        for (int p = 0; p < GEN__PART_COUNT; p++) {
            bool loaded;
            double seconds;
            if (gen__engine_lock_part(ctx->engine, (size_t)d, model, (gen__part)p, &parts[d][p],
                                      &loaded, &seconds) != GEN_OK) {
                fprintf(stderr, "%s\n", gen_last_error_message());
                return 1;
            }
        }
    }
    double seconds = (double)(gen__monotonic_ns() - t0) / 1e9;
    long after = rss_kib();
    gen__weight_store_stats ss;
    gen__weight_store_get_stats(gen__model_caches_store(gen__engine_caches(ctx->engine)), &ss);
    printf("{\"bench\": \"cache_rss\", \"devices\": %d, \"model_file_bytes\": %llu, "
           "\"host_store_bytes\": %llu, \"rss_before_mib\": %.1f, \"rss_after_mib\": %.1f, "
           "\"rss_growth_mib\": %.1f, \"load_seconds\": %.2f, \"builds\": %llu}\n",
           n, (unsigned long long)model_bytes, (unsigned long long)ss.bytes_in_use,
           before / 1024.0, after / 1024.0, (after - before) / 1024.0, seconds,
           (unsigned long long)ss.builds);
    fflush(stdout);
    for (int d = 0; d < n; d++)
        for (int p = 0; p < GEN__PART_COUNT; p++)
            gen__engine_release_part(&parts[d][p]);
    gen__model_close(model);
    gen_context_destroy(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [N...]\n", argv[0]);
        return 2;
    }
    if (argc == 4 && strcmp(argv[2], "--one") == 0)
        return measure(argv[1], atoi(argv[3]));
    int counts[8] = {1, 2, 4}, ncounts = 3;
    if (argc > 2) {
        ncounts = 0;
        for (int i = 2; i < argc && ncounts < 8; i++)
            counts[ncounts++] = atoi(argv[i]);
    }
    for (int i = 0; i < ncounts; i++) {
        if (counts[i] < 1 || counts[i] > 8)
            return 2;
        char n[16];
        snprintf(n, sizeof(n), "%d", counts[i]);
        pid_t pid = fork();
        if (pid == 0) {
            execl(argv[0], argv[0], argv[1], "--one", n, (char *)NULL);
            _exit(127);
        }
        int ws = 0;
        waitpid(pid, &ws, 0);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            return 1;
    }
    return 0;
}
