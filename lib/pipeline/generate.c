/* txt2img / img2img as diffusers' StableDiffusionPipeline and
 * StableDiffusionImg2ImgPipeline run them (see generate.h). */
#include "pipeline/generate.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gen/common.h>

#include "gen_config.h"

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "pipeline/lora.h"
#include "pipeline/preview.h"
#include "pipeline/rng.h"
#include "pipeline/scheduler.h"
#include "pipeline/text_encoder.h"
#include "pipeline/tokenizer.h"
#include "pipeline/unet.h"
#include "pipeline/vae.h"
#include "pipeline/vae_tiled.h"

typedef struct run {
    gen__engine *engine;
    size_t dev;
    const gen_job *job;
    const gen__gen_hooks *hooks;
    gen__backend *be;
    gen__dtype dtype;
    gen__model *model;
    gen__engine_part parts[GEN__PART_COUNT];
    gen__device_weights *overlays[GEN__PART_COUNT]; /* this job's LoRA-patched views, or NULL */
    gen__text_encoder *te;
    gen__unet *unet;
    gen__vae *vae;
    gen__tokenizer *tok;
    gen__scheduler *sched;
    gen__rng rng;
    int batch;           /* 2 with classifier-free guidance, else 1 */
    gen__tensor context; /* [batch, tokens, hidden]: uncond first, as diffusers concatenates */
    int lc, lh, lw;      /* latent channels and size */
    size_t n;            /* lc * lh * lw */
    float *latents;      /* host, the scheduler's sample */
} run;

static bool canceled(const run *r)
{
    return r->hooks && r->hooks->should_cancel && r->hooks->should_cancel(r->hooks->hook_ctx);
}

static void progress(const run *r, gen_stage stage, int step, int total, const uint8_t *preview,
                     int pw, int ph)
{
    if (r->hooks && r->hooks->progress)
        r->hooks->progress(r->hooks->hook_ctx, stage, step, total, preview, pw, ph);
}

/* --- setup -------------------------------------------------------------------------------------- */

