"""Synchronous generation through the binding (tiny model, CPU)."""
import pytest

import libgen
from libgen import Stage



def test_generate_tiny(tiny_model, tmp_path):
    steps = []
    with libgen.Context(generation_devices="cpu:0", log_level="error") as ctx:
        img = ctx.generate({"model": tiny_model, "prompt": "a cat", "steps": 3, "width": 64,
                            "height": 80, "seed": 11},
                           progress=lambda stage, step, total: steps.append((stage, step,
                                                                            total)))
        assert (img.width, img.height) == (64, 80)
        assert len(img.pixels) == 64 * 80 * 3
        assert img.metadata["seed"] == 11 and img.metadata["prompt"] == "a cat"
        assert [s for s in steps if s[0] == Stage.DENOISE] == [(Stage.DENOISE, i, 3)
                                                              for i in (1, 2, 3)]
        img.save_png(tmp_path / "cat.png")
        assert libgen.read_image_metadata(tmp_path / "cat.png")["seed"] == 11
        again = ctx.generate(libgen.Job(model=tiny_model, prompt="a cat", steps=3, width=64,
                                        height=80, seed=11))
        assert again.pixels == img.pixels  # same seed, same image


def test_progress_can_cancel(tiny_model):
    with libgen.Context(generation_devices="cpu:0", log_level="error") as ctx:
        with pytest.raises(libgen.Canceled):
            ctx.generate({"model": tiny_model, "prompt": "x", "steps": 5, "width": 64,
                          "height": 64}, progress=lambda stage, step, total: step >= 2)


def test_generate_errors(tmp_path):
    with libgen.Context(generation_devices="cpu:0", log_level="error") as ctx:
        with pytest.raises(libgen.LibgenError) as e:
            ctx.generate({"model": str(tmp_path / "missing"), "prompt": "x"})
        assert "missing" in e.value.message
