"""gentool: train and use autoencoders, VAEs and GANs from the command line."""

__version__ = "0.1.0"
