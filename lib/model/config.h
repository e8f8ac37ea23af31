/* Typed configs of the parts of a Stable Diffusion model, read from diffusers /
 * transformers config.json files (or derived from tensor shapes for a single
 * file, see model.c). Missing keys take the defaults of the Python class that
 * reads the file (diffusers UNet2DConditionModel, AutoencoderKL, transformers
 * CLIPTextConfig, the schedulers). Every parse function validates types and
 * ranges (GEN_EFORMAT) and refuses values libgen cannot run
 * (GEN_EUNSUPPORTED), naming the file and the key. */
#ifndef GEN_MODEL_CONFIG_H
#define GEN_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#define GEN__MAX_BLOCKS 8

/* ---------------------------------------------------------------- UNet */

typedef enum gen__unet_block {
    GEN__BLOCK_PLAIN = 0,      /* DownBlock2D / UpBlock2D: resnets only */
    GEN__BLOCK_CROSS_ATTN = 1  /* CrossAttnDownBlock2D / CrossAttnUpBlock2D */
} gen__unet_block;

typedef struct gen__unet_config {
    int sample_size;
    int in_channels, out_channels;
    int n_blocks;
    int block_out_channels[GEN__MAX_BLOCKS];
    gen__unet_block down_blocks[GEN__MAX_BLOCKS];
    gen__unet_block up_blocks[GEN__MAX_BLOCKS];
    int layers_per_block;
    /* Heads per down block (up blocks use them reversed), resolved the way
     * diffusers does: num_attention_heads if given, else attention_head_dim
     * (which, for SD1/SD2 configs, actually holds the number of heads). */
    int attention_heads[GEN__MAX_BLOCKS];
    int transformer_layers[GEN__MAX_BLOCKS]; /* transformer_layers_per_block */
    bool only_cross_attention[GEN__MAX_BLOCKS];
    int cross_attention_dim;
    bool use_linear_projection;
    bool upcast_attention;
    bool flip_sin_to_cos;
    int freq_shift;
    bool center_input_sample;
    int norm_num_groups;
    double norm_eps;
    int downsample_padding;
    double mid_block_scale_factor;
    bool mid_block_cross_attn; /* mid_block_type UNetMidBlock2DCrossAttn (else none) */
    /* SDXL marker: addition_embed_type "text_time" (recognised, not supported yet). */
    bool addition_text_time;
    int addition_time_embed_dim;
    int projection_class_embeddings_input_dim;
} gen__unet_config;

void gen__unet_config_defaults(gen__unet_config *cfg);
gen_status gen__unet_config_parse(const char *label, const char *text, size_t len,
                                  gen__unet_config *out);
/* Cross-field checks (channels divisible by groups and heads, ...). */
gen_status gen__unet_config_validate(const char *label, const gen__unet_config *cfg);

/* ---------------------------------------------------------------- VAE */

typedef struct gen__vae_config {
    int in_channels, out_channels, latent_channels;
    int n_blocks;
    int block_out_channels[GEN__MAX_BLOCKS];
    int layers_per_block;
    int norm_num_groups;
    int sample_size;
    double scaling_factor;
    bool has_shift_factor;
    double shift_factor;
    bool force_upcast;
    bool use_quant_conv, use_post_quant_conv;
    bool mid_block_add_attention;
} gen__vae_config;

void gen__vae_config_defaults(gen__vae_config *cfg);
gen_status gen__vae_config_parse(const char *label, const char *text, size_t len,
                                 gen__vae_config *out);
gen_status gen__vae_config_validate(const char *label, const gen__vae_config *cfg);

/* ---------------------------------------------------------------- CLIP text encoder */

typedef enum gen__text_act {
    GEN__ACT_QUICK_GELU = 0, /* OpenAI CLIP (SD1) */
    GEN__ACT_GELU = 1        /* OpenCLIP (SD2), exact erf GELU */
} gen__text_act;

typedef struct gen__text_config {
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int projection_dim;
    int num_hidden_layers;
    int num_attention_heads;
    int max_position_embeddings;
    gen__text_act hidden_act;
    double layer_norm_eps;
    int pad_token_id, bos_token_id, eos_token_id;
} gen__text_config;

void gen__text_config_defaults(gen__text_config *cfg);
gen_status gen__text_config_parse(const char *label, const char *text, size_t len,
                                  gen__text_config *out);
