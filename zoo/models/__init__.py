"""Model families. Importing this package registers every model.

Each family lives in its own module and registers its builders with
``@register_model``; add a family by adding a module and its name to
``FAMILIES``, whose order is the order ``list_models()`` gives.
"""

import importlib

from zoo.models.registry import (
    MODELS,
    ModelInfo,
    describe_model,
    get_model,
    list_models,
    register_model,
    reset_states,
)

FAMILIES = ("testnet", "unet", "segnet", "recurrent", "ladder")
for _family in FAMILIES:
    importlib.import_module(f"zoo.models.{_family}")

__all__ = [
    "FAMILIES",
    "MODELS",
    "ModelInfo",
    "describe_model",
    "get_model",
    "list_models",
    "register_model",
    "reset_states",
]
