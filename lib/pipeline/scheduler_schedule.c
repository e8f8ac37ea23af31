/* set_timesteps: the training noise schedule and the inference timesteps
 * and sigmas, computed in the dtypes diffusers uses: float32 torch tensors
 * (betas via torch.linspace, alphas_cumprod via cumprod with a double
 * accumulator), float64 numpy (linspace, arange, interp, Karras), then cast. */
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

/* torch.linspace(start, end, n, dtype=float32) on the CPU: float step, the
 * second half counted back from the end, each a fused multiply-add as the
 * compiled kernel evaluates it. */
static void torch_linspace_f32(double start_d, double end_d, int32_t n, float *out)
{
    float start = (float)start_d, end = (float)end_d;
    if (n == 1) {
        out[0] = start;
        return;
    }
    float step = (end - start) / (float)(n - 1);
    int32_t half = n / 2;
    for (int32_t i = 0; i < n; i++)
        out[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(n - i - 1), end);
}

static gen_status make_alphas(gen__scheduler *s)
{
    const gen__sched_params *c = &s->cfg;
    int32_t n = c->num_train_timesteps;
    float *betas = gen__malloc((size_t)n * sizeof *betas);
    s->alphas_cumprod = gen__malloc((size_t)n * sizeof *s->alphas_cumprod);
    if (!betas || !s->alphas_cumprod) {
        gen__free(betas);
        return gen__error(GEN_ENOMEM, "scheduler: out of memory");
    }
    switch (c->beta_schedule) {
    case GEN__BETAS_LINEAR:
        torch_linspace_f32(c->beta_start, c->beta_end, n, betas);
        break;
    case GEN__BETAS_SCALED_LINEAR:
        torch_linspace_f32(sqrt(c->beta_start), sqrt(c->beta_end), n, betas);
        for (int32_t i = 0; i < n; i++)
            betas[i] = betas[i] * betas[i];
        break;
    case GEN__BETAS_SQUAREDCOS_CAP_V2:
        for (int32_t i = 0; i < n; i++) {
            double t1 = (double)i / n, t2 = (double)(i + 1) / n;
            double a1 = cos((t1 + 0.008) / 1.008 * M_PI / 2), a2 = cos((t2 + 0.008) / 1.008 * M_PI / 2);
            double b = 1 - (a2 * a2) / (a1 * a1);
            betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
        break;
    }
    double acc = 1.0;
    for (int32_t i = 0; i < n; i++) {
        float alpha = 1.0f - betas[i];
        acc *= alpha;
        s->alphas_cumprod[i] = (float)acc;
    }
    gen__free(betas);
    s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    return GEN_OK;
}

/* numpy.linspace(start, stop, num) element i (float64). */
static double np_linspace(double start, double stop, int64_t num, int64_t i)
{
    if (num > 1 && i == num - 1)
        return stop;
    if (num <= 1)
        return start;
    double step = (stop - start) / (double)(num - 1);
    return (double)i * step + start;
}

/* numpy.arange(start, stop, step) for a negative float step: length and values
 * as numpy fills them (start + i * (second - first)). */
static size_t np_arange_len(double start, double stop, double step)
{
    double len = ceil((stop - start) / step);
    return len > 0 ? (size_t)len : 0;
}

static double np_arange_at(double start, double step, size_t i)
{
    if (i == 0)
        return start;
    double delta = (start + step) - start;
    return i == 1 ? start + step : start + (double)i * delta;
}

/* float32 sigmas of the training schedule: ((1 - a) / a) ** 0.5. */
static float train_sigma(const gen__scheduler *s, int32_t t)
{
    float a = s->alphas_cumprod[t];
    return sqrtf((1.0f - a) / a);
}

/* _sigma_to_t: fractional timestep of sigma by interpolating log sigmas. */
static double sigma_to_t(const float *log_sigmas, int32_t n, double sigma)
{
    double log_sigma = log(sigma > 1e-10 ? sigma : 1e-10);
    /* argmax of the cumulative count of dists >= 0 (first index reaching the max). */
    int64_t count = 0, best = -1;
    int32_t low = 0;
    for (int32_t j = 0; j < n; j++) {
        if (log_sigma - (double)log_sigmas[j] >= 0)
            count++;
        if (count > best) {
            best = count;
            low = j;
        }
    }
    if (low > n - 2)
        low = n - 2;
    float lo = log_sigmas[low], hi = log_sigmas[low + 1];
    double w = ((double)lo - log_sigma) / (double)(lo - hi);
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    return (1 - w) * low + w * (low + 1);
}

/* Karras et al. (2022) sigmas between sigma_max and sigma_min, rho = 7. */
static void karras(double sigma_min, double sigma_max, int32_t steps, double *out)
{
    double rho = 7.0;
    double min_inv = pow(sigma_min, 1 / rho), max_inv = pow(sigma_max, 1 / rho);
    for (int32_t i = 0; i < steps; i++) {
        double ramp = np_linspace(0, 1, steps, i);
        out[i] = pow(max_inv + ramp * (min_inv - max_inv), rho);
    }
}

/* numpy.interp(x, arange(n), fp) in float64. */
static double interp(const float *fp, int32_t n, double x)
{
    if (x <= 0)
        return fp[0];
    if (x >= n - 1)
        return fp[n - 1];
    int32_t j = (int32_t)floor(x);
    if ((double)j == x)
        return fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    return slope * (x - (double)j) + (double)fp[j];
}

/* Timesteps as numpy computes them before the dtype cast, descending. */
static gen_status base_timesteps(gen__scheduler *s, double **out, size_t *nt)
{
    const gen__sched_params *c = &s->cfg;
    int32_t N = c->num_train_timesteps, steps = s->steps;
    bool dpm = s->kind == GEN__SCHED_DPMPP_2M;
    bool round_int = s->kind == GEN__SCHED_DDIM || dpm;
    int32_t last = N;
    if (dpm && isfinite(c->lambda_min_clipped)) {
        /* searchsorted(flip(lambda_t), lambda_min_clipped): lambdas below the clip. */
        int32_t clipped = 0;
        for (int32_t t = 0; t < N; t++) {
            float a = s->alphas_cumprod[t];
            float lambda = logf(sqrtf(a)) - logf(sqrtf(1.0f - a));
            if ((double)lambda < c->lambda_min_clipped)
                clipped++;
        }
        last = N - clipped;
    }
    size_t n = 0;
    double *ts = NULL;
    switch (c->timestep_spacing) {
    case GEN__SPACING_LINSPACE:
        n = (size_t)steps;
        ts = gen__malloc(n * sizeof *ts);
        if (!ts)
            break;
        for (size_t i = 0; i < n; i++) {
            double v;
            if (dpm)
                v = rint(np_linspace(0, last - 1, steps + 1, steps - (int64_t)i));
            else if (round_int)
                v = rint(np_linspace(0, N - 1, steps, steps - 1 - (int64_t)i));
            else
                v = (float)np_linspace(0, N - 1, steps, steps - 1 - (int64_t)i);
            ts[i] = v;
        }
        break;
    case GEN__SPACING_LEADING: {
        int32_t ratio = dpm ? last / (steps + 1) : N / steps;
        n = (size_t)steps;
        ts = gen__malloc(n * sizeof *ts);
        if (!ts)
            break;
        for (size_t i = 0; i < n; i++) {
            int64_t k = dpm ? steps - (int64_t)i : steps - 1 - (int64_t)i;
            ts[i] = (double)(k * ratio) + c->steps_offset;
        }
        break;
    }
    case GEN__SPACING_TRAILING: {
        double ratio = (double)N / steps;
        double start = dpm ? last : N;
        n = np_arange_len(start, 0, -ratio);
        ts = gen__malloc((n ? n : 1) * sizeof *ts);
        if (!ts)
            break;
        for (size_t i = 0; i < n; i++)
            ts[i] = rint(np_arange_at(start, -ratio, i)) - 1;
        break;
    }
    }
    if (!ts)
        return gen__error(GEN_ENOMEM, "scheduler: out of memory");
    if (n == 0) {
        gen__free(ts);
        return gen__error(GEN_EINVAL, "scheduler: %d steps give no timesteps", steps);
    }
    for (size_t i = 0; i < n; i++) {
        if (ts[i] < 0 || ts[i] > N - 1) {
            gen__free(ts);
            return gen__error(GEN_EINVAL, "scheduler: timestep %g out of range for %d steps "
                              "(steps_offset %d)", ts[i], steps, c->steps_offset);
        }
    }
    *out = ts;
    *nt = n;
    return GEN_OK;
}

static gen_status make_sigmas(gen__scheduler *s)
{
    const gen__sched_params *c = &s->cfg;
    int32_t N = c->num_train_timesteps;
    size_t nt = s->nt;
    float *full = gen__malloc((size_t)N * sizeof *full);
    float *log_sigmas = gen__malloc((size_t)N * sizeof *log_sigmas);
    double *sig = gen__malloc((nt + 1) * sizeof *sig);
    s->sigmas = gen__malloc((nt + 1) * sizeof *s->sigmas);
    gen_status st = GEN_OK;
    if (!full || !log_sigmas || !sig || !s->sigmas) {
        st = gen__error(GEN_ENOMEM, "scheduler: out of memory");
        goto done;
    }
    for (int32_t t = 0; t < N; t++) {
        full[t] = train_sigma(s, t);
        log_sigmas[t] = (float)log((double)full[t]);
    }
    for (size_t i = 0; i < nt; i++)
        sig[i] = interp(full, N, s->timesteps[i]);
    if (c->use_karras_sigmas) {
        double smin, smax;
        if (s->kind == GEN__SCHED_DPMPP_2M) {
            /* DPM++ takes the range of the whole training schedule. */
            smin = full[0];
            smax = full[N - 1];
        } else {
            smin = sig[nt - 1];
            smax = sig[0];
        }
        if (!isnan(c->sigma_min))
            smin = c->sigma_min;
        if (!isnan(c->sigma_max))
            smax = c->sigma_max;
        karras(smin, smax, (int32_t)nt, sig);
        for (size_t i = 0; i < nt; i++) {
            double t = sigma_to_t(log_sigmas, N, sig[i]);
            if (s->kind == GEN__SCHED_DPMPP_2M)
                t = c->beta_schedule != GEN__BETAS_SQUAREDCOS_CAP_V2 ? rint(t) : t;
            else
                t = (float)t;
            s->timesteps[i] = t;
        }
    }
    for (size_t i = 0; i < nt; i++)
        s->sigmas[i] = (float)sig[i];
    /* Euler ancestral always ends at zero; the others follow final_sigmas_type. */
    s->sigmas[nt] = (c->final_sigma_min && s->kind != GEN__SCHED_EULER_A) ? full[0] : 0.0f;
    float max = 0;
    for (size_t i = 0; i <= nt; i++)
        max = s->sigmas[i] > max ? s->sigmas[i] : max;
    if (s->kind == GEN__SCHED_DPMPP_2M)
        s->init_noise_sigma = 1.0f;
    else if (c->timestep_spacing == GEN__SPACING_LINSPACE || c->timestep_spacing == GEN__SPACING_TRAILING)
        s->init_noise_sigma = max;
    else
        s->init_noise_sigma = sqrtf(max * max + 1.0f);
done:
    gen__free(full);
    gen__free(log_sigmas);
    gen__free(sig);
    return st;
}

gen_status gen__scheduler_create(gen__scheduler **out, gen__sched_kind kind,
                                 const gen__sched_params *cfg, int32_t steps, float eta)
{
    *out = NULL;
    if (!cfg || (unsigned)kind > GEN__SCHED_DPMPP_2M)
        return gen__error(GEN_EINVAL, "scheduler: bad kind or NULL config");
    if (cfg->num_train_timesteps < 2 || cfg->num_train_timesteps > 100000)
        return gen__error(GEN_EINVAL, "scheduler: num_train_timesteps %d out of range",
                          cfg->num_train_timesteps);
    if (steps < 1 || steps > cfg->num_train_timesteps)
        return gen__error(GEN_EINVAL, "scheduler: steps must be in [1, %d], got %d",
                          cfg->num_train_timesteps, steps);
    if (!(eta >= 0.0f && eta <= 1.0f))
        return gen__error(GEN_EINVAL, "scheduler: eta must be in [0, 1]");
    gen__scheduler *s = gen__calloc(1, sizeof *s);
    if (!s)
        return gen__error(GEN_ENOMEM, "scheduler: out of memory");
    s->kind = kind;
    s->cfg = *cfg;
    s->steps = steps;
    s->eta = kind == GEN__SCHED_DDIM ? eta : 0.0f;
    s->init_noise_sigma = 1.0f;
    gen_status st = make_alphas(s);
    if (st == GEN_OK)
        st = base_timesteps(s, &s->timesteps, &s->nt);
    if (st == GEN_OK && kind != GEN__SCHED_DDIM)
        st = make_sigmas(s);
    if (st != GEN_OK) {
        gen__scheduler_destroy(s);
        return st;
    }
    *out = s;
    return GEN_OK;
}

void gen__scheduler_destroy(gen__scheduler *s)
{
    if (!s)
        return;
    gen__free(s->timesteps);
    gen__free(s->sigmas);
    gen__free(s->alphas_cumprod);
    gen__free(s->prev_x0);
    gen__free(s->cur_x0);
    gen__free(s->noise);
    gen__free(s);
}

size_t gen__scheduler_num_timesteps(const gen__scheduler *s) { return s->nt; }

double gen__scheduler_timestep(const gen__scheduler *s, size_t i)
{
    return i < s->nt ? s->timesteps[i] : 0.0;
}

double gen__scheduler_sigma(const gen__scheduler *s, size_t i)
{
    return (s->sigmas && i <= s->nt) ? s->sigmas[i] : 0.0;
}

float gen__scheduler_init_noise_sigma(const gen__scheduler *s) { return s->init_noise_sigma; }

size_t gen__scheduler_img2img_start(const gen__scheduler *s, double strength)
{
    if (!(strength > 0))
        strength = 0;
    if (strength > 1)
        strength = 1;
    int64_t init = (int64_t)((double)s->steps * strength);
    if (init > s->steps)
        init = s->steps;
    int64_t t_start = s->steps - init;
    if (t_start < 0)
        t_start = 0;
    /* All four schedulers have order 1 in diffusers' sense. */
    return (size_t)t_start < s->nt ? (size_t)t_start : s->nt;
}
