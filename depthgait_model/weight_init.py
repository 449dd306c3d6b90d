"""Weight initialisation schemes for a freshly built network (``train.weight_init``).

``xavier`` is OpenGait's ``BaseModel.init_parameters``: every convolution (1-, 2- and 3-D) and
linear layer gets xavier-uniform weights and zero bias, every affine BatchNorm a weight drawn from
N(1, 0.02) and zero bias. Our frame-folded layers subclass ``nn.Conv2d`` / ``nn.Conv3d`` with the
original weight shapes, so they are initialised exactly as OpenGait's 5-D layers would be (the
xavier bound depends on the weight's shape only). The separate FCs and BNNeck classifiers are
xavier-uniform at construction in both toolkits. ``torch`` keeps PyTorch's layer defaults.
"""
from __future__ import annotations

from torch import nn

from pipeline.errors import InputError

SCHEMES = ("xavier", "torch")
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def init_weights(model: nn.Module, scheme: str = "xavier") -> nn.Module:
    """Initialise ``model`` in place by ``scheme`` (draws from torch's global RNG); returns it."""
    if scheme not in SCHEMES:
        raise InputError(f"weight_init must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if scheme == "torch":
        return model
    for module in model.modules():
        if isinstance(module, _CONVS):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _NORMS) and module.affine:
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    return model
