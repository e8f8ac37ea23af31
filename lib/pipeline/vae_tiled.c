/* Tiled VAE decode / encode (see vae_tiled.h). The numbers follow diffusers'
 * AutoencoderKL: overlap_size = int(tile_in * 0.75), blend_extent =
 * int(tile_out * 0.25), row_limit = tile_out - blend_extent; with tile sides
 * that are multiples of 4 * f these are exact and the crops (row_limit wide,
 * the last ones narrower) add up to the output size. */
#include "pipeline/vae_tiled.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "pipeline/nn.h"

/* ---- host <-> device in f32 ------------------------------------------------------ */

static gen_status download_f32(const gen__tensor *t, float *host)
{
    size_t bytes = (size_t)gen__tensor_numel(t) * sizeof(float);
    if (t->dtype == GEN__F32)
        return gen__tensor_download(t, host, bytes);
    gen__tensor tmp = GEN__TENSOR_EMPTY;
    gen_status st = gen__tensor_alloc(&tmp, t->backend, GEN__F32, t->ndim, t->shape);
    if (st == GEN_OK)
        st = gen__convert(&tmp, t);
    if (st == GEN_OK)
        st = gen__tensor_download(&tmp, host, bytes);
    gen__tensor_free(&tmp);
    return st;
}

static gen_status upload_f32(gen__tensor *t, const float *host)
{
    size_t bytes = (size_t)gen__tensor_numel(t) * sizeof(float);
    if (t->dtype == GEN__F32)
        return gen__tensor_upload(t, host, bytes);
    gen__tensor tmp = GEN__TENSOR_EMPTY;
    gen_status st = gen__tensor_alloc(&tmp, t->backend, GEN__F32, t->ndim, t->shape);
    if (st == GEN_OK)
        st = gen__tensor_upload(&tmp, host, bytes);
    if (st == GEN_OK)
        st = gen__convert(t, &tmp);
    gen__tensor_free(&tmp);
    return st;
}

/* ---- geometry ------------------------------------------------------------------------ */

gen_status gen__vae_tiles_for(const gen__vae *vae, int tile_px, gen__vae_tiles *out)
{
    const int f = gen__vae_scale_factor(vae), unit = 4 * f;
    int s = tile_px;
    if (s == 0) {
        s = gen__vae_get_config(vae)->sample_size / unit * unit;
        if (s < unit)
            s = unit;
    } else if (s < 0 || s % unit != 0) {
        return gen__error(GEN_EINVAL,
                          "vae tiles: tile size %d px is not a positive multiple of %d "
                          "(4 x the VAE's factor %d)",
                          tile_px, unit, f);
    }
    out->sample = s;
    out->latent = s / f;
    out->factor = f;
    return GEN_OK;
}

/* ---- blending (diffusers' blend_v / blend_h, in place on b) -------------------------- */

typedef struct host_tile {
    float *data; /* [n, c, h, w] */
    int64_t h, w;
} host_tile;

static int64_t min3(int64_t a, int64_t b, int64_t c)
{
    int64_t m = a < b ? a : b;
    return m < c ? m : c;
}

/* a is the tile above b (same width): b's first e rows take a's last e rows
 * with weight 1 - y/e. */
static void blend_v(const host_tile *a, host_tile *b, int64_t planes, int64_t extent)
{
    const int64_t e = min3(a->h, b->h, extent), w = b->w;
    for (int64_t p = 0; p < planes; p++) {
        const float *pa = a->data + p * a->h * w;
        float *pb = b->data + p * b->h * w;
        for (int64_t y = 0; y < e; y++) {
            const float wb = (float)((double)y / (double)e),
                        wa = (float)(1.0 - (double)y / (double)e);
            const float *ra = pa + (a->h - e + y) * w;
            float *rb = pb + y * w;
            for (int64_t x = 0; x < w; x++)
                rb[x] = ra[x] * wa + rb[x] * wb;
        }
    }
}

