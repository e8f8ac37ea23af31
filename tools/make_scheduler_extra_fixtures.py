#!/usr/bin/env python3
"""Scheduler reference runs beyond tools/make_scheduler_fixtures.py: DDIM with eta > 0 (noise
from the step generator), sample prediction with clip_sample, linear and squaredcos_cap_v2 beta
schedules, odd step counts with trailing spacing, DPM++ first order / heun / final sigma_min /
lambda_min_clipped, Euler final sigma_min, and add_noise (img2img initial latents) for each
scheduler.

Same loop as make_scheduler_fixtures.py: x = randn((1,4,8,8), seed 0) * init_noise_sigma,
step generator seed 1, eps = 0.1 * scale_model_input(x, t) + 0.05 * sin(float(t)).
Writes tests/fixtures/schedulers/extra.json (values inline: each case is small).
"""
import argparse
import json
import math
import os

import diffusers
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

HERE = os.path.dirname(os.path.abspath(__file__))
SD = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
          steps_offset=1)
CLASSES = {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler, "euler_a": EulerAncestralDiscreteScheduler,
           "dpmpp_2m": DPMSolverMultistepScheduler}

CASES = [
    ("ddim", dict(SD, set_alpha_to_one=False, clip_sample=False), 20, 0.3),
    ("ddim", dict(SD, set_alpha_to_one=True, clip_sample=False, timestep_spacing="trailing"), 7, 1.0),
    ("ddim", dict(SD, prediction_type="sample", clip_sample=True, clip_sample_range=0.5), 10, 0.0),
    ("ddim", dict(beta_schedule="linear", timestep_spacing="linspace"), 9, 0.0),
    ("ddim", dict(beta_schedule="squaredcos_cap_v2", timestep_spacing="leading", set_alpha_to_one=False), 12, 0.0),
    ("euler", dict(SD, timestep_spacing="trailing"), 3, None),
    ("euler", dict(SD, timestep_spacing="linspace", final_sigmas_type="sigma_min"), 7, None),
    ("euler", dict(beta_schedule="linear", use_karras_sigmas=True, prediction_type="v_prediction"), 11, None),
    ("euler", dict(SD, use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0), 8, None),
    ("euler_a", dict(SD, timestep_spacing="trailing"), 13, None),
    ("euler_a", dict(beta_schedule="squaredcos_cap_v2"), 6, None),
    ("dpmpp_2m", dict(SD, solver_order=1), 10, None),
    ("dpmpp_2m", dict(SD, solver_type="heun", timestep_spacing="trailing"), 12, None),
    ("dpmpp_2m", dict(SD, final_sigmas_type="sigma_min", timestep_spacing="linspace"), 16, None),
    ("dpmpp_2m", dict(SD, lambda_min_clipped=-5.1, timestep_spacing="linspace"), 9, None),
    ("dpmpp_2m", dict(SD, euler_at_final=True, lower_order_final=False, use_karras_sigmas=True), 25, None),
    ("dpmpp_2m", dict(SD, prediction_type="sample", timestep_spacing="leading"), 5, None),
]


def flat(t):
    return [float(v) for v in t.reshape(-1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "schedulers", "extra.json"))
    args = ap.parse_args()
    out = []
    for k, (name, cfg, steps, eta) in enumerate(CASES):
        s = CLASSES[name](**cfg)
        s.set_timesteps(steps)
        full_cfg = {kk: (list(v) if isinstance(v, tuple) else v) for kk, v in dict(s.config).items()
                    if not kk.startswith("_")}
        if full_cfg.get("lambda_min_clipped") == -math.inf:
            full_cfg["lambda_min_clipped"] = None
        rec = {"case": f"{name}_{k}", "scheduler": name, "config": full_cfg, "steps": steps, "eta": eta,
               "timesteps": flat(s.timesteps.double()),
               "sigmas": flat(s.sigmas.double()) if getattr(s, "sigmas", None) is not None and name != "ddim" else None,
               "init_noise_sigma": float(s.init_noise_sigma)}
        x = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(0)) * s.init_noise_sigma
        g = torch.Generator("cpu").manual_seed(1)
        for t in s.timesteps:
            xin = s.scale_model_input(x, t)
            eps = 0.1 * xin + 0.05 * math.sin(float(t))
            kw = {"eta": eta} if name == "ddim" else {}
            x = s.step(eps, t, x, generator=g, return_dict=False, **kw)[0]
        rec["final"] = flat(x)
        # add_noise at the img2img start for strength 0.6 (a fresh scheduler, as the pipeline has)
        s2 = CLASSES[name](**cfg)
        s2.set_timesteps(steps)
        init_timestep = min(int(steps * 0.6), steps)
        t_start = max(steps - init_timestep, 0)
        if hasattr(s2, "set_begin_index"):
            s2.set_begin_index(t_start * s2.order)
        ts = s2.timesteps[t_start * s2.order:]
        if len(ts):
            orig = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(2))
            noise = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(3))
            rec["add_noise"] = {"strength": 0.6, "start": t_start, "noisy": flat(s2.add_noise(orig, noise, ts[:1]))}
        out.append(rec)
    with open(args.out, "w") as f:
        json.dump({"info": {"diffusers": diffusers.__version__, "torch": torch.__version__,
                            "procedure": __doc__.strip()}, "cases": out}, f, indent=0)
    print(len(out), "cases")


if __name__ == "__main__":
    main()
