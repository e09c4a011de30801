"""Metrics of generated samples, computed on top of (not inside) the methods' training losses."""