/* a is the tile left of b (same height): b's first e columns take a's last e. */
static void blend_h(const host_tile *a, host_tile *b, int64_t planes, int64_t extent)
{
    const int64_t e = min3(a->w, b->w, extent), h = b->h;
    for (int64_t p = 0; p < planes; p++) {
        for (int64_t y = 0; y < h; y++) {
            const float *ra = a->data + (p * h + y) * a->w;
            float *rb = b->data + (p * h + y) * b->w;
            for (int64_t x = 0; x < e; x++) {
                const float wb = (float)((double)x / (double)e);
                const float wa = (float)(1.0 - (double)x / (double)e);
                rb[x] = ra[a->w - e + x] * wa + rb[x] * wb;
            }
        }
    }
}

/* ---- the tile loop ----------------------------------------------------------------- */

typedef gen_status (*net_fn)(const gen__vae *vae, gen__tensor *out, const gen__tensor *in);

typedef struct tiling {
    const gen__vae *vae;
    net_fn net;
    const char *what; /* "decode" / "encode" for messages */
    int64_t n, c_in, in_h, in_w;
    int64_t c_out, out_h, out_w;
    int64_t in_tile, in_stride; /* input units */
    int64_t blend, row_limit;   /* output units */
    gen__dtype out_dtype;       /* the network's (set by the first tile) */
} tiling;

static void free_row(host_tile *row, int64_t count)
{
    for (int64_t j = 0; j < count; j++) {
        gen__free(row[j].data);
        row[j].data = NULL;
    }
}

/* One tile through the network: cut [y0, y0+th) x [x0, x0+tw) out of `in`
 * (host, [n, c_in, in_h, in_w]), run it on the device, download into *t. */
static gen_status run_tile(tiling *g, const float *in, const gen__tensor *like, int64_t y0,
                           int64_t x0, int64_t th, int64_t tw, float *cut, host_tile *t)
{
    for (int64_t p = 0; p < g->n * g->c_in; p++)
        for (int64_t y = 0; y < th; y++)
            memcpy(cut + (p * th + y) * tw, in + (p * g->in_h + y0 + y) * g->in_w + x0,
                   (size_t)tw * sizeof(float));
    gen__tensor x = GEN__TENSOR_EMPTY, o = GEN__TENSOR_EMPTY;
    gen_status st;
    GEN__NN_TRY(
        gen__tensor_alloc(&x, like->backend, like->dtype, 4, (int64_t[]){g->n, g->c_in, th, tw}));
    GEN__NN_TRY(upload_f32(&x, cut));
    GEN__NN_TRY(g->net(g->vae, &o, &x));
    gen__tensor_free(&x);
    if (o.ndim != 4 || o.shape[0] != g->n || o.shape[1] != g->c_out) {
        st = gen__error(GEN_EINVAL, "vae %s: a tile's output has an unexpected shape", g->what);
        goto done;
    }
    g->out_dtype = o.dtype;
    t->h = o.shape[2];
    t->w = o.shape[3];
    t->data = gen__malloc((size_t)gen__tensor_numel(&o) * sizeof(float));
    if (!t->data) {
        st = gen__error(GEN_ENOMEM, "vae %s: out of memory for a tile", g->what);
        goto done;
    }
    GEN__NN_TRY(download_f32(&o, t->data));
done:
    gen__tensor_free(&x);
    gen__tensor_free(&o);
    return st;
}

/* Runs every tile row by row; blends each output tile into its (already
 * blended) upper and left neighbours as diffusers' in-place loop does, and
 * writes its crop into out ([n, c_out, out_h, out_w], host). */
