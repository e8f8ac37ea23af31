#!/usr/bin/env python3
"""End-to-end reference runs of diffusers StableDiffusionPipeline / Img2ImgPipeline on the tiny
models (CPU, float32, safety_checker None).  One file per case:

  tests/fixtures/pipeline/<case>.safetensors
     ids_cond, ids_uncond        int64 [1,77] token ids (uncond only when CFG is on)
     embeds_cond, embeds_uncond  text encoder output as the pipeline uses it (clip_skip applied)
     noise                       randn_tensor(latent shape, generator) -- txt2img: the first draw
     latents_init                txt2img: noise * init_noise_sigma; img2img: add_noise(vae latents, noise, t0)
     unet_in_0, unet_out_0       UNet input (CFG batch: [uncond, cond]) and output at step 0
     latents_final               latents after the last scheduler step
     decoded                     vae.decode(latents_final / scaling_factor).sample  (NCHW, ~[-1,1])
     image_float                 (decoded/2+0.5).clamp(0,1), NHWC float  (output_type="np")
     image_u8                    round(image_float*255) as uint8, NHWC
     img2img only: init_image (NCHW in [-1,1] after preprocessing), init_latents (vae latents * scaling)
  tests/fixtures/pipeline/cases.json  every setting of every case
  tests/fixtures/pipeline/init_64.png the img2img init image (deterministic pattern)
"""
import argparse
import json
import math
import os

import diffusers
import numpy as np
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline)
from PIL import Image
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))
PROMPT = "a photo of an astronaut riding a horse on mars"

CASES = [
    dict(name="sd15_ddim_cfg7.5", model="tiny-sd15", sched="ddim", guidance=7.5, steps=4, seed=42),
    dict(name="sd15_euler_a_cfg1", model="tiny-sd15", sched="euler_a", guidance=1.0, steps=4, seed=42),
    dict(name="sd15_dpmpp2m_karras", model="tiny-sd15", sched="dpmpp_2m_karras", guidance=7.5, steps=4, seed=7),
    dict(name="sd15_euler_negative", model="tiny-sd15", sched="euler", guidance=5.0, steps=4, seed=42,
         negative="blurry, low quality, watermark"),
    dict(name="sd15_img2img_ddim_s0.6", model="tiny-sd15", sched="ddim", guidance=7.5, steps=5, seed=42,
         strength=0.6),
    dict(name="sd2v_ddim_trailing", model="tiny-sd2v", sched="ddim_trailing", guidance=7.5, steps=4, seed=42),
    dict(name="sd15_ddim_clip_skip1", model="tiny-sd15", sched="ddim", guidance=7.5, steps=4, seed=42, clip_skip=1),
]


def make_scheduler(kind, cfg):
    if kind == "ddim":
        return DDIMScheduler.from_config(cfg)
    if kind == "ddim_trailing":
        return DDIMScheduler.from_config(cfg, timestep_spacing="trailing")
    if kind == "euler":
        return EulerDiscreteScheduler.from_config(cfg)
    if kind == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(cfg)
    if kind == "dpmpp_2m_karras":
        return DPMSolverMultistepScheduler.from_config(cfg, use_karras_sigmas=True, solver_order=2,
                                                       algorithm_type="dpmsolver++")
    raise ValueError(kind)


def init_image(path):
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    r = (x * 4) % 256
    g = (y * 4) % 256
    b = 128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    img = np.stack([r, g, b], -1).clip(0, 255).round().astype(np.uint8)
    Image.fromarray(img).save(path)
    return Image.open(path).convert("RGB")


