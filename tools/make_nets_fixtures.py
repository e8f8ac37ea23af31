#!/usr/bin/env python3
"""Reference outputs of the networks alone on non-square inputs (the pipeline fixtures are all
square, which would hide a swapped H/W): for tiny-sd15 and tiny-sd2v, CPU float32,

  tests/fixtures/nets/nonsquare.safetensors
     <model>.unet_x [2,4,8,12], <model>.unet_ctx [2,77,32], <model>.unet_t [1] (the timestep),
     <model>.unet_out   UNet2DConditionModel(x, t, encoder_hidden_states=ctx).sample
     <model>.vae_z [1,4,8,12]      <model>.vae_decoded  vae.decode(z / scaling_factor).sample
     <model>.vae_image [1,3,64,96] <model>.vae_mean, <model>.vae_std  vae.encode(image).latent_dist
     <model>.odd_x [2,4,9,7], <model>.odd_out  the UNet on a latent size that is not a multiple of
                   2^(blocks-1): diffusers then upsamples to each skip's size (forward_upsample_size)

Inputs are seeded torch.randn (image: uniform in [-1, 1]). Usage: python3 tools/make_nets_fixtures.py
"""
import os

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))


def main():
    torch.set_num_threads(2)
    g = torch.Generator("cpu").manual_seed(3)
    out = {}
    for name, t in (("tiny-sd15", 321.0), ("tiny-sd2v", 999.0)):
        unet = UNet2DConditionModel.from_pretrained(os.path.join(FIX, name), subfolder="unet").eval()
        vae = AutoencoderKL.from_pretrained(os.path.join(FIX, name), subfolder="vae").eval()
        x = torch.randn(2, 4, 8, 12, generator=g)
        ctx = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
        z = torch.randn(1, 4, 8, 12, generator=g)
        img = torch.rand(1, 3, 64, 96, generator=g) * 2 - 1
        with torch.no_grad():
            out[name + ".unet_x"] = x
            out[name + ".unet_ctx"] = ctx
            out[name + ".unet_t"] = torch.tensor([t])
            out[name + ".unet_out"] = unet(x, t, encoder_hidden_states=ctx).sample
            out[name + ".vae_z"] = z
            out[name + ".vae_decoded"] = vae.decode(z / vae.config.scaling_factor).sample
            dist = vae.encode(img).latent_dist
            out[name + ".vae_image"] = img
            out[name + ".vae_mean"] = dist.mean
            out[name + ".vae_std"] = dist.std
            xo = torch.randn(2, 4, 9, 7, generator=g)
            out[name + ".odd_x"] = xo
            out[name + ".odd_out"] = unet(xo, t, encoder_hidden_states=ctx).sample
    os.makedirs(os.path.join(FIX, "nets"), exist_ok=True)
    path = os.path.join(FIX, "nets", "nonsquare.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path)
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
