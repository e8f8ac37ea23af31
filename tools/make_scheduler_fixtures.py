#!/usr/bin/env python3
"""Scheduler reference runs.

For DDIM, Euler, Euler-ancestral and DPM-Solver++(2M) x karras sigmas (where supported) x
prediction_type {epsilon, v_prediction} x timestep_spacing {leading, trailing, linspace} x
steps {1, 4, 20, 50}:
  - set_timesteps(steps); record timesteps, sigmas (if any), init_noise_sigma
  - x = randn((1,4,8,8), Generator("cpu").manual_seed(0)) * init_noise_sigma
  - step generator = Generator("cpu").manual_seed(1) (used by Euler-ancestral noise)
  - for t in timesteps: xin = scale_model_input(x, t);  eps = 0.1*xin + 0.05*sin(float(t))
                        x = step(eps, t, x, generator=g).prev_sample
Outputs tests/fixtures/schedulers/<sched>.json (configs, timesteps, sigmas, per-case key) and
<sched>.safetensors (key "<case>": final x, "<case>.step1": x after the first step).
Also img2img.json: StableDiffusionImg2ImgPipeline.get_timesteps for several strengths.
"""
import argparse
import json
import math
import os

import diffusers
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))
BASE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            steps_offset=1)
SCHEDS = {
    "ddim": (DDIMScheduler, dict(set_alpha_to_one=False, clip_sample=False), [False]),
    "euler": (EulerDiscreteScheduler, {}, [False, True]),
    "euler_a": (EulerAncestralDiscreteScheduler, {}, [False]),  # no use_karras_sigmas in this diffusers
    "dpmpp_2m": (DPMSolverMultistepScheduler, dict(solver_order=2, algorithm_type="dpmsolver++"), [False, True]),
}
STEPS = [1, 4, 20, 50]


def tolist(x):
    return [float(v) for v in x.reshape(-1)] if x is not None else None


def run_case(cls, cfg, steps):
    s = cls(**cfg)
    s.set_timesteps(steps)
    rec = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(s.config).items()
                      if not k.startswith("_")},
           "timesteps": [int(t) if float(t).is_integer() else float(t) for t in s.timesteps.tolist()],
           "timesteps_float": tolist(s.timesteps.double()),
           "sigmas": tolist(s.sigmas.double()) if hasattr(s, "sigmas") and s.sigmas is not None else None,
           "init_noise_sigma": float(s.init_noise_sigma), "order": int(getattr(s, "order", 1))}
    x = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(0), dtype=torch.float32)
    x = x * s.init_noise_sigma
    g = torch.Generator("cpu").manual_seed(1)
    first = None
    for t in s.timesteps:
        xin = s.scale_model_input(x, t)
        eps = 0.1 * xin + 0.05 * math.sin(float(t))
        x = s.step(eps, t, x, generator=g, return_dict=False)[0]
        if first is None:
            first = x.clone()
    return rec, x.contiguous(), first.contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(FIX, "schedulers"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, (cls, extra, karras_opts) in SCHEDS.items():
        cases, tensors = [], {}
        for karras in karras_opts:
            for pred in ("epsilon", "v_prediction"):
                for spacing in ("leading", "trailing", "linspace"):
                    for steps in STEPS:
                        cfg = dict(BASE, **extra, prediction_type=pred, timestep_spacing=spacing)
                        if karras:
                            cfg["use_karras_sigmas"] = True
                        case = f"{name}_{'karras_' if karras else ''}{pred}_{spacing}_{steps}"
                        rec, xf, x1 = run_case(cls, cfg, steps)
                        rec.update(case=case, steps=steps, karras=karras, prediction_type=pred, spacing=spacing)
                        tensors[case] = xf
                        tensors[case + ".step1"] = x1
                        cases.append(rec)
        info = {"diffusers": diffusers.__version__, "torch": torch.__version__,
                "procedure": __doc__.split("Outputs")[0].strip(),
                "latent_seed": 0, "step_generator_seed": 1,
                "model_output": "0.1 * scale_model_input(x, t) + 0.05 * sin(float(t))"}
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump({"info": info, "cases": cases}, f, indent=0)
        save_file(tensors, os.path.join(args.out, name + ".safetensors"))
        print(name, len(cases), "cases")

    # img2img partial schedules (StableDiffusionImg2ImgPipeline.get_timesteps)
    out = []
    for name, (cls, extra, _) in SCHEDS.items():
        for spacing in ("leading", "trailing"):
            for steps in (4, 20, 50):
                for strength in (0.3, 0.5, 0.6, 1.0):
                    s = cls(**dict(BASE, **extra, timestep_spacing=spacing))
                    s.set_timesteps(steps)
                    init_timestep = min(int(steps * strength), steps)
                    t_start = max(steps - init_timestep, 0)
                    kept = s.timesteps[t_start * s.order:]
                    out.append({"scheduler": name, "spacing": spacing, "steps": steps, "strength": strength,
                                "t_start": t_start, "order": s.order,
                                "all_timesteps": [float(t) for t in s.timesteps.tolist()],
                                "kept_timesteps": [float(t) for t in kept.tolist()],
                                "latent_timestep": float(kept[0]) if len(kept) else None})
    with open(os.path.join(args.out, "img2img.json"), "w") as f:
        json.dump({"info": {"rule": "init_timestep = min(int(steps*strength), steps); t_start = max(steps - "
                            "init_timestep, 0); timesteps = scheduler.timesteps[t_start*order:]; the init "
                            "latents are noised with add_noise(init, noise, timesteps[0])"},
                   "cases": out}, f, indent=0)
    print("img2img", len(out), "cases")


if __name__ == "__main__":
    main()
