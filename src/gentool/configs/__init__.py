"""The Hydra config tree (package data; importable so Hydra finds it as pkg://gentool.configs)."""
