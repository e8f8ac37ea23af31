"""diffusers <-> original LDM/CompVis ("single-file checkpoint") key mapping for
Stable Diffusion 1.x UNet, VAE and CLIP text encoder.

Written for libgen from the layout of the two formats (the correspondence is the one
diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py documents); general
in layers_per_block and in the number of blocks.  The C loader (lib/model/) needs the
same table; the functions below state it in code form:

UNet  (LDM prefix "model.diffusion_model.")
  time_embedding.linear_1 -> time_embed.0        time_embedding.linear_2 -> time_embed.2
  conv_in -> input_blocks.0.0                    conv_norm_out -> out.0     conv_out -> out.2
  down_blocks.i.resnets.j    -> input_blocks.{1 + i*(L+1) + j}.0      (L = layers_per_block)
  down_blocks.i.attentions.j -> input_blocks.{1 + i*(L+1) + j}.1
  down_blocks.i.downsamplers.0.conv -> input_blocks.{(i+1)*(L+1)}.0.op
  mid_block.resnets.0 -> middle_block.0  mid_block.attentions.0 -> middle_block.1
  mid_block.resnets.1 -> middle_block.2
  up_blocks.i.resnets.j    -> output_blocks.{i*(L+1) + j}.0     (j = 0..L; L+1 resnets)
  up_blocks.i.attentions.j -> output_blocks.{i*(L+1) + j}.1
  up_blocks.i.upsamplers.0.conv -> output_blocks.{i*(L+1) + L}.{2 if block has attentions else 1}.conv
  inside a resnet: norm1 -> in_layers.0, conv1 -> in_layers.2, time_emb_proj -> emb_layers.1,
                   norm2 -> out_layers.0, conv2 -> out_layers.3, conv_shortcut -> skip_connection
  inside a transformer (attentions.*): names are identical in both formats.
VAE   (LDM prefix "first_stage_model.")
  encoder.down_blocks.i.resnets.j -> encoder.down.i.block.j
  encoder.down_blocks.i.downsamplers.0.conv -> encoder.down.i.downsample.conv
  decoder.up_blocks.i.resnets.j -> decoder.up.{N-1-i}.block.j      (N = number of blocks; REVERSED)
  decoder.up_blocks.i.upsamplers.0.conv -> decoder.up.{N-1-i}.upsample.conv
  {en,de}coder.mid_block.resnets.0/1 -> {en,de}coder.mid.block_1/2
  {en,de}coder.mid_block.attentions.0 -> {en,de}coder.mid.attn_1, inside it:
      group_norm -> norm, to_q -> q, to_k -> k, to_v -> v, to_out.0 -> proj_out,
      and the q/k/v/proj_out WEIGHTS are 1x1 convs in LDM: shape [C, C, 1, 1] (diffusers: [C, C])
  {en,de}coder.conv_norm_out -> {en,de}coder.norm_out; resnet conv_shortcut -> nin_shortcut
  conv_in, conv_out, quant_conv, post_quant_conv, norm1/conv1/norm2/conv2: unchanged
Text  (LDM prefix "cond_stage_model.transformer.") + the transformers CLIPTextModel key,
  unchanged (text_model.embeddings..., text_model.encoder.layers.K..., text_model.final_layer_norm).
  Real SD1 checkpoints also carry "cond_stage_model.transformer.text_model.embeddings.position_ids"
  ([1, 77], int64 or float); a loader must accept and ignore it.
"""
import re

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]
_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _sub_resnet(rest, table):
    for a, b in table:
        if rest.startswith(a + "."):
            return b + rest[len(a):]
    return rest


def unet_key_to_ldm(key, layers_per_block, up_has_attn):
    """diffusers UNet2DConditionModel key -> LDM key (without prefix).
    up_has_attn[i]: whether up_blocks.i has attentions."""
    L = layers_per_block
    fixed = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
             "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2."}
    for a, b in fixed.items():
        if key.startswith(a):
            return b + key[len(a):]
    m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = 1 + i * (L + 1) + j
        if kind == "resnets":
            return f"input_blocks.{idx}.0.{_sub_resnet(rest, _RESNET)}"
        return f"input_blocks.{idx}.1.{rest}"
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key)
    if m:
        return f"input_blocks.{(int(m[1]) + 1) * (L + 1)}.0.op.{m[2]}"
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:
        kind, j, rest = m[1], int(m[2]), m[3]
        if kind == "resnets":
            return f"middle_block.{2 * j}.{_sub_resnet(rest, _RESNET)}"
        return f"middle_block.1.{rest}"
    m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = i * (L + 1) + j
        if kind == "resnets":
            return f"output_blocks.{idx}.0.{_sub_resnet(rest, _RESNET)}"
        return f"output_blocks.{idx}.1.{rest}"
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key)
    if m:
        i = int(m[1])
        return f"output_blocks.{i * (L + 1) + L}.{2 if up_has_attn[i] else 1}.conv.{m[2]}"
    raise KeyError(f"unmapped UNet key {key}")


def vae_key_to_ldm(key, num_blocks):
    """diffusers AutoencoderKL key -> LDM key (without prefix); returns (key, reshape_to_conv1x1)."""
    N = num_blocks
    m = re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key)
    if m:
        rest = m[2]
        for a, b in _VAE_ATTN:
            if rest.startswith(a + "."):
                param = rest[len(a) + 1:]
                return f"{m[1]}.mid.attn_1.{b}.{param}", (a != "group_norm" and param == "weight")
        raise KeyError(f"unmapped VAE attention key {key}")
    m = re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key)
    if m:
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}", False
    m = re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key)
    if m:
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}", False
    m = re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key)
    if m:
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}", False
    m = re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key)
    if m:
        return f"decoder.up.{N - 1 - int(m[1])}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}", False
    m = re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key)
    if m:
        return f"decoder.up.{N - 1 - int(m[1])}.upsample.conv.{m[2]}", False
    m = re.match(r"(encoder|decoder)\.conv_norm_out\.(.*)", key)
    if m:
        return f"{m[1]}.norm_out.{m[2]}", False
    if re.match(r"((encoder|decoder)\.(conv_in|conv_out)|quant_conv|post_quant_conv)\.", key):
        return key, False
    raise KeyError(f"unmapped VAE key {key}")


def diffusers_to_ldm(unet_sd, vae_sd, text_sd, unet_config, vae_config, position_ids=True):
    """Build the single-file state dict (torch tensors) from the three diffusers state dicts."""
    import torch
    out = {}
    L = unet_config["layers_per_block"]
    up_has_attn = ["CrossAttn" in t for t in unet_config["up_block_types"]]
    for k, v in unet_sd.items():
        out[UNET_PREFIX + unet_key_to_ldm(k, L, up_has_attn)] = v
    N = len(vae_config["block_out_channels"])
    for k, v in vae_sd.items():
        nk, conv = vae_key_to_ldm(k, N)
        out[VAE_PREFIX + nk] = v.reshape(*v.shape, 1, 1) if conv else v
    for k, v in text_sd.items():
        out[TEXT_PREFIX + k] = v
    if position_ids:
        n = text_sd["text_model.embeddings.position_embedding.weight"].shape[0]
        out[TEXT_PREFIX + "text_model.embeddings.position_ids"] = torch.arange(n, dtype=torch.int64)[None]
    assert len(out) == len(unet_sd) + len(vae_sd) + len(text_sd) + int(position_ids), "key collision"
    return {k: v.contiguous() for k, v in out.items()}
