"""(being written)"""
from zoo.registry import Registry

LOSSES: Registry = Registry("loss")


def get_loss(name, **params):
    return LOSSES.get(name)(**params)


def list_losses(pattern=None):
    return LOSSES.names(pattern)