static gen_status run_tiles(tiling *g, const float *in, const gen__tensor *like, float *out)
{
    const int64_t rows = (g->in_h + g->in_stride - 1) / g->in_stride;
    const int64_t cols = (g->in_w + g->in_stride - 1) / g->in_stride;
    const int64_t planes = g->n * g->c_out;
    host_tile *prev = gen__calloc((size_t)cols, sizeof *prev);
    host_tile *cur = gen__calloc((size_t)cols, sizeof *cur);
    float *cut = gen__malloc((size_t)(g->n * g->c_in * g->in_tile * g->in_tile) * sizeof(float));
    gen_status st =
        prev && cur && cut ? GEN_OK : gen__error(GEN_ENOMEM, "vae %s: out of memory", g->what);
    int64_t out_y = 0;
    for (int64_t i = 0; st == GEN_OK && i < rows; i++) {
        const int64_t y0 = i * g->in_stride;
        const int64_t th = g->in_h - y0 < g->in_tile ? g->in_h - y0 : g->in_tile;
        int64_t out_x = 0, crop_h = 0;
        for (int64_t j = 0; j < cols; j++) {
            const int64_t x0 = j * g->in_stride;
            const int64_t tw = g->in_w - x0 < g->in_tile ? g->in_w - x0 : g->in_tile;
            GEN__NN_TRY(run_tile(g, in, like, y0, x0, th, tw, cut, &cur[j]));
            if (i > 0)
                blend_v(&prev[j], &cur[j], planes, g->blend);
            if (j > 0)
                blend_h(&cur[j - 1], &cur[j], planes, g->blend);
            crop_h = cur[j].h < g->row_limit ? cur[j].h : g->row_limit;
            const int64_t crop_w = cur[j].w < g->row_limit ? cur[j].w : g->row_limit;
            if (out_y + crop_h > g->out_h || out_x + crop_w > g->out_w) {
                st = gen__error(GEN_EINVAL, "vae %s: tiles overrun the %lldx%lld output", g->what,
                                (long long)g->out_h, (long long)g->out_w);
                goto done;
            }
            for (int64_t p = 0; p < planes; p++)
                for (int64_t y = 0; y < crop_h; y++)
                    memcpy(out + (p * g->out_h + out_y + y) * g->out_w + out_x,
                           cur[j].data + (p * cur[j].h + y) * cur[j].w,
                           (size_t)crop_w * sizeof(float));
            out_x += crop_w;
        }
        if (out_x != g->out_w) {
            st = gen__error(GEN_EINVAL, "vae %s: tiles cover %lld of %lld columns", g->what,
                            (long long)out_x, (long long)g->out_w);
            goto done;
        }
        out_y += crop_h;
        free_row(prev, cols);
        host_tile *t = prev;
        prev = cur;
        cur = t;
    }
    if (st == GEN_OK && out_y != g->out_h)
        st = gen__error(GEN_EINVAL, "vae %s: tiles cover %lld of %lld rows", g->what,
                        (long long)out_y, (long long)g->out_h);
done:
    if (prev)
        free_row(prev, cols);
    if (cur)
        free_row(cur, cols);
    gen__free(prev);
    gen__free(cur);
    gen__free(cut);
    return st;
}

/* in: device tensor [n, c_in, in_h, in_w]; out (allocated here on in's
 * device, in the network's output dtype). Tiles are cut in in's dtype (the
 * networks convert to the VAE's when it differs, as the untiled calls do). */
static gen_status tiled_pass(tiling *g, gen__tensor *out, const gen__tensor *in)
{
    float *host_in = gen__malloc((size_t)gen__tensor_numel(in) * sizeof(float));
    size_t out_count = (size_t)(g->n * g->c_out * g->out_h * g->out_w);
    float *host_out = gen__malloc(out_count * sizeof(float));
    gen_status st =
        host_in && host_out
            ? GEN_OK
            : gen__error(GEN_ENOMEM, "vae %s: out of memory for the tiled image", g->what);
    if (st == GEN_OK)
        st = download_f32(in, host_in);
    if (st == GEN_OK)
        st = run_tiles(g, host_in, in, host_out);
    gen__free(host_in);
    if (st == GEN_OK)
        st = gen__tensor_alloc(out, in->backend, g->out_dtype, 4,
                               (int64_t[]){g->n, g->c_out, g->out_h, g->out_w});
    if (st == GEN_OK)
        st = upload_f32(out, host_out);
    gen__free(host_out);
    if (st != GEN_OK)
        gen__tensor_free(out);
    return st;
}

