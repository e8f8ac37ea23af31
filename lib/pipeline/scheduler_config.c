/* scheduler_config.json -> gen__scheduler_config, with diffusers' from_config
 * semantics: start from the target scheduler class's defaults, then take
 * every key the file has. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "pipeline/scheduler.h"

void gen__scheduler_config_defaults(gen__scheduler_config *cfg, gen__sched_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->num_train_timesteps = 1000;
    cfg->beta_start = 0.0001;
    cfg->beta_end = 0.02;
    cfg->beta_schedule = GEN__BETA_LINEAR;
    cfg->prediction_type = GEN__PRED_EPSILON;
    /* DDIM defaults to leading spacing and clipping; the others to linspace. */
    cfg->timestep_spacing = kind == GEN__SCHED_DDIM ? GEN__SPACING_LEADING : GEN__SPACING_LINSPACE;
    cfg->steps_offset = 0;
    cfg->set_alpha_to_one = true;
    cfg->clip_sample = kind == GEN__SCHED_DDIM;
    cfg->clip_sample_range = 1.0;
    cfg->use_karras_sigmas = false;
    cfg->sigma_min = NAN;
    cfg->sigma_max = NAN;
    cfg->final_sigma_min = false;
    cfg->solver_order = 2;
    cfg->lower_order_final = true;
    cfg->euler_at_final = false;
    cfg->lambda_min_clipped = -INFINITY;
}

static const char *const kind_names[] = { "ddim", "euler", "euler_a", "dpmpp_2m" };

const char *gen__sched_kind_name(gen__sched_kind kind)
{
    return (unsigned)kind < 4 ? kind_names[kind] : "unknown";
}

gen_status gen__sched_kind_from_name(const char *name, gen__sched_kind *out)
{
    static const struct { const char *name; gen__sched_kind kind; } names[] = {
        { "ddim", GEN__SCHED_DDIM }, { "euler", GEN__SCHED_EULER },
        { "euler_a", GEN__SCHED_EULER_A }, { "euler_ancestral", GEN__SCHED_EULER_A },
        { "dpmpp_2m", GEN__SCHED_DPMPP_2M }, { "dpm++_2m", GEN__SCHED_DPMPP_2M },
    };
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].kind;
            return GEN_OK;
        }
    }
    return gen__error(GEN_EINVAL, "unknown scheduler \"%.64s\" (expected ddim, euler, euler_a or "
                      "dpmpp_2m)", name ? name : "(null)");
}

static gen_status get_bool(const json_t *root, const char *key, bool *out, const char *name)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return GEN_OK;
    if (!json_is_boolean(v))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be true or false", name, key);
    *out = json_is_true(v);
    return GEN_OK;
}

static gen_status get_number(const json_t *root, const char *key, double *out, double lo, double hi,
                             const char *name)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return GEN_OK;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be a number in [%g, %g]", name, key, lo, hi);
    *out = json_number_value(v);
    return GEN_OK;
}

static gen_status get_int(const json_t *root, const char *key, int32_t *out, int32_t lo, int32_t hi,
                          const char *name)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return GEN_OK;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be an integer in [%d, %d]", name, key, lo, hi);
    *out = (int32_t)json_integer_value(v);
    return GEN_OK;
}

/* A string key mapped through a table; *out unchanged when absent/null. */
static gen_status get_enum(const json_t *root, const char *key, const char *const *values, int count,
                           int *out, const char *name)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return GEN_OK;
    if (json_is_string(v)) {
        for (int i = 0; i < count; i++) {
            if (strcmp(json_string_value(v), values[i]) == 0) {
                *out = i;
                return GEN_OK;
            }
        }
        return gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" = \"%.64s\" is not supported", name, key,
                          json_string_value(v));
    }
    return gen__error(GEN_EFORMAT, "%s: \"%s\" must be a string", name, key);
}

/* Keys whose non-default values this implementation does not reproduce. */
static gen_status refuse_if(bool cond, const char *key, const char *name)
{
    return cond ? gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" is not supported by libgen's schedulers",
                             name, key)
                : GEN_OK;
}

