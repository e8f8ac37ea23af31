#!/usr/bin/env python3
"""Reference for the tiled VAE (lib/pipeline/vae_tiled.c): diffusers' AutoencoderKL with
enable_tiling() on the tiny SD1.5 VAE (CPU, float32), at its default tile (config sample_size
64 px = 8 latents, overlap 0.25) on a 152x128 image (19x16 latents): 4x3 tiles whose last row is
narrower than the blend extent, so min(a, b, blend_extent) matters.

  tests/fixtures/vae_tiled/tiled.safetensors
     latents         [1,4,19,16]   torch.randn(generator=manual_seed(7)), diffusion space
     decoded_tiled   [1,3,152,128] vae.decode(latents / scaling_factor) with tiling
     image           [1,3,152,128] a smooth pattern in [-1, 1]
     mean_tiled, std_tiled [1,4,19,16]  vae.encode(image).latent_dist with tiling

With --sd-vae DIR (benchmarks only, never committed): DIR becomes a copy of the tiny model whose
vae/ is a seeded random AutoencoderKL of SD1.5's shapes (83.7 M parameters, ~335 MB f32), for
`bench_vae_tiled --model DIR`.
"""
import argparse
import os
import shutil

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))


def make_sd_vae(out_dir):
    shutil.copytree(os.path.join(FIX, "tiny-sd15"), out_dir, ignore=shutil.ignore_patterns("vae"))
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
                        layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=512,
                        scaling_factor=0.18215)
    vae.save_pretrained(os.path.join(out_dir, "vae"), safe_serialization=True)
    print("wrote", out_dir)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sd-vae", metavar="DIR", help="write an SD1.5-shaped random VAE model folder instead")
    args = ap.parse_args()
    if args.sd_vae:
        make_sd_vae(args.sd_vae)
        return
    torch.set_grad_enabled(False)
    vae = AutoencoderKL.from_pretrained(os.path.join(FIX, "tiny-sd15", "vae"), torch_dtype=torch.float32)
    vae.enable_tiling()
    assert vae.tile_sample_min_size == 64 and vae.tile_latent_min_size == 8
    h, w = 152, 128
    g = torch.Generator("cpu").manual_seed(7)
    latents = torch.randn((1, 4, h // 8, w // 8), generator=g, dtype=torch.float32)
    decoded = vae.decode(latents / vae.config.scaling_factor).sample
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    image = np.stack([0.8 * np.sin(0.07 * xx + 0.05 * yy + c) + 0.1 * np.cos(0.21 * yy * (c + 1))
                      for c in range(3)])[None].astype(np.float32)
    image = torch.from_numpy(np.clip(image, -1.0, 1.0))
    dist = vae.encode(image).latent_dist
    out = os.path.join(FIX, "vae_tiled")
    os.makedirs(out, exist_ok=True)
    save_file({"latents": latents.contiguous(), "decoded_tiled": decoded.contiguous(),
               "image": image.contiguous(), "mean_tiled": dist.mean.contiguous(),
               "std_tiled": dist.std.contiguous()}, os.path.join(out, "tiled.safetensors"))
    print("wrote", os.path.join(out, "tiled.safetensors"))


if __name__ == "__main__":
    main()
