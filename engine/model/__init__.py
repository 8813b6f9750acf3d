"""The PyTorch definition of Cromwell VL-JEPA (training and reference for the runtime)."""

from engine.model.budget import COMPONENTS, count_parameters
from engine.model.vljepa import VLJEPA

__all__ = ["COMPONENTS", "VLJEPA", "count_parameters"]
