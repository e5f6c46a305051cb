"""Model families. Importing this package registers every model.

Each family lives in its own module and registers its builders with
``@register_model``; add a family by adding a module and its import below.
"""

from zoo.models import ladder, recurrent, segnet, testnet, unet  # noqa: F401  (registration)
from zoo.models.registry import (
    MODELS,
    ModelInfo,
    describe_model,
    get_model,
    list_models,
    register_model,
    reset_states,
)

__all__ = [
    "MODELS",
    "ModelInfo",
    "describe_model",
    "get_model",
    "list_models",
    "register_model",
    "reset_states",
]
