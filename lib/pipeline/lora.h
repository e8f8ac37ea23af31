/* LoRA for one job, applied out of place.
 *
 * The job's LoRA files (.safetensors only; pickle is refused like models are)
 * are read, every key is matched to a weight of the text encoder or the UNet,
 * and for each patched weight W a NEW device tensor
 *     W' = W + sum_i strength_i * (alpha_i / rank_i) * up_i @ down_i
 * is computed on the device with backend ops (conv LoRA: up [out, r, 1, 1],
 * down [r, in, kh, kw] -> delta [out, in, kh, kw]). The results go into a
 * job-local overlay of the cached device copy (weights.h): the cached copy
 * and the canonical host weights it may alias are never written, so other
 * jobs on other devices are unaffected and the next job without LoRA sees
 * the original weights.
 *
 * Key styles (the module path is matched against the part's actual tensor
 * names, never guessed):
 * - kohya / sd-scripts: "lora_unet_<path with '_'>.lora_down.weight",
 *   ".lora_up.weight", ".alpha"; text encoder "lora_te_<path>..." (the path
 *   is the diffusers name with '.' replaced by '_').
 * - diffusers / peft: "unet.<dotted path>.lora_A.weight" / ".lora_B.weight",
 *   or ".lora.down.weight" / ".lora.up.weight", optional ".alpha";
 *   "text_encoder.<dotted path>..."; the older attention-processor form
 *   "unet.<...>.processor.to_q_lora.down.weight" (to_out_lora -> to_out.0),
 *   and the legacy text encoder form "...q_proj.lora_linear_layer.down.weight".
 * alpha absent: the scale is 1 (alpha = rank), as diffusers does.
 *
 * Policy: every key must be used. A key of another kind (LoHa/LoKr, DoRA
 * "dora_scale", LoCon "lora_mid", SDXL "lora_te2_"/"text_encoder_2."), a
 * module that names no weight of this model, a down without its up (or the
 * reverse), or shapes that do not fit the target weight fail the job with
 * GEN_EFORMAT / GEN_EUNSUPPORTED naming the LoRA file and the key: a LoRA
 * half applied would silently give a different picture than the user asked
 * for. */
#ifndef GEN_PIPELINE_LORA_H
#define GEN_PIPELINE_LORA_H

#include <stdint.h>

#include <gen/common.h>

#include "model/model.h"
#include "pipeline/job.h"
#include "pipeline/weights.h"

typedef struct gen__lora_stats {
    int files;                          /* LoRA files read */
    int modules;                        /* up/down pairs applied (strength != 0) */
    int patched[GEN__PART_COUNT];       /* weights replaced per part */
    uint64_t overlay_bytes;             /* device bytes of the replacements */
    double seconds;                     /* reading + computing, wall time */
} gen__lora_stats;

/* Build the job-local overlays of the parts the LoRAs touch. parts[p] is the
 * locked device copy of part p (the VAE is never patched; NULL parts are
 * allowed and a key for such a part is an error). overlays[p] receives an
 * overlay, or NULL when no LoRA changes part p. On failure every overlay is
 * freed and set to NULL. stats may be NULL. */
gen_status gen__lora_build(const gen__job_lora *loras, int count,
                           const gen__device_weights *const parts[GEN__PART_COUNT],
                           gen__device_weights *overlays[GEN__PART_COUNT],
                           gen__lora_stats *stats);

#endif
