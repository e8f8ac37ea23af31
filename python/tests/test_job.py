"""Job parameters through the binding."""
import libgen


def test_fields_json_round_trip(tiny_model):
    job = libgen.Job(model=tiny_model, prompt="a red fox", steps=12, guidance=5.5, seed=42,
                     karras=True, scheduler="dpmpp_2m")
    job.validate()
    d = job.to_dict()
    assert d["prompt"] == "a red fox" and d["steps"] == 12 and d["seed"] == 42
    assert d["karras"] is True
    again = libgen.Job(json=d)
    assert again.to_dict() == d
    assert again["scheduler"] == "dpmpp_2m"
    clone = job.clone()
    clone["steps"] = 3
    assert job["steps"] == "12" and clone["steps"] == "3"


def test_validate_picks_a_seed(tiny_model):
    job = libgen.Job(model=tiny_model, prompt="x")
    assert job["seed"] == "random"
    job.validate()
    assert job["seed"] != "random" and int(job["seed"]) >= 0


def test_unicode_prompt(tiny_model):
    job = libgen.Job(model=tiny_model, prompt="un café ☕ 猫")
    assert job["prompt"] == "un café ☕ 猫"