gen_status gen__text_config_validate(const char *label, const gen__text_config *cfg);

/* ---------------------------------------------------------------- scheduler */

typedef enum gen__sched_class {
    GEN__SCHED_CLASS_OTHER = 0, /* a class we do not implement (PNDM, LMS, ...): values still read */
    GEN__SCHED_CLASS_DDIM,
    GEN__SCHED_CLASS_EULER,
    GEN__SCHED_CLASS_EULER_ANCESTRAL,
    GEN__SCHED_CLASS_DPM_MULTISTEP,
    GEN__SCHED_CLASS_PNDM
} gen__sched_class;

typedef enum { GEN__PRED_EPSILON = 0, GEN__PRED_V = 1, GEN__PRED_SAMPLE = 2 } gen__prediction;
typedef enum { GEN__BETAS_LINEAR = 0, GEN__BETAS_SCALED_LINEAR, GEN__BETAS_SQUAREDCOS_CAP_V2 } gen__beta_schedule;
typedef enum { GEN__SPACING_LEADING = 0, GEN__SPACING_LINSPACE, GEN__SPACING_TRAILING } gen__spacing;
typedef enum { GEN__INTERP_LINEAR = 0, GEN__INTERP_LOG_LINEAR } gen__interpolation;
typedef enum { GEN__TSTYPE_DISCRETE = 0, GEN__TSTYPE_CONTINUOUS } gen__timestep_type;
typedef enum { GEN__FINAL_SIGMA_ZERO = 0, GEN__FINAL_SIGMA_MIN } gen__final_sigmas;
typedef enum {
    GEN__DPM_ALGO_DPMSOLVER_PP = 0,
    GEN__DPM_ALGO_SDE_DPMSOLVER_PP,
    GEN__DPM_ALGO_DPMSOLVER,
    GEN__DPM_ALGO_SDE_DPMSOLVER
} gen__dpm_algorithm;
typedef enum { GEN__DPM_SOLVER_MIDPOINT = 0, GEN__DPM_SOLVER_HEUN } gen__dpm_solver;
typedef enum { GEN__SHIFT_EXPONENTIAL = 0, GEN__SHIFT_LINEAR } gen__time_shift;
/* DPM-Solver reads learned/learned_range; the fixed_* values come from DDPM
 * configs that some repositories ship and are accepted (as DPM ignores them). */
typedef enum {
    GEN__VARIANCE_NONE = 0,
    GEN__VARIANCE_LEARNED,
    GEN__VARIANCE_LEARNED_RANGE,
    GEN__VARIANCE_FIXED_SMALL,
    GEN__VARIANCE_FIXED_SMALL_LOG,
    GEN__VARIANCE_FIXED_LARGE,
    GEN__VARIANCE_FIXED_LARGE_LOG
} gen__variance_type;

/* One bit per key; `present` says which keys the file set (non-null). */
#define GEN__SK_USE_FLOW_SIGMAS ((uint64_t)1 << 32)
#define GEN__SK_FLOW_SHIFT ((uint64_t)1 << 33)
#define GEN__SK_USE_DYNAMIC_SHIFTING ((uint64_t)1 << 34)
#define GEN__SK_TIME_SHIFT_TYPE ((uint64_t)1 << 35)
enum {
    GEN__SK_NUM_TRAIN_TIMESTEPS = 1u << 0,
    GEN__SK_BETA_START = 1u << 1,
    GEN__SK_BETA_END = 1u << 2,
    GEN__SK_BETA_SCHEDULE = 1u << 3,
    GEN__SK_TRAINED_BETAS = 1u << 4,
    GEN__SK_CLIP_SAMPLE = 1u << 5,
    GEN__SK_SET_ALPHA_TO_ONE = 1u << 6,
    GEN__SK_STEPS_OFFSET = 1u << 7,
    GEN__SK_PREDICTION_TYPE = 1u << 8,
    GEN__SK_THRESHOLDING = 1u << 9,
    GEN__SK_DYN_THRESH_RATIO = 1u << 10,
    GEN__SK_CLIP_SAMPLE_RANGE = 1u << 11,
    GEN__SK_SAMPLE_MAX_VALUE = 1u << 12,
    GEN__SK_TIMESTEP_SPACING = 1u << 13,
    GEN__SK_RESCALE_ZERO_SNR = 1u << 14,
    GEN__SK_INTERPOLATION_TYPE = 1u << 15,
    GEN__SK_USE_KARRAS = 1u << 16,
    GEN__SK_USE_EXPONENTIAL = 1u << 17,
    GEN__SK_USE_BETA = 1u << 18,
    GEN__SK_SIGMA_MIN = 1u << 19,
    GEN__SK_SIGMA_MAX = 1u << 20,
    GEN__SK_TIMESTEP_TYPE = 1u << 21,
    GEN__SK_FINAL_SIGMAS_TYPE = 1u << 22,
    GEN__SK_SOLVER_ORDER = 1u << 23,
    GEN__SK_ALGORITHM_TYPE = 1u << 24,
    GEN__SK_SOLVER_TYPE = 1u << 25,
    GEN__SK_LOWER_ORDER_FINAL = 1u << 26,
    GEN__SK_EULER_AT_FINAL = 1u << 27,
    GEN__SK_USE_LU_LAMBDAS = 1u << 28,
    GEN__SK_LAMBDA_MIN_CLIPPED = 1u << 29,
    GEN__SK_VARIANCE_TYPE = 1u << 30,
    GEN__SK_SKIP_PRK_STEPS = 1u << 31 /* more bits above, as 64-bit macros */
};

