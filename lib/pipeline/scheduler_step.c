/* Scheduler steps on host float32 arrays, evaluated in the order and
 * precision of diffusers' torch code (0-dim float32 coefficients, then one
 * rounding per elementwise operation). */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "pipeline/scheduler_internal.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

void gen__scheduler_scale_model_input(const gen__scheduler *s, size_t i, const float *in, float *out,
                                      size_t n)
{
    if ((s->kind == GEN__SCHED_EULER || s->kind == GEN__SCHED_EULER_A) && i <= s->nt) {
        float sigma = s->sigmas[i];
        float d = sqrtf(sigma * sigma + 1.0f);
        for (size_t k = 0; k < n; k++)
            out[k] = in[k] / d;
    } else if (out != in) {
        memmove(out, in, n * sizeof *out);
    }
}

/* x0 prediction of the Euler kinds into x0[]. */
static void euler_x0(const gen__scheduler *s, float sigma, const float *mo, const float *x, float *x0,
                     size_t n)
{
    switch (s->cfg.prediction_type) {
    case GEN__PRED_EPSILON:
        for (size_t k = 0; k < n; k++) {
            float t = sigma * mo[k];
            x0[k] = x[k] - t;
        }
        break;
    case GEN__PRED_V: {
        float s2p1 = sigma * sigma + 1.0f;
        float c_out = -sigma / sqrtf(s2p1);
        for (size_t k = 0; k < n; k++) {
            float a = mo[k] * c_out;
            float b = x[k] / s2p1;
            x0[k] = a + b;
        }
        break;
    }
    case GEN__PRED_SAMPLE:
        memcpy(x0, mo, n * sizeof *x0);
        break;
    }
}

static void euler_step(gen__scheduler *s, size_t i, const float *mo, float *x, size_t n)
{
    float sigma = s->sigmas[i];
    float sigma_hat = sigma * 1.0f;  /* s_churn = 0: gamma = 0 */
    float *x0 = s->cur_x0;
    euler_x0(s, sigma, mo, x, x0, n);
    float dt = s->sigmas[i + 1] - sigma_hat;
    for (size_t k = 0; k < n; k++) {
        float d = (x[k] - x0[k]) / sigma_hat;
        float step = d * dt;
        x[k] = x[k] + step;
    }
}

static void euler_a_step(gen__scheduler *s, size_t i, const float *mo, float *x, size_t n,
                         gen__rng *rng)
{
    float sigma = s->sigmas[i];
    float *x0 = s->cur_x0;
    euler_x0(s, sigma, mo, x, x0, n);
    float sf = s->sigmas[i], st = s->sigmas[i + 1];
    float sf2 = sf * sf, st2 = st * st;
    float up2 = st2 * (sf2 - st2);
    up2 = up2 / sf2;
    float sigma_up = sqrtf(up2);
    float sigma_down = sqrtf(st2 - sigma_up * sigma_up);
    float dt = sigma_down - sigma;
    for (size_t k = 0; k < n; k++) {
        float d = (x[k] - x0[k]) / sigma;
        float step = d * dt;
        x[k] = x[k] + step;
    }
    gen__rng_randn(rng, s->noise, n);
    for (size_t k = 0; k < n; k++) {
        float e = s->noise[k] * sigma_up;
        x[k] = x[k] + e;
    }
}

