/* Generation through a context: the workers' item runner (job JSON in, PNG in
 * output_dir out) and the synchronous gen_generate with its gen_image. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <gen/generate.h>

#include "context/context_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "image/png.h"
#include "pipeline/generate.h"

struct gen_image {
    gen__rgb_image rgb;
    char *metadata;
};

/* mkdir -p for output_dir. */
static gen_status ensure_dir(const char *path)
{
    char buf[GEN_PATH_TEXT_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return gen__error(errno == ENOSPC ? GEN_ENOSPC : GEN_EIO,
                                  "output_dir: cannot create %s: %s", buf, strerror(errno));
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return GEN_OK;
}

/* A short tag of the queue file (FNV-1a of its absolute path). */
static uint32_t db_tag(const char *db_path)
{
    char real[PATH_MAX];
    const char *p = realpath(db_path, real) ? real : db_path;
    uint32_t h = 2166136261u;
    for (; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* One job on one device under the engine's per-device lock. */
static gen_status generate_locked(gen_context *ctx, size_t device, gen_job *job,
                                  const gen__gen_hooks *hooks, gen__rgb_image *rgb, char **meta)
{
    *meta = NULL;
    gen_status st = gen_job_validate(job);
    if (st != GEN_OK)
        return st;
    gen__engine_device_lock(ctx->engine, device);
    st = gen__generate(ctx->engine, device, job, hooks, rgb);
    gen__engine_device_unlock(ctx->engine, device);
    if (st == GEN_OK) {
        st = gen__generate_metadata_json(job, meta);
        if (st != GEN_OK)
            gen__rgb_image_free(rgb);
    }
    return st;
}

gen_status gen__context_pipeline_runner(void *p, size_t device, const gen_queue_item *item,
                                        const gen__run_hooks *hooks, gen__run_result *result)
{
    gen_context *ctx = p;
    gen_job *job = NULL;
    gen_status st = gen_job_from_json(&job, gen_queue_item_job(item));
    if (st != GEN_OK)
        return gen__error_prefix("item %lld: ", (long long)gen_queue_item_id(item));
    gen__rgb_image rgb = {0, 0, NULL};
    char *meta = NULL;
    st = generate_locked(ctx, device, job, hooks, &rgb, &meta);
    if (st == GEN_OK)
        st = ensure_dir(ctx->options.output_dir);
    if (st == GEN_OK) {
        /* One name per (queue file, item): a run repeated after a crash
         * replaces the image atomically instead of adding a second one, and
         * queues that share output_dir never collide. */
        int n = snprintf(result->image_path, sizeof(result->image_path), "%s/q%08x-%lld-%llu.png",
                         ctx->options.output_dir, db_tag(ctx->options.db_path),
                         (long long)gen_queue_item_id(item), (unsigned long long)job->seed);
        if (n < 0 || (size_t)n >= sizeof(result->image_path))
            st = gen__error(GEN_EINVAL, "output_dir: path too long");
        else
            st = gen__png_write_file(result->image_path, rgb.pixels, rgb.width, rgb.height,
                                     (size_t)rgb.width * 3, meta, true);
        result->width = (int)rgb.width;
        result->height = (int)rgb.height;
    }
    if (st == GEN_OK && gen_queue_record_image(ctx->queue, gen_queue_item_id(item),
                                               result->image_path, result->width,
                                               result->height) != GEN_OK)
        GEN__LOG_WARN(&ctx->logger, "item %lld: the image %s was written but not recorded: %s",
                      (long long)gen_queue_item_id(item), result->image_path,
                      gen_last_error_message());
    gen__rgb_image_free(&rgb);
    gen__free(meta);
    gen_job_destroy(job);
    return st;
}

/* --- synchronous API ------------------------------------------------------------------------ */

typedef struct sync_hooks {
    gen_progress_fn fn;
    void *user_data;
    bool stop;
} sync_hooks;

static bool sync_should_cancel(void *p)
{
    return ((sync_hooks *)p)->stop;
}

static void sync_progress(void *p, gen_stage stage, int step, int total, const uint8_t *preview,
                          int pw, int ph)
{
    (void)preview;
    (void)pw;
    (void)ph;
    sync_hooks *h = p;
    if (h->fn && h->fn(stage, step, total, h->user_data) != 0)
        h->stop = true;
}

GEN_API gen_status gen_generate(gen_image **out, gen_context *ctx, size_t device_index,
                                gen_job *job, gen_progress_fn progress, void *user_data)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_generate: out pointer is NULL");
    *out = NULL;
    if (!ctx || !job)
        return gen__error(GEN_EINVAL, "gen_generate: ctx or job is NULL");
    if (device_index >= gen_device_pool_count(ctx->devices))
        return gen__error(GEN_EINVAL, "gen_generate: device %zu does not exist (%zu devices)",
                          device_index, gen_device_pool_count(ctx->devices));
    gen_image *img = gen__calloc(1, sizeof(*img));
    if (!img)
        return gen__error(GEN_ENOMEM, "gen_generate: out of memory");
    sync_hooks sh = {progress, user_data, false};
    gen__gen_hooks hooks = {sync_should_cancel, sync_progress, NULL, &sh};
    gen_status st = generate_locked(ctx, device_index, job, &hooks, &img->rgb, &img->metadata);
    if (st != GEN_OK) {
        gen__free(img);
        return st;
    }
    *out = img;
    return GEN_OK;
}

GEN_API int32_t gen_image_width(const gen_image *image)
{
    return image ? (int32_t)image->rgb.width : 0;
}

GEN_API int32_t gen_image_height(const gen_image *image)
{
    return image ? (int32_t)image->rgb.height : 0;
}

GEN_API const uint8_t *gen_image_pixels(const gen_image *image)
{
    return image ? image->rgb.pixels : NULL;
}

GEN_API const char *gen_image_metadata(const gen_image *image)
{
    return image ? image->metadata : NULL;
}

GEN_API gen_status gen_image_save_png(const gen_image *image, const char *path)
{
    if (!image || !path)
        return gen__error(GEN_EINVAL, "gen_image_save_png: image or path is NULL");
    return gen__png_write_file(path, image->rgb.pixels, image->rgb.width, image->rgb.height,
                               (size_t)image->rgb.width * 3, image->metadata, true);
}

GEN_API gen_status gen_image_save_png_new(const gen_image *image, const char *dir,
                                          const char *stem, char *path_out, size_t path_out_size)
{
    if (!image || !dir || !stem || !stem[0] || !path_out || path_out_size == 0)
        return gen__error(GEN_EINVAL, "gen_image_save_png_new: NULL or empty argument");
    return gen__png_write_unique(dir, stem, image->rgb.pixels, image->rgb.width,
                                 image->rgb.height, (size_t)image->rgb.width * 3, image->metadata,
                                 path_out, path_out_size);
}

GEN_API void gen_image_destroy(gen_image *image)
{
    if (!image)
        return;
    gen__rgb_image_free(&image->rgb);
    gen__free(image->metadata);
    gen__free(image);
}
