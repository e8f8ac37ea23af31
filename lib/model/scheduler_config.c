/* scheduler_config.json: every key diffusers' DDIM, Euler, Euler ancestral,
 * DPM-Solver multistep (and PNDM) schedulers read, with per-class defaults. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model/config.h"
#include "model/json_get.h"

gen__sched_class gen__sched_class_from_name(const char *name)
{
    static const struct {
        const char *name;
        gen__sched_class cls;
    } known[] = {
        {"DDIMScheduler", GEN__SCHED_CLASS_DDIM},
        {"EulerDiscreteScheduler", GEN__SCHED_CLASS_EULER},
        {"EulerAncestralDiscreteScheduler", GEN__SCHED_CLASS_EULER_ANCESTRAL},
        {"DPMSolverMultistepScheduler", GEN__SCHED_CLASS_DPM_MULTISTEP},
        {"PNDMScheduler", GEN__SCHED_CLASS_PNDM},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(name, known[i].name) == 0)
            return known[i].cls;
    return GEN__SCHED_CLASS_OTHER;
}

void gen__scheduler_config_defaults(gen__scheduler_config *c, gen__sched_class cls)
{
    memset(c, 0, sizeof(*c));
    c->class_id = cls;
    c->num_train_timesteps = 1000;
    c->beta_start = 0.0001;
    c->beta_end = 0.02;
    c->beta_schedule = GEN__BETAS_LINEAR;
    c->prediction_type = GEN__PRED_EPSILON;
    c->dynamic_thresholding_ratio = 0.995;
    c->clip_sample_range = 1.0;
    c->sample_max_value = 1.0;
    c->interpolation_type = GEN__INTERP_LINEAR;
    c->timestep_type = GEN__TSTYPE_DISCRETE;
    c->final_sigmas_type = GEN__FINAL_SIGMA_ZERO;
    c->solver_order = 2;
    c->algorithm_type = GEN__DPM_ALGO_DPMSOLVER_PP;
    c->solver_type = GEN__DPM_SOLVER_MIDPOINT;
    c->lower_order_final = true;
    c->lambda_min_clipped = -INFINITY;
    c->variance_type = GEN__VARIANCE_NONE;
    c->flow_shift = 1.0;
    c->time_shift_type = GEN__SHIFT_EXPONENTIAL;
    switch (cls) {
    case GEN__SCHED_CLASS_DDIM:
        c->clip_sample = true;
        c->set_alpha_to_one = true;
        c->timestep_spacing = GEN__SPACING_LEADING;
        break;
    case GEN__SCHED_CLASS_EULER:
    case GEN__SCHED_CLASS_EULER_ANCESTRAL:
    case GEN__SCHED_CLASS_DPM_MULTISTEP:
        c->timestep_spacing = GEN__SPACING_LINSPACE;
        break;
    case GEN__SCHED_CLASS_PNDM:
    case GEN__SCHED_CLASS_OTHER:
        c->timestep_spacing = GEN__SPACING_LEADING;
        break;
    }
}

#define FIELD(bit, field) {bit, offsetof(gen__scheduler_config, field), sizeof(((gen__scheduler_config *)0)->field)}
static const struct {
    uint64_t bit;
    size_t offset, size;
} key_fields[] = {
    FIELD(GEN__SK_NUM_TRAIN_TIMESTEPS, num_train_timesteps),
    FIELD(GEN__SK_BETA_START, beta_start),
    FIELD(GEN__SK_BETA_END, beta_end),
    FIELD(GEN__SK_BETA_SCHEDULE, beta_schedule),
    FIELD(GEN__SK_CLIP_SAMPLE, clip_sample),
    FIELD(GEN__SK_SET_ALPHA_TO_ONE, set_alpha_to_one),
    FIELD(GEN__SK_STEPS_OFFSET, steps_offset),
    FIELD(GEN__SK_PREDICTION_TYPE, prediction_type),
    FIELD(GEN__SK_THRESHOLDING, thresholding),
    FIELD(GEN__SK_DYN_THRESH_RATIO, dynamic_thresholding_ratio),
    FIELD(GEN__SK_CLIP_SAMPLE_RANGE, clip_sample_range),
    FIELD(GEN__SK_SAMPLE_MAX_VALUE, sample_max_value),
    FIELD(GEN__SK_TIMESTEP_SPACING, timestep_spacing),
    FIELD(GEN__SK_RESCALE_ZERO_SNR, rescale_betas_zero_snr),
    FIELD(GEN__SK_INTERPOLATION_TYPE, interpolation_type),
    FIELD(GEN__SK_USE_KARRAS, use_karras_sigmas),
    FIELD(GEN__SK_USE_EXPONENTIAL, use_exponential_sigmas),
    FIELD(GEN__SK_USE_BETA, use_beta_sigmas),
    FIELD(GEN__SK_SIGMA_MIN, sigma_min),
    FIELD(GEN__SK_SIGMA_MIN, has_sigma_min),
    FIELD(GEN__SK_SIGMA_MAX, sigma_max),
    FIELD(GEN__SK_SIGMA_MAX, has_sigma_max),
    FIELD(GEN__SK_TIMESTEP_TYPE, timestep_type),
    FIELD(GEN__SK_FINAL_SIGMAS_TYPE, final_sigmas_type),
    FIELD(GEN__SK_SOLVER_ORDER, solver_order),
    FIELD(GEN__SK_ALGORITHM_TYPE, algorithm_type),
    FIELD(GEN__SK_SOLVER_TYPE, solver_type),
    FIELD(GEN__SK_LOWER_ORDER_FINAL, lower_order_final),
    FIELD(GEN__SK_EULER_AT_FINAL, euler_at_final),
    FIELD(GEN__SK_USE_LU_LAMBDAS, use_lu_lambdas),
    FIELD(GEN__SK_LAMBDA_MIN_CLIPPED, lambda_min_clipped),
    FIELD(GEN__SK_VARIANCE_TYPE, variance_type),
    FIELD(GEN__SK_SKIP_PRK_STEPS, skip_prk_steps),
    FIELD(GEN__SK_USE_FLOW_SIGMAS, use_flow_sigmas),
    FIELD(GEN__SK_FLOW_SHIFT, flow_shift),
    FIELD(GEN__SK_USE_DYNAMIC_SHIFTING, use_dynamic_shifting),
    FIELD(GEN__SK_TIME_SHIFT_TYPE, time_shift_type),
};
#undef FIELD

static gen_status get_enum(const char *label, json_t *root, const char *key,
                           const char *const *names, uint64_t bit, int *field, uint64_t *present)
{
    bool p;
    int v = *field;
    gen_status st = gen__json_get_enum(label, root, key, names, &v, &p);
    if (st == GEN_OK && p) {
        *field = v;
        *present |= bit;
    }
    return st;
}

#define TRY(expr)                  \
    do {                           \
        st = (expr);               \
        if (st != GEN_OK)          \
            goto fail;             \
    } while (0)
#define MARK(bit, p) \
    do {             \
        if (p)       \
            c.present |= (bit); \
    } while (0)

gen_status gen__scheduler_config_parse(const char *label, const char *text, size_t len,
                                       gen__scheduler_config *out)
{
    static const char *const pred_names[] = {"epsilon", "v_prediction", "sample", NULL};
    static const char *const beta_names[] = {"linear", "scaled_linear", "squaredcos_cap_v2", NULL};
    static const char *const spacing_names[] = {"leading", "linspace", "trailing", NULL};
    static const char *const interp_names[] = {"linear", "log_linear", NULL};
    static const char *const tstype_names[] = {"discrete", "continuous", NULL};
    static const char *const final_names[] = {"zero", "sigma_min", NULL};
    /* diffusers maps "deis" to dpmsolver++ and the UniPC solver types to midpoint. */
    static const char *const algo_names[] = {"dpmsolver++", "sde-dpmsolver++", "dpmsolver",
                                             "sde-dpmsolver", "deis", NULL};
    static const char *const solver_names[] = {"midpoint", "heun", "logrho", "bh1", "bh2", NULL};
    static const char *const variance_names[] = {"none", "learned", "learned_range", "fixed_small",
                                                 "fixed_small_log", "fixed_large",
                                                 "fixed_large_log", NULL};

    json_t *root;
    gen_status st = gen__json_parse_object(label, text, len, &root);
    if (st != GEN_OK)
        return st;
    gen__scheduler_config c;
    char class_name[64] = "";
    bool p;
    TRY(gen__json_get_string(label, root, "_class_name", class_name, sizeof(class_name), NULL));
    gen__scheduler_config_defaults(&c, gen__sched_class_from_name(class_name));
    memcpy(c.class_name, class_name, sizeof(class_name));

    TRY(gen__json_get_int(label, root, "num_train_timesteps", 1, GEN__MAX_TRAIN_TIMESTEPS,
                          &c.num_train_timesteps, &p));
    MARK(GEN__SK_NUM_TRAIN_TIMESTEPS, p);
    TRY(gen__json_get_double(label, root, "beta_start", 0.0, 1.0, &c.beta_start, &p));
    MARK(GEN__SK_BETA_START, p);
    TRY(gen__json_get_double(label, root, "beta_end", 0.0, 1.0, &c.beta_end, &p));
    MARK(GEN__SK_BETA_END, p);
    int e = (int)c.beta_schedule;
    TRY(get_enum(label, root, "beta_schedule", beta_names, GEN__SK_BETA_SCHEDULE, &e, &c.present));
    c.beta_schedule = (gen__beta_schedule)e;
    TRY(gen__json_get_bool(label, root, "clip_sample", &c.clip_sample, &p));
    MARK(GEN__SK_CLIP_SAMPLE, p);
    TRY(gen__json_get_bool(label, root, "set_alpha_to_one", &c.set_alpha_to_one, &p));
    MARK(GEN__SK_SET_ALPHA_TO_ONE, p);
    TRY(gen__json_get_int(label, root, "steps_offset", 0, GEN__MAX_TRAIN_TIMESTEPS, &c.steps_offset,
                          &p));
    MARK(GEN__SK_STEPS_OFFSET, p);
    e = (int)c.prediction_type;
    TRY(get_enum(label, root, "prediction_type", pred_names, GEN__SK_PREDICTION_TYPE, &e,
                 &c.present));
    c.prediction_type = (gen__prediction)e;
    TRY(gen__json_get_bool(label, root, "thresholding", &c.thresholding, &p));
    MARK(GEN__SK_THRESHOLDING, p);
    TRY(gen__json_get_double(label, root, "dynamic_thresholding_ratio", 0.0, 1.0,
                             &c.dynamic_thresholding_ratio, &p));
    MARK(GEN__SK_DYN_THRESH_RATIO, p);
    TRY(gen__json_get_double(label, root, "clip_sample_range", 0.0, 1e6, &c.clip_sample_range, &p));
    MARK(GEN__SK_CLIP_SAMPLE_RANGE, p);
    TRY(gen__json_get_double(label, root, "sample_max_value", 0.0, 1e6, &c.sample_max_value, &p));
    MARK(GEN__SK_SAMPLE_MAX_VALUE, p);
    e = (int)c.timestep_spacing;
    TRY(get_enum(label, root, "timestep_spacing", spacing_names, GEN__SK_TIMESTEP_SPACING, &e,
                 &c.present));
    c.timestep_spacing = (gen__spacing)e;
    TRY(gen__json_get_bool(label, root, "rescale_betas_zero_snr", &c.rescale_betas_zero_snr, &p));
    MARK(GEN__SK_RESCALE_ZERO_SNR, p);
    e = (int)c.interpolation_type;
    TRY(get_enum(label, root, "interpolation_type", interp_names, GEN__SK_INTERPOLATION_TYPE, &e,
                 &c.present));
    c.interpolation_type = (gen__interpolation)e;
    TRY(gen__json_get_bool(label, root, "use_karras_sigmas", &c.use_karras_sigmas, &p));
    MARK(GEN__SK_USE_KARRAS, p);
    TRY(gen__json_get_bool(label, root, "use_exponential_sigmas", &c.use_exponential_sigmas, &p));
    MARK(GEN__SK_USE_EXPONENTIAL, p);
    TRY(gen__json_get_bool(label, root, "use_beta_sigmas", &c.use_beta_sigmas, &p));
    MARK(GEN__SK_USE_BETA, p);
    TRY(gen__json_get_double(label, root, "sigma_min", 0.0, 1e6, &c.sigma_min, &c.has_sigma_min));
    MARK(GEN__SK_SIGMA_MIN, c.has_sigma_min);
    TRY(gen__json_get_double(label, root, "sigma_max", 0.0, 1e6, &c.sigma_max, &c.has_sigma_max));
    MARK(GEN__SK_SIGMA_MAX, c.has_sigma_max);
    e = (int)c.timestep_type;
    TRY(get_enum(label, root, "timestep_type", tstype_names, GEN__SK_TIMESTEP_TYPE, &e,
                 &c.present));
    c.timestep_type = (gen__timestep_type)e;
    e = (int)c.final_sigmas_type;
    TRY(get_enum(label, root, "final_sigmas_type", final_names, GEN__SK_FINAL_SIGMAS_TYPE, &e,
                 &c.present));
    c.final_sigmas_type = (gen__final_sigmas)e;
    TRY(gen__json_get_int(label, root, "solver_order", 1, 3, &c.solver_order, &p));
    MARK(GEN__SK_SOLVER_ORDER, p);
    e = (int)c.algorithm_type;
    TRY(get_enum(label, root, "algorithm_type", algo_names, GEN__SK_ALGORITHM_TYPE, &e,
                 &c.present));
    c.algorithm_type = e == 4 ? GEN__DPM_ALGO_DPMSOLVER_PP : (gen__dpm_algorithm)e;
    e = (int)c.solver_type;
    TRY(get_enum(label, root, "solver_type", solver_names, GEN__SK_SOLVER_TYPE, &e, &c.present));
    c.solver_type = e >= 2 ? GEN__DPM_SOLVER_MIDPOINT : (gen__dpm_solver)e;
    TRY(gen__json_get_bool(label, root, "lower_order_final", &c.lower_order_final, &p));
    MARK(GEN__SK_LOWER_ORDER_FINAL, p);
    TRY(gen__json_get_bool(label, root, "euler_at_final", &c.euler_at_final, &p));
    MARK(GEN__SK_EULER_AT_FINAL, p);
    TRY(gen__json_get_bool(label, root, "use_lu_lambdas", &c.use_lu_lambdas, &p));
    MARK(GEN__SK_USE_LU_LAMBDAS, p);
    TRY(gen__json_get_double(label, root, "lambda_min_clipped", -1e30, 1e30, &c.lambda_min_clipped,
                             &p));
    MARK(GEN__SK_LAMBDA_MIN_CLIPPED, p);
    e = (int)c.variance_type;
    TRY(get_enum(label, root, "variance_type", variance_names, GEN__SK_VARIANCE_TYPE, &e,
                 &c.present));
    c.variance_type = (gen__variance_type)e;
    TRY(gen__json_get_bool(label, root, "skip_prk_steps", &c.skip_prk_steps, &p));
    MARK(GEN__SK_SKIP_PRK_STEPS, p);
    TRY(gen__json_get_bool(label, root, "use_flow_sigmas", &c.use_flow_sigmas, &p));
    MARK(GEN__SK_USE_FLOW_SIGMAS, p);
    TRY(gen__json_get_double(label, root, "flow_shift", 0.0, 1e6, &c.flow_shift, &p));
    MARK(GEN__SK_FLOW_SHIFT, p);
    TRY(gen__json_get_bool(label, root, "use_dynamic_shifting", &c.use_dynamic_shifting, &p));
    MARK(GEN__SK_USE_DYNAMIC_SHIFTING, p);
    static const char *const shift_names[] = {"exponential", "linear", NULL};
    e = (int)c.time_shift_type;
    TRY(get_enum(label, root, "time_shift_type", shift_names, GEN__SK_TIME_SHIFT_TYPE, &e,
                 &c.present));
    c.time_shift_type = (gen__time_shift)e;

    /* Keys the supported schedulers would refuse or that change the model family. */
    if ((c.present & GEN__SK_SOLVER_ORDER) && c.class_id == GEN__SCHED_CLASS_DPM_MULTISTEP &&
        c.solver_order > 3) {
        st = gen__error(GEN_EFORMAT, "%s: solver_order must be 1, 2 or 3", label);
        goto fail;
    }
    if (c.beta_end < c.beta_start && !(c.present & GEN__SK_TRAINED_BETAS)) {
        st = gen__error(GEN_EFORMAT, "%s: beta_end %g is below beta_start %g", label, c.beta_end,
                        c.beta_start);
        goto fail;
    }

    json_t *tb = json_object_get(root, "trained_betas");
    if (tb && !json_is_null(tb)) {
        if (!json_is_array(tb) || json_array_size(tb) != (size_t)c.num_train_timesteps) {
            st = gen__error(GEN_EFORMAT,
                            "%s: \"trained_betas\" must be a list of num_train_timesteps (%d) numbers",
                            label, c.num_train_timesteps);
            goto fail;
        }
        c.trained_betas = gen__malloc((size_t)c.num_train_timesteps * sizeof(float));
        if (!c.trained_betas) {
            st = gen__error(GEN_ENOMEM, "%s: out of memory", label);
            goto fail;
        }
        c.n_trained_betas = c.num_train_timesteps;
        for (int i = 0; i < c.n_trained_betas; i++) {
            json_t *v = json_array_get(tb, (size_t)i);
            double d = json_is_number(v) ? json_number_value(v) : -1.0;
            if (!(d >= 0.0 && d <= 1.0)) {
                gen__free(c.trained_betas);
                st = gen__error(GEN_EFORMAT, "%s: trained_betas[%d] is not a number in [0, 1]",
                                label, i);
                goto fail;
            }
            c.trained_betas[i] = (float)d;
        }
        c.present |= GEN__SK_TRAINED_BETAS;
    }
    json_decref(root);
    *out = c;
    return GEN_OK;