static void ddim_step(gen__scheduler *s, size_t i, const float *mo, float *x, size_t n, gen__rng *rng)
{
    int32_t N = s->cfg.num_train_timesteps;
    int32_t t = (int32_t)s->timesteps[i];
    int32_t prev_t = t - N / s->steps;
    float a_t = s->alphas_cumprod[t];
    float a_prev = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
    float beta_t = 1.0f - a_t;
    float sa = sqrtf(a_t), sb = sqrtf(beta_t);
    float *x0 = s->cur_x0, *eps = s->noise;
    for (size_t k = 0; k < n; k++) {
        switch (s->cfg.prediction_type) {
        case GEN__PRED_EPSILON: {
            float u = sb * mo[k];
            x0[k] = (x[k] - u) / sa;
            eps[k] = mo[k];
            break;
        }
        case GEN__PRED_V: {
            float p = sa * x[k], q = sb * mo[k];
            x0[k] = p - q;
            float r = sa * mo[k], w = sb * x[k];
            eps[k] = r + w;
            break;
        }
        case GEN__PRED_SAMPLE: {
            x0[k] = mo[k];
            float u = sa * x0[k];
            eps[k] = (x[k] - u) / sb;
            break;
        }
        }
        if (s->cfg.clip_sample) {
            float r = (float)s->cfg.clip_sample_range;
            x0[k] = x0[k] < -r ? -r : x0[k] > r ? r : x0[k];
        }
    }
    float beta_prev = 1.0f - a_prev;
    float variance = beta_prev / beta_t;
    variance = variance * (1.0f - a_t / a_prev);
    float std = s->eta * sqrtf(variance);
    float dir_coef = sqrtf((1.0f - a_prev) - std * std);
    float sap = sqrtf(a_prev);
    for (size_t k = 0; k < n; k++) {
        float dir = dir_coef * eps[k];
        float p = sap * x0[k];
        x[k] = p + dir;
    }
    if (s->eta > 0.0f) {
        gen__rng_randn(rng, s->noise, n);
        for (size_t k = 0; k < n; k++) {
            float v = std * s->noise[k];
            x[k] = x[k] + v;
        }
    }
}

/* alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t. */
static void dpm_alpha_sigma(float sigma, float *alpha, float *sig)
{
    *alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sig = sigma * *alpha;
}

static float dpm_lambda(float alpha, float sig)
{
    return logf(alpha) - logf(sig);
}

static void dpm_step(gen__scheduler *s, size_t i, const float *mo, float *x, size_t n)
{
    const gen__sched_params *c = &s->cfg;
    bool last = i == s->nt - 1;
    bool lower_order_final = last && (c->euler_at_final || (c->lower_order_final && s->nt < 15) ||
                                      !c->final_sigma_min);
    /* Model output -> x0 prediction (dpmsolver++). */
    float a_s, s_s;
    dpm_alpha_sigma(s->sigmas[i], &a_s, &s_s);
    float *x0 = s->cur_x0;
    for (size_t k = 0; k < n; k++) {
        switch (c->prediction_type) {
        case GEN__PRED_EPSILON: {
            float u = s_s * mo[k];
            x0[k] = (x[k] - u) / a_s;
            break;
        }
        case GEN__PRED_V: {
            float p = a_s * x[k], q = s_s * mo[k];
            x0[k] = p - q;
            break;
        }
        case GEN__PRED_SAMPLE:
            x0[k] = mo[k];
            break;
        }
    }
    float a_t, s_t;
    dpm_alpha_sigma(s->sigmas[i + 1], &a_t, &s_t);
    float l_t = dpm_lambda(a_t, s_t), l_s0 = dpm_lambda(a_s, s_s);
    float h = l_t - l_s0;
    float em1 = expf(-h) - 1.0f;
    float c_x = s_t / s_s;
    float c_d0 = a_t * em1;
    if (c->solver_order == 1 || s->lower_order_nums < 1 || lower_order_final) {
        for (size_t k = 0; k < n; k++) {
            float p = c_x * x[k], q = c_d0 * x0[k];
            x[k] = p - q;
        }
    } else {
        float a_1, s_1;
        dpm_alpha_sigma(s->sigmas[i - 1], &a_1, &s_1);
        float l_s1 = dpm_lambda(a_1, s_1);
        float h0 = l_s0 - l_s1;
        float r0 = h0 / h;
        float inv_r0 = 1.0f / r0;
        float c_d1;
        if (c->solver_heun) {
            float g = em1 / h;
            g = g + 1.0f;
            c_d1 = -(a_t * g);  /* x - c_d0*D0 + a_t*g*D1, written as a subtraction below */
        } else {
            c_d1 = 0.5f * c_d0;
        }
        const float *m1 = s->prev_x0;
        for (size_t k = 0; k < n; k++) {
            float diff = x0[k] - m1[k];
            float d1 = inv_r0 * diff;
            float p = c_x * x[k], q = c_d0 * x0[k];
            float r = c_d1 * d1;
            float v = p - q;
            x[k] = v - r;
        }
    }
    if (s->lower_order_nums < c->solver_order)
        s->lower_order_nums++;
    /* This step's x0 becomes the previous one. */
    float *tmp = s->prev_x0;
    s->prev_x0 = s->cur_x0;
    s->cur_x0 = tmp;
}

