"""Training objectives, one file each. See `base.Method` for the protocol the engine relies on."""

from gentool.config import instantiate


def build_method(cfg):
    """The method a (resolved) run config describes: `model` with its `loss` object.

    Model configs read the data shape and range from `${dataset.*}`, so a checkpoint's stored,
    resolved config rebuilds the same networks without loading any data.
    """
    return instantiate(cfg.model, loss=instantiate(cfg.loss))
