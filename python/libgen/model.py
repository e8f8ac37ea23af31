"""Model inspection (include/gen/model.h): what a model on disk is."""
from ctypes import byref, c_void_p
from dataclasses import dataclass, field
from typing import List

from . import _lib
from .errors import check


@dataclass(frozen=True)
class ModelPart:
    name: str
    dtype: str
    tensors: int
    parameters: int
    bytes: int


@dataclass(frozen=True)
class ModelInfo:
    path: str
    family: str        # "sd1", "sd2", "sdxl", "unknown"
    layout: str        # "diffusers", "single-file"
    prediction: str    # "epsilon", "v_prediction", "sample"
    supported: bool
    parts: List[ModelPart] = field(default_factory=list)

    @property
    def parameters(self):
        return sum(p.parameters for p in self.parts)


def inspect_model(path):
    """Describe the model at `path` (a diffusers folder or a .safetensors file).
    Raises NotFound, FormatError, Unsupported (pickle checkpoints), ..."""
    h = c_void_p()
    check(_lib.gen_model_inspect(byref(h), _lib.cstr(str(path))))
    try:
        L = _lib
        parts = [ModelPart(name=L.text(L.gen_model_info_part_name(h, i)),
                           dtype=L.text(L.gen_model_info_part_dtype(h, i)),
                           tensors=L.gen_model_info_part_tensors(h, i),
                           parameters=L.gen_model_info_part_parameters(h, i),
                           bytes=L.gen_model_info_part_bytes(h, i))
                 for i in range(L.gen_model_info_part_count(h))]
        return ModelInfo(path=L.text(L.gen_model_info_path(h)),
                         family=L.text(L.gen_model_family_name(L.gen_model_info_family(h))),
                         layout=L.text(L.gen_model_layout_name(L.gen_model_info_layout(h))),
                         prediction=L.text(L.gen_model_prediction_name(
                             L.gen_model_info_prediction(h))),
                         supported=bool(L.gen_model_info_supported(h)), parts=parts)
    finally:
        _lib.gen_model_info_destroy(h)