static bool has_vocab(const char *dir)
{
    char path[4300];
    snprintf(path, sizeof(path), "%s/vocab.json", dir);
    FILE *f = fopen(path, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[4300];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = gen__malloc((size_t)size + 1))) {
            *len = fread(buf, 1, (size_t)size, f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* The model's tokenizer: <model>/tokenizer for a diffusers folder. A
 * single-file checkpoint has none: a tokenizer/ folder beside it wins, then
 * $LIBGEN_TOKENIZER_DIR, then the bundled CLIP tokenizer with the family's
 * padding (SD2's OpenCLIP pads with "!"). */
static gen_status load_tokenizer(run *r)
{
    char dir[4200];
    const char *path = gen__model_path(r->model);
    if (gen__model_layout(r->model) == GEN__LAYOUT_DIFFUSERS) {
        snprintf(dir, sizeof(dir), "%s/tokenizer", path);
        return gen__tokenizer_load(&r->tok, dir);
    }
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof(dir), "%.*s/tokenizer", slash ? (int)(slash - path) : 1,
             slash ? path : ".");
    if (has_vocab(dir))
        return gen__tokenizer_load(&r->tok, dir);
    const char *env = getenv("LIBGEN_TOKENIZER_DIR");
    if (env && env[0])
        return gen__tokenizer_load(&r->tok, env);
    const char *bundled = has_vocab(GEN_TOKENIZER_INSTALL_DIR) ? GEN_TOKENIZER_INSTALL_DIR
                                                               : GEN_TOKENIZER_SOURCE_DIR;
    size_t vlen = 0, mlen = 0;
    char *vocab = read_file(bundled, "vocab.json", &vlen);
    char *merges = read_file(bundled, "merges.txt", &mlen);
    gen_status st;
    if (!vocab || !merges) {
        st = gen__error(GEN_ENOTFOUND,
                        "%s is a single-file checkpoint without a tokenizer, and the bundled CLIP "
                        "tokenizer is missing from %s: put vocab.json and merges.txt in a "
                        "tokenizer/ folder beside the checkpoint or set LIBGEN_TOKENIZER_DIR",
                        path, bundled);
    } else {
        const char *config = gen__model_family(r->model) == GEN__FAMILY_SD2
                                 ? "{\"pad_token\": \"!\", \"model_max_length\": 77}"
                                 : "{\"pad_token\": \"<|endoftext|>\", \"model_max_length\": 77}";
        st = gen__tokenizer_load_buffers(&r->tok, vocab, vlen, merges, mlen, config, strlen(config),
                                         "vocab.json (bundled)", "merges.txt (bundled)");
    }
    gen__free(vocab);
    gen__free(merges);
    return st;
}

static gen_status lock_part(run *r, gen__part part)
{
    bool loaded = false;
    double seconds = 0.0;
    char key[4200];
    snprintf(key, sizeof(key), "%s:%s", gen__model_path(r->model), gen__part_name(part));
    gen_status st = gen__engine_lock_part(r->engine, r->dev, r->model, part, &r->parts[part],
                                          &loaded, &seconds);
    if (st == GEN_OK && loaded && r->hooks && r->hooks->model_load)
        r->hooks->model_load(r->hooks->hook_ctx, key, true, seconds);
    return st;
}

/* What the networks bind for a part: the job's LoRA overlay over the cached
 * device copy, or the cached copy itself. */
static const gen__device_weights *part_weights(const run *r, gen__part part)
{
    return r->overlays[part] ? r->overlays[part] : gen__engine_part_weights(&r->parts[part]);
}

/* The job's LoRAs, out of place: the cached copies are never written. */
static gen_status apply_loras(run *r)
{
    if (r->job->lora_count == 0)
        return GEN_OK;
    const gen__device_weights *parts[GEN__PART_COUNT];
    for (int p = 0; p < GEN__PART_COUNT; p++)
        parts[p] = gen__engine_part_weights(&r->parts[p]);
    gen__lora_stats stats;
    gen_status st = gen__lora_build(r->job->loras, r->job->lora_count, parts, r->overlays, &stats);
    if (st == GEN_OK)
        GEN__LOG_INFO(gen__engine_logger(r->engine),
                      "LoRA: %d file(s), %d module(s): %d unet and %d text encoder weights "
                      "patched (%.1f MiB) in %.1f ms",
                      stats.files, stats.modules, stats.patched[GEN__PART_UNET],
                      stats.patched[GEN__PART_TEXT_ENCODER],
                      (double)stats.overlay_bytes / (1024.0 * 1024.0), stats.seconds * 1e3);
    return st;
}

static gen_status check_size(run *r)
{
    const gen__unet_config *uc = gen__model_unet_config(r->model);
    const gen__vae_config *vc = gen__model_vae_config(r->model);
    int vae_factor = 1 << (vc->n_blocks - 1);
    int multiple = vae_factor * (1 << (uc->n_blocks - 1));
    if (r->job->width % multiple || r->job->height % multiple)
        return gen__error(GEN_EINVAL,
                          "size %dx%d: this model needs width and height that are multiples of %d",
                          r->job->width, r->job->height, multiple);
    r->lc = uc->in_channels;
    r->lh = r->job->height / vae_factor;
    r->lw = r->job->width / vae_factor;
    r->n = (size_t)r->lc * (size_t)r->lh * (size_t)r->lw;
    return GEN_OK;
}

/* --- stages ------------------------------------------------------------------------------------- */

static gen_status encode_prompts(run *r)
{
    const gen__text_config *tc = gen__model_text_config(r->model);
    int len = (int)gen__tokenizer_max_length(r->tok);
    if (len > tc->max_position_embeddings)
        len = tc->max_position_embeddings;
    int32_t *ids = gen__calloc((size_t)r->batch * (size_t)len, sizeof(int32_t));
    if (!ids)
        return gen__error(GEN_ENOMEM, "text encoding: out of memory");
    const char *texts[2] = {r->job->negative_prompt ? r->job->negative_prompt : "", r->job->prompt};
    const char *names[2] = {"negative_prompt", "prompt"};
    gen_status st = GEN_OK;
    for (int b = 0; b < r->batch && st == GEN_OK; b++) {
        int which = r->batch == 2 ? b : 1;
        bool truncated = false;
        st = gen__tokenizer_encode_padded(r->tok, texts[which], strlen(texts[which]),
                                          ids + (size_t)b * (size_t)len, (size_t)len, &truncated);
        if (st == GEN_OK && truncated)
            GEN__LOG_WARN(gen__engine_logger(r->engine),
                          "%s is longer than %d tokens: the rest is ignored (as diffusers does)",
                          names[which], len - 2);
    }
    if (st == GEN_OK)
        st = gen__text_encoder_create(&r->te, tc, part_weights(r, GEN__PART_TEXT_ENCODER));
    if (st == GEN_OK)
        st = gen__text_encoder_forward(r->te, &r->context, ids, r->batch, len, r->job->clip_skip);
    gen__free(ids);
    return st;
}

static gen_status make_scheduler(run *r)
{
    gen__sched_params params;
    gen_status st = gen__sched_params_from_config(&params, r->job->scheduler,
                                                  gen__model_scheduler_config(r->model),
                                                  r->job->karras ? 1 : 0, "scheduler_config.json");
    if (st == GEN_OK) {
        gen__sched_params_set_spacing(&params, r->job->timestep_spacing);
        st = gen__scheduler_create(&r->sched, r->job->scheduler, &params, r->job->steps, 0.0f);
    }
    return st;
}

/* img2img: the init image as [-1, 1] floats [1, 3, H, W] on the device. */
static gen_status load_init_image(run *r, gen__tensor *image)
{
    gen__rgb_image png = {0, 0, NULL};
    gen_status st = gen__png_decode_file(r->job->init_image, 4096, 4096, &png);
    if (st != GEN_OK)
        return gen__error_prefix("init_image: ");
    if ((int)png.width != r->job->width || (int)png.height != r->job->height) {
        gen__rgb_image_free(&png);
        return gen__error(GEN_EINVAL, "init_image %s is %ux%u, the job asks for %dx%d",
                          r->job->init_image, png.width, png.height, r->job->width,
                          r->job->height);
    }
    size_t plane = (size_t)png.width * (size_t)png.height;
    float *chw = gen__malloc(plane * 3 * sizeof(float));
    if (!chw) {
        gen__rgb_image_free(&png);
        return gen__error(GEN_ENOMEM, "init image: out of memory");
    }
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++)
            chw[(size_t)c * plane + p] = (float)png.pixels[3 * p + (size_t)c] / 255.0f * 2.0f - 1.0f;
    gen__rgb_image_free(&png);
    int64_t shape[4] = {1, 3, r->job->height, r->job->width};
    st = gen__tensor_alloc(image, r->be, GEN__F32, 4, shape);
    if (st == GEN_OK)
        st = gen__tensor_upload(image, chw, plane * 3 * sizeof(float));
    gen__free(chw);
    return st;
}

/* Download a device tensor of f32 or the device dtype into host floats. */
static gen_status download_f32(run *r, const gen__tensor *t, float *host, size_t count)
{
    if (t->dtype == GEN__F32)
        return gen__tensor_download(t, host, count * sizeof(float));
    gen__tensor tmp = GEN__TENSOR_EMPTY;
    gen_status st = gen__tensor_alloc(&tmp, r->be, GEN__F32, t->ndim, t->shape);
    if (st == GEN_OK)
        st = gen__convert(&tmp, t);
    if (st == GEN_OK)
        st = gen__tensor_download(&tmp, host, count * sizeof(float));
    gen__tensor_free(&tmp);
    return st;
}

/* Upload host floats into a device tensor of the compute dtype. */
static gen_status upload_f32(run *r, gen__tensor *t, const float *host, size_t count)
{
    if (t->dtype == GEN__F32)
        return gen__tensor_upload(t, host, count * sizeof(float));
    gen__tensor tmp = GEN__TENSOR_EMPTY;
    gen_status st = gen__tensor_alloc(&tmp, r->be, GEN__F32, t->ndim, t->shape);
    if (st == GEN_OK)
        st = gen__tensor_upload(&tmp, host, count * sizeof(float));
    if (st == GEN_OK)
        st = gen__convert(t, &tmp);
    gen__tensor_free(&tmp);
    return st;
}

/* Tests: the device memory the tiled-VAE choice sees (0 = ask the device). */
static _Atomic uint64_t test_available;

void gen__generate_test_set_available(uint64_t bytes)
{
    atomic_store(&test_available, bytes);
}

/* job->tiled_vae: on, off, or auto = tiled when the untiled pass's working
 * memory estimate exceeds what the device has free now. */
static bool use_tiled_vae(run *r, bool encode)
{
    uint64_t estimate =
        gen__vae_working_memory(encode, r->job->height, r->job->width, gen__vae_dtype(r->vae), 0);
    uint64_t available = atomic_load(&test_available);
    if (available == 0) {
        gen__backend_mem_info info;
        gen__backend_memory(r->be, &info);
        available = info.available;
    }
    bool tiled = gen__vae_choose_tiled(r->job->tiled_vae, estimate, available);
    if (tiled)
        GEN__LOG_DEBUG(gen__engine_logger(r->engine),
                       "vae %s %dx%d tiled (%s; untiled estimate %" PRIu64 " MiB, %" PRIu64
                       " MiB available)",
                       encode ? "encode" : "decode", r->job->width, r->job->height,
                       r->job->tiled_vae == GEN__TILED_ON ? "forced" : "auto", estimate >> 20,
                       available >> 20);
    return tiled;
}

static gen_status initial_latents(run *r, size_t *start)
{
    *start = 0;
    r->latents = gen__malloc(r->n * sizeof(float));
    if (!r->latents)
        return gen__error(GEN_ENOMEM, "latents: out of memory");
    if (!r->job->init_image) {
        gen__rng_randn(&r->rng, r->latents, r->n);
        float sigma = gen__scheduler_init_noise_sigma(r->sched);
        for (size_t i = 0; i < r->n; i++)
            r->latents[i] *= sigma;
        return GEN_OK;
    }
    *start = gen__scheduler_img2img_start(r->sched, r->job->strength);
    gen__tensor image = GEN__TENSOR_EMPTY, mean = GEN__TENSOR_EMPTY, std = GEN__TENSOR_EMPTY;
    float *m = gen__malloc(r->n * sizeof(float)), *s = gen__malloc(r->n * sizeof(float));
    float *noise = gen__malloc(r->n * sizeof(float));
    gen_status st = m && s && noise ? GEN_OK : gen__error(GEN_ENOMEM, "img2img: out of memory");
    if (st == GEN_OK)
        st = load_init_image(r, &image);
    if (st == GEN_OK)
        st = use_tiled_vae(r, true) ? gen__vae_encode_tiled(r->vae, &mean, &std, &image, 0)
                                    : gen__vae_encode(r->vae, &mean, &std, &image);
    if (st == GEN_OK)
        st = download_f32(r, &mean, m, r->n);
    if (st == GEN_OK)
        st = download_f32(r, &std, s, r->n);
    if (st == GEN_OK) {
        /* latent_dist.sample(generator) draws first, then the noise. */
        double scaling = gen__vae_scaling_factor(r->vae);
        gen__rng_randn(&r->rng, noise, r->n);
        for (size_t i = 0; i < r->n; i++)
            m[i] = (float)((m[i] + s[i] * noise[i]) * (float)scaling);
        gen__rng_randn(&r->rng, noise, r->n);
        gen__scheduler_add_noise(r->sched, *start, m, noise, r->latents, r->n);
    }
    gen__tensor_free(&image);
    gen__tensor_free(&mean);
    gen__tensor_free(&std);
    gen__free(m);
    gen__free(s);
    gen__free(noise);
    return st;
}

static gen_status denoise(run *r, size_t start)
{
    size_t total = gen__scheduler_num_timesteps(r->sched);
    int64_t shape[4] = {r->batch, r->lc, r->lh, r->lw};
    gen__tensor x = GEN__TENSOR_EMPTY, eps = GEN__TENSOR_EMPTY;
    float *scaled = gen__malloc(r->n * (size_t)r->batch * sizeof(float));
    float *pred = gen__malloc(r->n * (size_t)r->batch * sizeof(float));
    uint8_t *preview = gen__malloc((size_t)r->lh * (size_t)r->lw * 3);
    gen_status st = scaled && pred && preview ? GEN_OK
                                              : gen__error(GEN_ENOMEM, "denoising: out of memory");
    if (st == GEN_OK)
        st = gen__tensor_alloc(&x, r->be, r->dtype, 4, shape);
    double guidance = r->job->guidance;
    for (size_t i = start; st == GEN_OK && i < total; i++) {
        if (canceled(r)) {
            st = gen__error(GEN_ECANCELED, "canceled before step %zu of %zu", i - start + 1,
                            total - start);
            break;
        }
        gen__scheduler_scale_model_input(r->sched, i, r->latents, scaled, r->n);
        for (int b = 1; b < r->batch; b++)
            memcpy(scaled + (size_t)b * r->n, scaled, r->n * sizeof(float));
        st = upload_f32(r, &x, scaled, r->n * (size_t)r->batch);
        float t[2];
        t[0] = t[1] = (float)gen__scheduler_timestep(r->sched, i);
        if (st == GEN_OK)
            st = gen__unet_forward(r->unet, &eps, &x, t, &r->context);
        if (st == GEN_OK)
            st = download_f32(r, &eps, pred, r->n * (size_t)r->batch);
        gen__tensor_free(&eps);
        if (st != GEN_OK)
            break;
        if (r->batch == 2) {
            /* noise_uncond + g * (noise_text - noise_uncond), in f32 as torch does */
            float g = (float)guidance;
            for (size_t k = 0; k < r->n; k++)
                pred[k] = pred[k] + g * (pred[r->n + k] - pred[k]);
        }
        st = gen__scheduler_step(r->sched, i, pred, r->latents, r->n, &r->rng);
        if (st != GEN_OK)
            break;
        gen__latent_preview(r->latents, r->lc, r->lh, r->lw, preview);
        progress(r, GEN_STAGE_DENOISE, (int)(i - start + 1), (int)(total - start), preview, r->lw,
                 r->lh);
    }
    gen__tensor_free(&x);
    gen__free(scaled);
    gen__free(pred);
    gen__free(preview);
    return st;
}

static uint8_t to_u8(float v)
{
    /* diffusers: (x / 2 + 0.5).clamp(0, 1), then numpy (x * 255).round() */
    float x = v / 2.0f + 0.5f;
    x = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    return (uint8_t)nearbyintf(x * 255.0f);
}

static gen_status decode(run *r, gen__rgb_image *out)
{
    int64_t shape[4] = {1, r->lc, r->lh, r->lw};
    gen__tensor lat = GEN__TENSOR_EMPTY, img = GEN__TENSOR_EMPTY;
    gen_status st = gen__tensor_alloc(&lat, r->be, r->dtype, 4, shape);
    if (st == GEN_OK)
        st = upload_f32(r, &lat, r->latents, r->n);
    if (st == GEN_OK)
        st = use_tiled_vae(r, false) ? gen__vae_decode_tiled(r->vae, &img, &lat, 0)
                                     : gen__vae_decode(r->vae, &img, &lat);
    gen__tensor_free(&lat);
    size_t plane = (size_t)r->job->width * (size_t)r->job->height;
    float *chw = st == GEN_OK ? gen__malloc(plane * 3 * sizeof(float)) : NULL;
    if (st == GEN_OK && !chw)
        st = gen__error(GEN_ENOMEM, "decoding: out of memory");
    if (st == GEN_OK)
        st = download_f32(r, &img, chw, plane * 3);
    gen__tensor_free(&img);
    if (st == GEN_OK) {
        out->pixels = gen__malloc(plane * 3);
        if (!out->pixels)
            st = gen__error(GEN_ENOMEM, "decoding: out of memory");
    }
    if (st == GEN_OK) {
        out->width = (uint32_t)r->job->width;
        out->height = (uint32_t)r->job->height;
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++)
                out->pixels[3 * p + (size_t)c] = to_u8(chw[(size_t)c * plane + p]);
    }
    gen__free(chw);
    return st;
}