gen_status gen__scheduler_step(gen__scheduler *s, size_t i, const float *model_output, float *sample,
                               size_t n, gen__rng *rng)
{
    if (!s || !model_output || !sample || n == 0)
        return gen__error(GEN_EINVAL, "scheduler_step: NULL argument or empty sample");
    if (i >= s->nt)
        return gen__error(GEN_EINVAL, "scheduler_step: step %zu past the last of %zu", i, s->nt);
    if (s->n == 0) {
        s->prev_x0 = gen__calloc(n, sizeof *s->prev_x0);
        s->cur_x0 = gen__calloc(n, sizeof *s->cur_x0);
        s->noise = gen__calloc(n, sizeof *s->noise);
        if (!s->prev_x0 || !s->cur_x0 || !s->noise) {
            gen__free(s->prev_x0);
            gen__free(s->cur_x0);
            gen__free(s->noise);
            s->prev_x0 = s->cur_x0 = s->noise = NULL;
            return gen__error(GEN_ENOMEM, "scheduler: out of memory for %zu values", n);
        }
        s->n = n;
    } else if (n != s->n) {
        return gen__error(GEN_EINVAL, "scheduler_step: %zu values, the first step had %zu", n, s->n);
    }
    bool needs_noise = s->kind == GEN__SCHED_EULER_A || (s->kind == GEN__SCHED_DDIM && s->eta > 0.0f);
    if (needs_noise && !rng)
        return gen__error(GEN_EINVAL, "scheduler_step: %s needs a random generator",
                          gen__sched_kind_name(s->kind));
    switch (s->kind) {
    case GEN__SCHED_DDIM:
        ddim_step(s, i, model_output, sample, n, rng);
        break;
    case GEN__SCHED_EULER:
        euler_step(s, i, model_output, sample, n);
        break;
    case GEN__SCHED_EULER_A:
        euler_a_step(s, i, model_output, sample, n, rng);
        break;
    case GEN__SCHED_DPMPP_2M:
        dpm_step(s, i, model_output, sample, n);
        break;
    }
    return GEN_OK;
}

void gen__scheduler_add_noise(const gen__scheduler *s, size_t start, const float *original,
                              const float *noise, float *out, size_t n)
{
    if (start >= s->nt)
        start = s->nt - 1;
    switch (s->kind) {
    case GEN__SCHED_DDIM: {
        int32_t t = (int32_t)s->timesteps[start];
        float sa = sqrtf(s->alphas_cumprod[t]);
        float sb = sqrtf(1.0f - s->alphas_cumprod[t]);
        for (size_t k = 0; k < n; k++) {
            float p = sa * original[k], q = sb * noise[k];
            out[k] = p + q;
        }
        break;
    }
    case GEN__SCHED_EULER:
    case GEN__SCHED_EULER_A: {
        float sigma = s->sigmas[start];
        for (size_t k = 0; k < n; k++) {
            float q = noise[k] * sigma;
            out[k] = original[k] + q;
        }
        break;
    }
    case GEN__SCHED_DPMPP_2M: {
        float a, sg;
        dpm_alpha_sigma(s->sigmas[start], &a, &sg);
        for (size_t k = 0; k < n; k++) {
            float p = a * original[k], q = sg * noise[k];
            out[k] = p + q;
        }
        break;
    }
    }
}