fail:
    json_decref(root);
    return st;
}

gen_status gen__scheduler_config_copy(gen__scheduler_config *dst, const gen__scheduler_config *src)
{
    *dst = *src;
    dst->trained_betas = NULL;
    if (src->trained_betas) {
        dst->trained_betas = gen__malloc((size_t)src->n_trained_betas * sizeof(float));
        if (!dst->trained_betas) {
            dst->n_trained_betas = 0;
            return gen__error(GEN_ENOMEM, "out of memory copying a scheduler config");
        }
        memcpy(dst->trained_betas, src->trained_betas, (size_t)src->n_trained_betas * sizeof(float));
    }
    return GEN_OK;
}

gen_status gen__scheduler_config_for(const gen__scheduler_config *file, gen__sched_class cls,
                                     gen__scheduler_config *out)
{
    gen__scheduler_config c;
    gen__scheduler_config_defaults(&c, cls);
    memcpy(c.class_name, file->class_name, sizeof(c.class_name));
    c.present = file->present;
    for (size_t i = 0; i < sizeof(key_fields) / sizeof(key_fields[0]); i++)
        if (file->present & key_fields[i].bit)
            memcpy((char *)&c + key_fields[i].offset, (const char *)file + key_fields[i].offset,
                   key_fields[i].size);
    c.class_id = cls;
    if (file->trained_betas) {
        gen__scheduler_config copy;
        gen_status st = gen__scheduler_config_copy(&copy, file);
        if (st != GEN_OK)
            return st;
        c.trained_betas = copy.trained_betas;
        c.n_trained_betas = copy.n_trained_betas;
    }
    *out = c;
    return GEN_OK;
}

void gen__scheduler_config_free(gen__scheduler_config *c)
{
    if (!c)
        return;
    gen__free(c->trained_betas);
    c->trained_betas = NULL;
    c->n_trained_betas = 0;
}