static void run_free(run *r)
{
    gen__free(r->latents);
    gen__tensor_free(&r->context);
    gen__scheduler_destroy(r->sched);
    gen__vae_destroy(r->vae);
    gen__unet_destroy(r->unet);
    gen__text_encoder_destroy(r->te);
    /* The networks are gone: the overlays, then the cached copies under them. */
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__device_weights_release(r->overlays[p]);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__engine_release_part(&r->parts[p]);
    gen__tokenizer_destroy(r->tok);
    gen__model_close(r->model);
}

gen_status gen__generate(gen__engine *engine, size_t device_index, const gen_job *job,
                         const gen__gen_hooks *hooks, gen__rgb_image *out)
{
    memset(out, 0, sizeof(*out));
    if (!job->model || !job->prompt || !job->has_seed)
        return gen__error(GEN_EINVAL, "generate: the job is not validated (model, prompt, seed)");
    run r;
    memset(&r, 0, sizeof(r));
    r.engine = engine;
    r.dev = device_index;
    r.job = job;
    r.hooks = hooks;
    r.batch = job->guidance > 1.0 ? 2 : 1;
    r.context = (gen__tensor)GEN__TENSOR_EMPTY;
    gen__rng_seed(&r.rng, job->seed);

    progress(&r, GEN_STAGE_LOAD, 0, 1, NULL, 0, 0);
    gen_status st = gen__engine_backend(engine, device_index, &r.be);
    if (st == GEN_OK)
        st = gen__model_open(&r.model, job->model, NULL);
    if (st == GEN_OK && !gen__model_supported(r.model))
        st = gen__error(GEN_EUNSUPPORTED, "%s: this model family is not supported yet", job->model);
    if (st == GEN_OK)
        r.dtype = gen__engine_weight_dtype(engine, device_index, r.model);
    if (st == GEN_OK)
        st = check_size(&r);
    if (st == GEN_OK)
        st = load_tokenizer(&r);
    if (st == GEN_OK)
        st = make_scheduler(&r);
    for (int p = 0; st == GEN_OK && p < GEN__PART_COUNT; p++)
        st = lock_part(&r, (gen__part)p);
    if (st == GEN_OK)
        st = apply_loras(&r);
    if (st == GEN_OK)
        st = gen__unet_create(&r.unet, gen__model_unet_config(r.model),
                              part_weights(&r, GEN__PART_UNET));
    if (st == GEN_OK)
        st = gen__vae_create(&r.vae, gen__model_vae_config(r.model),
                             part_weights(&r, GEN__PART_VAE),
                             job->init_image != NULL);
    if (st == GEN_OK && canceled(&r))
        st = gen__error(GEN_ECANCELED, "canceled while loading");

    if (st == GEN_OK) {
        progress(&r, GEN_STAGE_ENCODE, 0, 1, NULL, 0, 0);
        st = encode_prompts(&r);
    }
    size_t start = 0;
    if (st == GEN_OK)
        st = initial_latents(&r, &start);
    if (st == GEN_OK && start >= gen__scheduler_num_timesteps(r.sched))
        st = gen__error(GEN_EINVAL, "steps %d x strength %g leaves no denoising step", job->steps,
                        job->strength);
    if (st == GEN_OK)
        st = denoise(&r, start);
    if (st == GEN_OK && canceled(&r))
        st = gen__error(GEN_ECANCELED, "canceled before decoding");
    if (st == GEN_OK) {
        progress(&r, GEN_STAGE_DECODE, 0, 1, NULL, 0, 0);
        st = decode(&r, out);
        if (st == GEN_OK)
            progress(&r, GEN_STAGE_DECODE, 1, 1, NULL, 0, 0);
    }
    run_free(&r);
    if (st != GEN_OK) {
        gen__free(out->pixels);
        memset(out, 0, sizeof(*out));
    }
    return st;
}

gen_status gen__generate_metadata_json(const gen_job *job, char **json_out)
{
    gen__image_meta meta = {
        .model = job->model,
        .prompt = job->prompt,
        .negative_prompt = job->negative_prompt ? job->negative_prompt : "",
        .scheduler = gen__sched_kind_name(job->scheduler),
        .seed = job->seed,
        .steps = job->steps,
        .guidance = job->guidance,
        .width = (uint32_t)job->width,
        .height = (uint32_t)job->height,
        .strength = job->init_image ? job->strength : -1.0,
    };
    return gen__image_meta_to_json(&meta, json_out);
}
