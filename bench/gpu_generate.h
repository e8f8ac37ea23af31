/* Part of bench/gpu.c: whole 512x512 images through the public API on the GPU,
 * as an application gets them: gen_generate on a context whose device is
 * cuda:N, 20 Euler steps with CFG 7.5 (UNet batch 2), text encoding, VAE
 * decode and the copy back included, from the full-size SD1.5 file the UNet
 * step bench wrote. One line per attention choice (simple; auto, the default):
 *   {"bench":"generate","attention":...,"first_image_s":...,"image_s":...}
 * first_image_s includes loading the weights onto the device; image_s is the
 * median of 3 warm images (the 0.4 s target). */

static void generate_fail(const char *kernel, const char *what)
{
    printf("{\"bench\":\"generate\",\"attention\":\"%s\",\"error\":\"%s: ", kernel, what);
    for (const char *p = gen_last_error_message(); *p; p++)
        putchar(*p == '"' || *p == '\\' ? '\'' : *p);
    printf("\"}\n");
    fflush(stdout);
}

static void generate_images_hook(const char *model, int device_index)
{
    const char *user_choice = getenv("GEN_CUDA_ATTENTION"); /* put back afterwards */
    char saved[32] = "";
    if (user_choice)
        snprintf(saved, sizeof(saved), "%s", user_choice);
    /* "auto" is what users get: tensor cores once the device check agrees */
    const char *kernels[2] = {"simple", "auto"};
    for (int k = 0; k < 2; k++) {
        if (k == 0) /* read when the context makes its backend */
            setenv("GEN_CUDA_ATTENTION", "simple", 1);
        else
            unsetenv("GEN_CUDA_ATTENTION");
        gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
        o.log_level = GEN_LOG_ERROR;
        char devices[32];
        snprintf(devices, sizeof(devices), "cuda:%d", device_index);
        gen_context *ctx = NULL;
        gen_job *job = NULL;
        if (gen_context_options_set(&o, "generation_devices", devices) != GEN_OK ||
            gen_context_create(&ctx, &o) != GEN_OK) {
            generate_fail(kernels[k], "context");
            continue;
        }
        const char *fields[][2] = {{"model", model},  {"prompt", "a lighthouse at dusk"},
                                   {"width", "512"},  {"height", "512"},
                                   {"steps", "20"},   {"scheduler", "euler"},
                                   {"guidance", "7.5"}, {"seed", "1"}};
        bool ok = gen_job_create(&job) == GEN_OK;
        for (size_t f = 0; ok && f < sizeof(fields) / sizeof(fields[0]); f++)
            ok = gen_job_set(job, fields[f][0], fields[f][1]) == GEN_OK;
        double first = 0, warm[3];
        for (int i = 0; ok && i < 4; i++) {
            gen_image *img = NULL;
            int64_t t0 = gen__monotonic_ns();
            ok = gen_generate(&img, ctx, 0, job, NULL, NULL) == GEN_OK;
            double s = (double)(gen__monotonic_ns() - t0) * 1e-9;
            gen_image_destroy(img);
            if (i == 0)
                first = s;
            else
                warm[i - 1] = s;
        }
        /* which kernel the context's backend ended up using (the auto check's verdict) */
        gen__backend *used = NULL;
        double check_error = NAN;
        int kernel = GEN__CUDA_ATTENTION_SIMPLE;
        if (ok && gen__engine_backend(ctx->engine, 0, &used) == GEN_OK)
            kernel = gen__cuda_backend_attention_kernel(used, GEN__F16, &check_error);
        if (ok)
            printf("{\"bench\":\"generate\",\"attention\":\"%s\",\"kernel_used\":\"%s\","
                   "\"check_rel_l2\":%.2e,\"size\":512,\"steps\":20,"
                   "\"first_image_s\":%.3f,\"image_s\":%.3f}\n",
                   kernels[k], kernel == GEN__CUDA_ATTENTION_MMA ? "mma" : "simple",
                   isnan(check_error) ? -1.0 : check_error, first, bench_median(warm, 3));
        else
            generate_fail(kernels[k], "generate");
        fflush(stdout);
        gen_job_destroy(job);
        gen_context_destroy(ctx);
    }
    if (user_choice)
        setenv("GEN_CUDA_ATTENTION", saved, 1);
    else
        unsetenv("GEN_CUDA_ATTENTION");
}
