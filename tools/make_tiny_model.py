#!/usr/bin/env python3
"""Write a tiny (or, with --full, a full-size) Stable Diffusion model with seeded random
weights, using the real diffusers/transformers classes so the files are exactly what those
libraries write:

  OUT/<name>/                  diffusers folder: model_index.json, unet/, vae/, text_encoder/,
                               tokenizer/ (vocab.json merges.txt special_tokens_map.json
                               tokenizer_config.json), scheduler/scheduler_config.json;
                               weights *.safetensors in f32 plus the ".fp16" variant files
  OUT/<name>.safetensors       (SD1.x only) single-file checkpoint, LDM/CompVis key names
                               (see tools/ldm_keys.py for the mapping)

Weights are drawn from a seeded torch generator and ROUNDED TO FLOAT16-REPRESENTABLE values
(stored as f32), so the f32 files, the fp16 variants and the single file all hold exactly the
same numbers.

  python3 tools/make_tiny_model.py                 # tests/fixtures/tiny-sd15{,/.safetensors}
  python3 tools/make_tiny_model.py --sd2v          # tests/fixtures/tiny-sd2v/
  python3 tools/make_tiny_model.py --full --out /tmp/sd15-full [--dtype f16]
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ldm_keys  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))
CLIP_DIR = "/work/shared/data/clip-vit-l-14-tokenizer"
TINY_MERGES = 500

SD15_SCHED = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                  num_train_timesteps=1000, steps_offset=1, set_alpha_to_one=False,
                  clip_sample=False, skip_prk_steps=True, trained_betas=None)


# ---------------------------------------------------------------- tokenizer files

def read_clip_vocab(clip_dir):
    with open(os.path.join(clip_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(clip_dir, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[0].startswith("#version")
    merges = [ln for ln in lines[1:] if ln]
    return vocab, merges


def tiny_vocab(clip_dir, n_merges=TINY_MERGES):
    """512 byte tokens + the first n_merges merges (ids 512..) + <|startoftext|>, <|endoftext|>,
    numbered exactly as CLIP builds its vocabulary, so every kept token has the same string
    and the ids below 512+n_merges are the real CLIP ids."""
    vocab, merges = read_clip_vocab(clip_dir)
    inv = {i: t for t, i in vocab.items()}
    tiny = {inv[i]: i for i in range(512)}
    for k, m in enumerate(merges[:n_merges]):
        a, b = m.split(" ")
        tok = a + b
        assert vocab[tok] == 512 + k, (tok, vocab[tok], 512 + k)
        assert a in tiny and b in tiny, m
        tiny[tok] = 512 + k
    n = 512 + n_merges
    tiny["<|startoftext|>"] = n
    tiny["<|endoftext|>"] = n + 1
    return tiny, merges[:n_merges]


def write_tokenizer(dst, vocab, merges):
    """The classic 4-file layout of a diffusers SD tokenizer/ folder."""
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(dst, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    special = {"bos_token": {"content": "<|startoftext|>", "lstrip": False, "normalized": True,
                             "rstrip": False, "single_word": False},
               "eos_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True,
                             "rstrip": False, "single_word": False},
               "pad_token": "<|endoftext|>",
               "unk_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True,
                             "rstrip": False, "single_word": False}}
    with open(os.path.join(dst, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    cfg = {"add_prefix_space": False, "bos_token": special["bos_token"], "do_lower_case": True,
           "eos_token": special["eos_token"], "errors": "replace", "model_max_length": 77,
           "pad_token": "<|endoftext|>", "tokenizer_class": "CLIPTokenizer",
           "unk_token": special["unk_token"]}
    with open(os.path.join(dst, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


# ---------------------------------------------------------------- weights

@torch.no_grad()
def init_weights(model, seed, f16_exact=True):
    """Deterministic, deliberately non-trivial init (activations of order 1, norms that are
    not identity, non-zero biases), then rounding to f16-representable values."""
    g = torch.Generator("cpu").manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if p.ndim >= 2:
            fan_in = p[0].numel()
            if "embedding" in name:
                std = 0.5 if "position" in name else 1.0
            else:
                std = 1.0 / math.sqrt(fan_in)
            v = torch.randn(p.shape, generator=g) * std
        elif name.endswith("bias"):
            v = torch.randn(p.shape, generator=g) * 0.05
        else:  # norm scales
            v = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
        if f16_exact:
            v = v.half().float()
        p.copy_(v.to(p.dtype))


# ---------------------------------------------------------------- configs

def configs(kind):
    if kind == "sd15":
        unet = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(24, 40),
                    layers_per_block=2, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                    attention_head_dim=8,  # = 8 heads (diffusers naming): head dims 3 and 5
                    norm_num_groups=8,  # 3 and 5 channels per group
                    flip_sin_to_cos=True, freq_shift=0)
        vae = dict(in_channels=3, out_channels=3, block_out_channels=(16, 16, 24, 24),
                   down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                   latent_channels=4, norm_num_groups=8, sample_size=64, layers_per_block=1,
                   scaling_factor=0.18215)
        text = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37,
                    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32)
        sched = ("PNDMScheduler", dict(SD15_SCHED))
    elif kind == "sd2v":
        unet = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(24, 40),
                    layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                    attention_head_dim=[2, 5],  # heads per block: head dims 12 and 8
                    use_linear_projection=True, upcast_attention=True,
                    norm_num_groups=8, flip_sin_to_cos=True, freq_shift=0)
        vae = dict(in_channels=3, out_channels=3, block_out_channels=(16, 16, 16, 16),
                   down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                   latent_channels=4, norm_num_groups=8, sample_size=64, layers_per_block=1,
                   scaling_factor=0.18215)
        text = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                    max_position_embeddings=77, hidden_act="gelu", projection_dim=32)
        sched = ("DDIMScheduler", dict(SD15_SCHED, prediction_type="v_prediction", clip_sample=False,
                                       skip_prk_steps=None, timestep_spacing="leading"))
        sched[1].pop("skip_prk_steps")
    elif kind == "full":
        unet = dict(sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
                    layers_per_block=2, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=768,
                    attention_head_dim=8, norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0)
        vae = dict(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
                   down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                   latent_channels=4, norm_num_groups=32, sample_size=512, layers_per_block=2,
                   scaling_factor=0.18215)
        text = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
        sched = ("PNDMScheduler", dict(SD15_SCHED))
    else:
        raise ValueError(kind)
    return unet, vae, text, sched


# ---------------------------------------------------------------- build

def build(kind, seed, clip_dir, out_dir, single_file, fp16_variant, save_dtype=torch.float32,
          single_dtype=torch.float16, verify=True):
    from diffusers import (AutoencoderKL, DDIMScheduler, PNDMScheduler, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    unet_cfg, vae_cfg, text_cfg, (sched_name, sched_cfg) = configs(kind)
    tmp = tempfile.mkdtemp(prefix="libgen-tok-")
    if kind == "full":
        vocab, merges = read_clip_vocab(clip_dir)
    else:
        vocab, merges = tiny_vocab(clip_dir)
    write_tokenizer(tmp, vocab, merges)
    tokenizer = CLIPTokenizer.from_pretrained(tmp)
    assert tokenizer.bos_token_id == len(vocab) - 2 and tokenizer.eos_token_id == len(vocab) - 1

    text_config = CLIPTextConfig(vocab_size=len(vocab), bos_token_id=len(vocab) - 2,
                                 eos_token_id=len(vocab) - 1, pad_token_id=1, **text_cfg)
    text_encoder = CLIPTextModel(text_config)
    unet = UNet2DConditionModel(**unet_cfg)
    vae = AutoencoderKL(**vae_cfg)
    for i, m in enumerate((unet, vae, text_encoder)):
        init_weights(m, seed * 10 + i, f16_exact=True)
    sched_cls = {"PNDMScheduler": PNDMScheduler, "DDIMScheduler": DDIMScheduler}[sched_name]
    scheduler = sched_cls.from_config(sched_cfg)  # like real SD repos: extra keys tolerated

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    if save_dtype != torch.float32:
        pipe.to(save_dtype)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    # our hand-written tokenizer files, not what save_pretrained chose to write
    shutil.rmtree(os.path.join(out_dir, "tokenizer"))
    write_tokenizer(os.path.join(out_dir, "tokenizer"), vocab, merges)
    shutil.rmtree(tmp)

    if fp16_variant:
        t16 = tempfile.mkdtemp(prefix="libgen-fp16-")
        pipe.to(torch.float16)
        for sub, m in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder)):
            m.save_pretrained(os.path.join(t16, sub), variant="fp16", safe_serialization=True)
            for fn in os.listdir(os.path.join(t16, sub)):
                if fn.endswith(".fp16.safetensors"):
                    shutil.copy(os.path.join(t16, sub, fn), os.path.join(out_dir, sub, fn))
        shutil.rmtree(t16)
        pipe.to(torch.float32)

    if kind != "sd2v":
        add_text_model_prefix(out_dir)

    n_params = {k: sum(p.numel() for p in m.parameters())
                for k, m in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder))}
    print(f"{kind}: wrote {out_dir}  params {n_params}")

    if single_file:
        tsd = {(k if k.startswith("text_model.") else "text_model." + k): v
               for k, v in text_encoder.state_dict().items()}
        sd = ldm_keys.diffusers_to_ldm(unet.state_dict(), vae.state_dict(), tsd,
                                       dict(unet.config), dict(vae.config))
        sd = {k: (v.to(single_dtype) if v.is_floating_point() else v) for k, v in sd.items()}
        from safetensors.torch import save_file
        save_file(sd, single_file, metadata={"format": "pt"})
        print(f"{kind}: wrote {single_file}  ({len(sd)} tensors)")
        if verify:
            verify_single_file(single_file, out_dir, unet, vae, text_encoder)


def add_text_model_prefix(out_dir):
    """transformers 5 writes CLIPTextModel keys as "embeddings.*"/"encoder.*"; every published SD
    repo (written by transformers 4.x) has "text_model.embeddings.*". Rewrite the sd15/full files
    in that published layout (tiny-sd2v keeps the transformers-5 layout, so both are covered)."""
    from safetensors.torch import load_file, save_file
    d = os.path.join(out_dir, "text_encoder")
    for fn in os.listdir(d):
        if fn.endswith(".safetensors"):
            sd = load_file(os.path.join(d, fn))
            sd = {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in sd.items()}
            save_file(sd, os.path.join(d, fn), metadata={"format": "pt"})


def verify_single_file(path, folder, unet, vae, text_encoder):
    """Load the single file back with diffusers' own converter and compare every tensor."""
    from diffusers import StableDiffusionPipeline
    try:
        p2 = StableDiffusionPipeline.from_single_file(path, config=folder, local_files_only=True,
                                                      safety_checker=None, requires_safety_checker=False)
    except Exception as e:  # pragma: no cover - depends on diffusers version / network
        print(f"single-file check SKIPPED: diffusers could not load it offline: {type(e).__name__}: {e}")
        return False
    bad = []
    for name, a, b in (("unet", unet, p2.unet), ("vae", vae, p2.vae), ("text_encoder", text_encoder, p2.text_encoder)):
        sa, sb = a.state_dict(), b.state_dict()
        if set(sa) != set(sb):
            bad.append((name, "keys", sorted(set(sa) ^ set(sb))[:5]))
            continue
        for k in sa:
            if not torch.equal(sa[k].float(), sb[k].float().to(sa[k].dtype).float()):
                bad.append((name, k))
    if bad:
        raise SystemExit(f"single-file round trip MISMATCH: {bad[:10]}")
    print("single-file check OK: diffusers.from_single_file gives identical tensors")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output directory (default tests/fixtures)")
    ap.add_argument("--sd2v", action="store_true", help="SD2.x-style v-prediction variant")
    ap.add_argument("--full", action="store_true", help="full SD1.5 shapes (~1.07G params)")
    ap.add_argument("--dtype", choices=["f32", "f16"], default=None,
                    help="dtype of the main files (default f32; f16 for --full)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--clip-tokenizer", default=CLIP_DIR)
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--fp16-variant", action="store_true", help="also write *.fp16.safetensors (always on for sd15)")
    args = ap.parse_args()

    kind = "full" if args.full else ("sd2v" if args.sd2v else "sd15")
    dtype = {"f32": torch.float32, "f16": torch.float16}[args.dtype or ("f16" if args.full else "f32")]
    base = args.out or FIXTURES
    os.makedirs(base, exist_ok=True)
    name = {"sd15": "tiny-sd15", "sd2v": "tiny-sd2v", "full": "sd15-full"}[kind]
    single = os.path.join(base, name + ".safetensors") if kind in ("sd15", "full") else None
    # committed fixtures: fp16 variant files only for tiny-sd15 (size); the single file is
    # stored in f16 -- the weights are f16-exact, so it holds the same numbers as the f32 folder.
    build(kind, args.seed, args.clip_tokenizer, os.path.join(base, name), single,
          fp16_variant=(kind == "sd15") or args.fp16_variant, save_dtype=dtype,
          single_dtype=torch.float16 if (kind != "full" or dtype == torch.float16) else torch.float32,
          verify=not args.no_verify)


if __name__ == "__main__":
    main()
