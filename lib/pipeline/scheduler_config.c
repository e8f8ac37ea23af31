/* A model's parsed scheduler config (model/config.h) -> the parameters of one
 * of our four schedulers, with diffusers' from_config semantics: keys the file
 * set are kept, every other key takes the target class's default. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "pipeline/scheduler.h"

static const char *const kind_names[GEN__SCHED_KIND_COUNT] = {"ddim", "euler", "euler_a",
                                                              "dpmpp_2m"};

const char *gen__sched_kind_name(gen__sched_kind kind)
{
    return (unsigned)kind < GEN__SCHED_KIND_COUNT ? kind_names[kind] : "unknown";
}

gen_status gen__sched_kind_from_name(const char *name, gen__sched_kind *out)
{
    static const struct {
        const char *name;
        gen__sched_kind kind;
    } names[] = {
        {"ddim", GEN__SCHED_DDIM},         {"euler", GEN__SCHED_EULER},
        {"euler_a", GEN__SCHED_EULER_A},   {"euler_ancestral", GEN__SCHED_EULER_A},
        {"dpmpp_2m", GEN__SCHED_DPMPP_2M}, {"dpm++_2m", GEN__SCHED_DPMPP_2M},
    };
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].kind;
            return GEN_OK;
        }
    }
    return gen__error(GEN_EINVAL,
                      "unknown scheduler \"%.64s\" (expected ddim, euler, euler_a or dpmpp_2m)",
                      name ? name : "(null)");
}

static gen__sched_class class_of(gen__sched_kind kind)
{
    switch (kind) {
    case GEN__SCHED_DDIM: return GEN__SCHED_CLASS_DDIM;
    case GEN__SCHED_EULER: return GEN__SCHED_CLASS_EULER;
    case GEN__SCHED_EULER_A: return GEN__SCHED_CLASS_EULER_ANCESTRAL;
    case GEN__SCHED_DPMPP_2M: return GEN__SCHED_CLASS_DPM_MULTISTEP;
    }
    return GEN__SCHED_CLASS_OTHER;
}

static gen_status refuse(const char *label, const char *key)
{
    return gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" is not supported by libgen's schedulers",
                      label, key);
}

/* Options diffusers has that change the numbers in ways not reproduced here. */
static gen_status check_supported(const gen__scheduler_config *c, gen__sched_kind kind,
                                  const char *label)
{
    if (c->trained_betas)
        return refuse(label, "trained_betas");
    if (c->thresholding)
        return refuse(label, "thresholding");
    if (c->rescale_betas_zero_snr)
        return refuse(label, "rescale_betas_zero_snr");
    if (c->use_exponential_sigmas)
        return refuse(label, "use_exponential_sigmas");
    if (c->use_beta_sigmas)
        return refuse(label, "use_beta_sigmas");
    if (kind == GEN__SCHED_DPMPP_2M) {
        if (c->use_lu_lambdas)
            return refuse(label, "use_lu_lambdas");
        if (c->algorithm_type != GEN__DPM_ALGO_DPMSOLVER_PP)
            return refuse(label, "algorithm_type");
        if (c->variance_type != GEN__VARIANCE_NONE)
            return refuse(label, "variance_type");
    }
    if (kind == GEN__SCHED_EULER) {
        if (c->interpolation_type != GEN__INTERP_LINEAR)
            return refuse(label, "interpolation_type");
        if (c->timestep_type != GEN__TSTYPE_DISCRETE)
            return refuse(label, "timestep_type");
    }
    return GEN_OK;
}

gen_status gen__sched_params_from_config(gen__sched_params *p, gen__sched_kind kind,
                                         const gen__scheduler_config *file, int karras,
                                         const char *label)
{
    if (!label)
        label = "scheduler_config.json";
    if ((unsigned)kind >= GEN__SCHED_KIND_COUNT)
        return gen__error(GEN_EINVAL, "%s: unknown scheduler kind %d", label, (int)kind);
    gen__scheduler_config c;
    gen_status st = gen__scheduler_config_for(file, class_of(kind), &c);
    if (st != GEN_OK)
        return st;
    st = check_supported(&c, kind, label);
    if (st == GEN_OK && c.beta_end < c.beta_start)
        st = gen__error(GEN_EFORMAT, "%s: beta_end %g is below beta_start %g", label, c.beta_end,
                        c.beta_start);
    if (st == GEN_OK && (c.solver_order < 1 || c.solver_order > 2) && kind == GEN__SCHED_DPMPP_2M)
        st = gen__error(GEN_EUNSUPPORTED, "%s: solver_order %d (libgen runs orders 1 and 2)",
                        label, c.solver_order);
    if (st != GEN_OK) {
        gen__scheduler_config_free(&c);
        return st;
    }
    memset(p, 0, sizeof(*p));
    p->num_train_timesteps = c.num_train_timesteps;
    p->beta_start = c.beta_start;
    p->beta_end = c.beta_end;
    p->beta_schedule = c.beta_schedule;
    p->prediction_type = c.prediction_type;
    p->timestep_spacing = c.timestep_spacing;
    p->steps_offset = c.steps_offset;
    p->set_alpha_to_one = c.set_alpha_to_one;
    p->clip_sample = c.clip_sample;
    p->clip_sample_range = c.clip_sample_range;
    /* Euler ancestral and DDIM have no Karras sigmas in diffusers. */
    bool karras_ok = kind == GEN__SCHED_EULER || kind == GEN__SCHED_DPMPP_2M;
    p->use_karras_sigmas = karras_ok && (karras < 0 ? c.use_karras_sigmas : karras != 0);
    p->sigma_min = c.has_sigma_min ? c.sigma_min : NAN;
    p->sigma_max = c.has_sigma_max ? c.sigma_max : NAN;
    p->final_sigma_min = c.final_sigmas_type == GEN__FINAL_SIGMA_MIN;
    p->solver_order = c.solver_order;
    p->solver_heun = c.solver_type == GEN__DPM_SOLVER_HEUN;
    p->lower_order_final = c.lower_order_final;
    p->euler_at_final = c.euler_at_final;
    p->lambda_min_clipped = c.lambda_min_clipped;
    gen__scheduler_config_free(&c);
    return GEN_OK;
}

void gen__sched_params_set_spacing(gen__sched_params *p, int spacing)
{
    if (spacing >= 0)
        p->timestep_spacing = (gen__spacing)spacing;
}