def run(case, out_dir):
    model_dir = os.path.join(FIX, case["model"])
    i2i = "strength" in case
    cls = StableDiffusionImg2ImgPipeline if i2i else StableDiffusionPipeline
    pipe = cls.from_pretrained(model_dir, torch_dtype=torch.float32, safety_checker=None,
                               requires_safety_checker=False)
    pipe.scheduler = make_scheduler(case["sched"], pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    T = {}
    cfg_on = case["guidance"] > 1.0
    neg = case.get("negative")
    tok = pipe.tokenizer
    ids = lambda p: tok(p, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    T["ids_cond"] = ids(PROMPT)
    if cfg_on:
        T["ids_uncond"] = ids(neg or "")
    skip = case.get("clip_skip")
    if skip:
        # diffusers semantics: hidden_states[-(clip_skip + 1)] then the final layer norm.  Done here by
        # hand because diffusers 0.42.1 encode_prompt reaches for text_encoder.text_model, which
        # transformers 5 no longer has; the embeddings are then passed as prompt_embeds.
        te = pipe.text_encoder
        fln = getattr(te, "text_model", te).final_layer_norm
        with torch.no_grad():
            hs = lambda i: te(i, output_hidden_states=True).hidden_states[-(skip + 1)]
            pe = fln(hs(T["ids_cond"]))
            ne = fln(hs(T["ids_uncond"])) if cfg_on else None
    else:
        pe, ne = pipe.encode_prompt(PROMPT, "cpu", 1, cfg_on, neg)
    T["embeds_cond"] = pe
    if cfg_on:
        T["embeds_uncond"] = ne

    calls = []
    h1 = pipe.unet.register_forward_hook(lambda m, a, kw, o: calls.append((a[0].clone(), o[0].clone())),
                                         with_kwargs=True)
    dec = []
    h2 = pipe.vae.decoder.register_forward_hook(lambda m, a, o: dec.append(o.clone()))
    enc = []
    h3 = pipe.vae.encoder.register_forward_hook(lambda m, a, o: enc.append(a[0].clone()))
    last = {}

    def cb(p, i, t, kw):
        last["latents"] = kw["latents"].clone()
        return kw

    kwargs = dict(prompt=PROMPT, negative_prompt=neg, num_inference_steps=case["steps"],
                  guidance_scale=case["guidance"], generator=torch.Generator("cpu").manual_seed(case["seed"]),
                  output_type="np", callback_on_step_end=cb)
    if skip:
        kwargs.update(prompt=None, negative_prompt=None, prompt_embeds=pe, negative_prompt_embeds=ne)
    if i2i:
        img = init_image(os.path.join(out_dir, "init_64.png"))
        kwargs.update(image=img, strength=case["strength"])
    else:
        kwargs.update(height=64, width=64)
    with torch.no_grad():
        out = pipe(**kwargs).images
    for h in (h1, h2, h3):
        h.remove()

    shape = (1, 4, 8, 8)
    g = torch.Generator("cpu").manual_seed(case["seed"])
    sched = pipe.scheduler
    if i2i:
        # replay: vae.encode(image).latent_dist.sample(generator) consumes the generator first
        T["init_image"] = enc[0]
        with torch.no_grad():
            lat = pipe.vae.encode(enc[0]).latent_dist.sample(generator=g) * pipe.vae.config.scaling_factor
        T["init_latents"] = lat
        T["noise"] = torch.randn(shape, generator=g)
        steps_run = len(calls)
        t0 = sched.timesteps[-steps_run] if steps_run else None
        T["latents_init"] = sched.add_noise(lat, T["noise"], t0.reshape(1))
    else:
        T["noise"] = torch.randn(shape, generator=g)
        sched.set_timesteps(case["steps"])
        T["latents_init"] = T["noise"] * sched.init_noise_sigma
    T["unet_in_0"], T["unet_out_0"] = calls[0]
    T["latents_final"] = last["latents"]
    T["decoded"] = dec[-1]
    T["image_float"] = torch.from_numpy(out.astype(np.float32))
    T["image_u8"] = torch.from_numpy((out * 255).round().astype(np.uint8))
    # sanity: the pipeline's own decode of latents_final
    with torch.no_grad():
        d = pipe.vae.decode(T["latents_final"] / pipe.vae.config.scaling_factor).sample
    assert torch.allclose(d, T["decoded"], atol=1e-5)
    save_file({k: v.contiguous() for k, v in T.items()}, os.path.join(out_dir, case["name"] + ".safetensors"))
    rec = dict(case, prompt=PROMPT, height=64, width=64, unet_calls=len(calls),
               timesteps=[float(t) for t in sched.timesteps.tolist()], scheduler_class=type(sched).__name__,
               scheduler_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(sched.config).items()
                                 if not k.startswith("_")})
    print(case["name"], "unet calls", len(calls), "image mean", float(out.mean()))
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(FIX, "pipeline"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    recs = [run(c, args.out) for c in CASES]

    def finite(v):
        # Strict JSON has no Infinity (DPM's lambda_min_clipped): write null.
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [finite(x) for x in v]
        return v

    recs = finite(recs)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"info": {"diffusers": diffusers.__version__, "torch": torch.__version__,
                            "device": "cpu", "dtype": "float32"}, "cases": recs}, f, indent=1)


if __name__ == "__main__":
    main()