gen_status gen__scheduler_config_from_json(gen__scheduler_config *cfg, gen__sched_kind kind,
                                           const json_t *root, const char *name)
{
    if (!name)
        name = "scheduler_config.json";
    if (!json_is_object(root))
        return gen__error(GEN_EFORMAT, "%s: expected a JSON object", name);
    static const char *const betas[] = { "linear", "scaled_linear", "squaredcos_cap_v2" };
    static const char *const preds[] = { "epsilon", "v_prediction", "sample" };
    static const char *const spacings[] = { "leading", "trailing", "linspace" };
    static const char *const finals[] = { "zero", "sigma_min" };
    int beta = (int)cfg->beta_schedule, pred = (int)cfg->prediction_type;
    int spacing = (int)cfg->timestep_spacing, final_type = cfg->final_sigma_min ? 1 : 0;
    bool b;
    gen_status st = get_int(root, "num_train_timesteps", &cfg->num_train_timesteps, 2, 100000, name);
    if (st == GEN_OK)
        st = get_number(root, "beta_start", &cfg->beta_start, 0.0, 1.0, name);
    if (st == GEN_OK)
        st = get_number(root, "beta_end", &cfg->beta_end, 0.0, 1.0, name);
    if (st == GEN_OK)
        st = get_enum(root, "beta_schedule", betas, 3, &beta, name);
    if (st == GEN_OK)
        st = get_enum(root, "prediction_type", preds, 3, &pred, name);
    if (st == GEN_OK)
        st = get_enum(root, "timestep_spacing", spacings, 3, &spacing, name);
    if (st == GEN_OK)
        st = get_int(root, "steps_offset", &cfg->steps_offset, 0, 1000, name);
    if (st == GEN_OK)
        st = get_bool(root, "set_alpha_to_one", &cfg->set_alpha_to_one, name);
    if (st == GEN_OK)
        st = get_bool(root, "clip_sample", &cfg->clip_sample, name);
    if (st == GEN_OK)
        st = get_number(root, "clip_sample_range", &cfg->clip_sample_range, 0.0, 1e30, name);
    if (st == GEN_OK && kind != GEN__SCHED_EULER_A && kind != GEN__SCHED_DDIM)
        st = get_bool(root, "use_karras_sigmas", &cfg->use_karras_sigmas, name);
    if (st == GEN_OK)
        st = get_number(root, "sigma_min", &cfg->sigma_min, 0.0, 1e30, name);
    if (st == GEN_OK)
        st = get_number(root, "sigma_max", &cfg->sigma_max, 0.0, 1e30, name);
    if (st == GEN_OK)
        st = get_enum(root, "final_sigmas_type", finals, 2, &final_type, name);
    if (st == GEN_OK)
        st = get_int(root, "solver_order", &cfg->solver_order, 1, 2, name);
    if (st == GEN_OK)
        st = get_bool(root, "lower_order_final", &cfg->lower_order_final, name);
    if (st == GEN_OK)
        st = get_bool(root, "euler_at_final", &cfg->euler_at_final, name);
    if (st == GEN_OK)
        st = get_number(root, "lambda_min_clipped", &cfg->lambda_min_clipped, -1e30, 1e30, name);
    /* Options diffusers has that change the numbers in ways not reproduced here. */
    static const char *const refuse_true[] = { "thresholding", "rescale_betas_zero_snr",
                                               "use_exponential_sigmas", "use_beta_sigmas",
                                               "use_lu_lambdas", "use_flow_sigmas",
                                               "use_dynamic_shifting" };
    for (size_t i = 0; st == GEN_OK && i < sizeof refuse_true / sizeof refuse_true[0]; i++) {
        b = false;
        st = get_bool(root, refuse_true[i], &b, name);
        if (st == GEN_OK)
            st = refuse_if(b, refuse_true[i], name);
    }
    if (st == GEN_OK) {
        json_t *tb = json_object_get(root, "trained_betas");
        st = refuse_if(tb && !json_is_null(tb), "trained_betas", name);
    }
    if (st == GEN_OK && kind == GEN__SCHED_DPMPP_2M) {
        json_t *alg = json_object_get(root, "algorithm_type");
        json_t *solver = json_object_get(root, "solver_type");
        json_t *var = json_object_get(root, "variance_type");
        if (alg && !json_is_null(alg) && !(json_is_string(alg) &&
            (strcmp(json_string_value(alg), "dpmsolver++") == 0 ||
             strcmp(json_string_value(alg), "deis") == 0)))
            st = refuse_if(true, "algorithm_type", name);
        else if (solver && json_is_string(solver) && strcmp(json_string_value(solver), "heun") == 0)
            cfg->solver_heun = true;
        else if (solver && json_is_string(solver) && strcmp(json_string_value(solver), "midpoint") != 0 &&
                 strcmp(json_string_value(solver), "logrho") != 0 &&
                 strcmp(json_string_value(solver), "bh1") != 0 &&
                 strcmp(json_string_value(solver), "bh2") != 0)
            st = refuse_if(true, "solver_type", name);
        else if (var && !json_is_null(var))
            st = refuse_if(true, "variance_type", name);
    }
    if (st == GEN_OK && (kind == GEN__SCHED_EULER)) {
        json_t *interp = json_object_get(root, "interpolation_type");
        json_t *tt = json_object_get(root, "timestep_type");
        if (interp && json_is_string(interp) && strcmp(json_string_value(interp), "linear") != 0)
            st = refuse_if(true, "interpolation_type", name);
        else if (tt && json_is_string(tt) && strcmp(json_string_value(tt), "discrete") != 0)
            st = refuse_if(true, "timestep_type", name);
    }
    if (st != GEN_OK)
        return st;
    if (cfg->beta_end < cfg->beta_start)
        return gen__error(GEN_EFORMAT, "%s: beta_end %g is below beta_start %g", name, cfg->beta_end,
                          cfg->beta_start);
    cfg->beta_schedule = (gen__beta_schedule)beta;
    cfg->prediction_type = (gen__prediction)pred;
    cfg->timestep_spacing = (gen__spacing)spacing;
    cfg->final_sigma_min = final_type == 1;
    return GEN_OK;
}

gen_status gen__scheduler_config_load(gen__scheduler_config *cfg, gen__sched_kind kind,
                                      const char *path)
{
    gen__scheduler_config_defaults(cfg, kind);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        FILE *fp = fopen(path, "rb");
        if (!fp)
            return gen__error(errno == ENOENT ? GEN_ENOTFOUND : GEN_EIO, "%s: cannot open", path);
        fclose(fp);
        return gen__error(GEN_EFORMAT, "%s: line %d column %d: %s", path, jerr.line, jerr.column,
                          jerr.text);
    }
    gen_status st = gen__scheduler_config_from_json(cfg, kind, root, path);
    json_decref(root);
    return st;
}