gen_status gen__vae_decode_tiled(const gen__vae *vae, gen__tensor *image,
                                 const gen__tensor *latents, int tile_px)
{
    *image = (gen__tensor)GEN__TENSOR_EMPTY;
    gen__vae_tiles t;
    gen_status st = gen__vae_tiles_for(vae, tile_px, &t);
    if (st != GEN_OK)
        return st;
    if (latents->ndim == 4 && latents->shape[2] <= t.latent && latents->shape[3] <= t.latent)
        return gen__vae_decode(vae, image, latents);
    gen__tensor z = GEN__TENSOR_EMPTY;
    st = gen__vae_unscale(vae, &z, latents); /* checks the shape */
    if (st != GEN_OK)
        return st;
    const gen__vae_config *cfg = gen__vae_get_config(vae);
    tiling g = {
        .vae = vae,
        .net = gen__vae_decoder_forward,
        .what = "decode",
        .n = z.shape[0],
        .c_in = z.shape[1],
        .in_h = z.shape[2],
        .in_w = z.shape[3],
        .c_out = cfg->out_channels,
        .out_h = z.shape[2] * t.factor,
        .out_w = z.shape[3] * t.factor,
        .in_tile = t.latent,
        .in_stride = t.latent - t.latent / 4,
        .blend = t.sample / 4,
        .row_limit = t.sample - t.sample / 4,
    };
    st = tiled_pass(&g, image, &z);
    gen__tensor_free(&z);
    return st;
}

gen_status gen__vae_encode_tiled(const gen__vae *vae, gen__tensor *mean, gen__tensor *std,
                                 const gen__tensor *image, int tile_px)
{
    *mean = (gen__tensor)GEN__TENSOR_EMPTY;
    *std = (gen__tensor)GEN__TENSOR_EMPTY;
    gen__vae_tiles t;
    gen_status st = gen__vae_tiles_for(vae, tile_px, &t);
    if (st != GEN_OK)
        return st;
    const gen__vae_config *cfg = gen__vae_get_config(vae);
    if (image->ndim != 4 || image->shape[1] != cfg->in_channels || image->shape[2] % t.factor ||
        image->shape[3] % t.factor || (image->shape[2] <= t.sample && image->shape[3] <= t.sample))
        return gen__vae_encode(vae, mean, std, image); /* one pass, or its error */
    tiling g = {
        .vae = vae,
        .net = gen__vae_encoder_forward,
        .what = "encode",
        .n = image->shape[0],
        .c_in = image->shape[1],
        .in_h = image->shape[2],
        .in_w = image->shape[3],
        .c_out = 2 * (int64_t)cfg->latent_channels,
        .out_h = image->shape[2] / t.factor,
        .out_w = image->shape[3] / t.factor,
        .in_tile = t.sample,
        .in_stride = t.sample - t.sample / 4,
        .blend = t.latent / 4,
        .row_limit = t.latent - t.latent / 4,
    };
    gen__tensor moments = GEN__TENSOR_EMPTY;
    st = tiled_pass(&g, &moments, image);
    if (st == GEN_OK)
        st = gen__vae_moments_split(vae, mean, std, &moments);
    gen__tensor_free(&moments);
    return st;
}

/* ---- working memory and the choice ---------------------------------------------------- */

uint64_t gen__vae_working_memory(bool encode, int64_t out_h, int64_t out_w, gen__dtype dtype,
                                 int tile_px)
{
    double area = tile_px > 0 ? (double)tile_px * (double)tile_px * 1.25
                              : (double)(out_h > 0 ? out_h : 0) * (double)(out_w > 0 ? out_w : 0);
    double bytes = area * (double)gen__dtype_size(dtype) * (encode ? 1100.0 : 2200.0);
    if (dtype == GEN__F32)
        bytes += 250.0 * 1024.0 * 1024.0;
    return bytes >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)bytes;
}

bool gen__vae_choose_tiled(gen__tiled_mode mode, uint64_t estimate, uint64_t available)
{
    if (mode == GEN__TILED_ON)
        return true;
    if (mode == GEN__TILED_OFF)
        return false;
    return estimate > available;
}
