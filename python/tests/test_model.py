"""Model inspection through the binding."""
import pytest

import libgen


def test_inspect_tiny_model(tiny_model):
    info = libgen.inspect_model(tiny_model)
    assert info.family == "sd1" and info.layout == "diffusers" and info.supported
    assert {p.name for p in info.parts} == {"unet", "vae", "text_encoder"}
    assert info.parameters == sum(p.parameters for p in info.parts) > 0


def test_missing_model(tmp_path):
    with pytest.raises(libgen.NotFound) as e:
        libgen.inspect_model(tmp_path / "nothing-here")
    assert "nothing-here" in e.value.message


def test_pickle_refused(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(libgen.Unsupported) as e:
        libgen.inspect_model(ckpt)
    assert "safetensors" in e.value.message