#define GEN__MAX_TRAIN_TIMESTEPS 100000

typedef struct gen__scheduler_config {
    char class_name[64];        /* "_class_name" ("" when absent) */
    gen__sched_class class_id;  /* of class_name */
    uint64_t present;           /* GEN__SK_* bits of the keys set in the file */
    int num_train_timesteps;
    double beta_start, beta_end;
    gen__beta_schedule beta_schedule;
    float *trained_betas;       /* NULL or n_trained_betas values (owned) */
    int n_trained_betas;
    bool clip_sample;
    bool set_alpha_to_one;
    int steps_offset;
    gen__prediction prediction_type;
    bool thresholding;
    double dynamic_thresholding_ratio;
    double clip_sample_range;
    double sample_max_value;
    gen__spacing timestep_spacing;
    bool rescale_betas_zero_snr;
    gen__interpolation interpolation_type;
    bool use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas;
    bool has_sigma_min, has_sigma_max;
    double sigma_min, sigma_max;
    gen__timestep_type timestep_type;
    gen__final_sigmas final_sigmas_type;
    int solver_order;
    gen__dpm_algorithm algorithm_type;
    gen__dpm_solver solver_type;
    bool lower_order_final, euler_at_final, use_lu_lambdas;
    double lambda_min_clipped; /* -INFINITY by default */
    gen__variance_type variance_type;
    bool skip_prk_steps;
    bool use_flow_sigmas;      /* DPM-Solver (flow-matching models) */
    double flow_shift;
    bool use_dynamic_shifting;
    gen__time_shift time_shift_type;
} gen__scheduler_config;

/* Defaults of `cls` for every key (diffusers' __init__ defaults). */
void gen__scheduler_config_defaults(gen__scheduler_config *cfg, gen__sched_class cls);
gen_status gen__scheduler_config_parse(const char *label, const char *text, size_t len,
                                       gen__scheduler_config *out);
/* The config as scheduler class `cls` reads it (diffusers' from_config): keys the file
 * set are kept, every other key takes `cls`'s default. `out` owns a copy of
 * trained_betas. */
gen_status gen__scheduler_config_for(const gen__scheduler_config *file, gen__sched_class cls,
                                     gen__scheduler_config *out);
gen_status gen__scheduler_config_copy(gen__scheduler_config *dst, const gen__scheduler_config *src);
void gen__scheduler_config_free(gen__scheduler_config *cfg);
gen__sched_class gen__sched_class_from_name(const char *class_name);

/* ---------------------------------------------------------------- model_index.json */

typedef struct gen__model_index {
    char class_name[64];         /* "StableDiffusionPipeline", ... */
    char unet[64], vae[64], text_encoder[64], text_encoder_2[64], tokenizer[64], scheduler[64];
    /* class names of the components ("" when absent or null) */
} gen__model_index;

gen_status gen__model_index_parse(const char *label, const char *text, size_t len,
                                  gen__model_index *out);

/* Read a whole (small) file into a NUL-terminated buffer freed with gen__free.
 * GEN_ENOTFOUND when absent, GEN_EFORMAT when over max_size. */
gen_status gen__read_small_file(const char *path, size_t max_size, char **out, size_t *len);

#endif
