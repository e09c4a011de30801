"""Checkpoint files: plain types and tensors only, written atomically, read weights-only.

Layout of the dict (FORMAT_VERSION 1): format_version, gentool_version, step, config (the resolved
run config as plain containers), modules {name: state_dict}, optimizers {name: state_dict},
grad_scaler (state_dict or None), rng {torch, cuda, python, numpy}, monitor {key, mode, best,
best_step, since_best} (engine.monitor; None values when nothing is monitored). best.pt has the
same fields as last.pt.

A checkpoint may come from anyone: it is read weights-only (tensors and plain types, no other
Python object), and its stored configs are checked whole (gentool.config.check_stored_config)
before the caller builds anything from them.
"""

from __future__ import annotations

import pickle
import random
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gentool import __version__
from gentool.config import check_stored_config
from gentool.engine.files import atomic_write
from gentool.engine.run_layout import (CHECKPOINT_SUFFIXES, CHECKPOINTS_FOLDER,  # noqa: F401
                                        checkpoints_folder_holding, is_run_checkpoints)
from gentool.errors import GentoolError

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "step", "config", "modules")


def capture_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))


def resume_advice(run_dir: Path) -> str:
    """How a run goes on in its own directory (the same command alone would start a new one)."""
    return f"resume by running the same command with hydra.run.dir={Path(run_dir).resolve()}"


def run_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint that a train run directory stands for: its checkpoints/last.pt."""
    return Path(run_dir) / CHECKPOINTS_FOLDER / "last.pt"


def checkpoint_of(given: str | Path, option: str | None = None, optional: bool = False) -> Path:
    """The checkpoint file that `given` names: the file itself, or a train run directory's
    checkpoints/last.pt; `~` is the home folder. Every command that reads a checkpoint
    (sample, eval, finetune, compare, train resume=) resolves its path here. A path that names
    neither is refused, the message led by `option=given` when the path came from that option
    (so the user sees which setting to fix), and offering to drop an `optional` one."""
    path = Path(given).expanduser()
    if is_run_checkpoints(path):
        path = path / "last.pt"   # the run's checkpoints folder stands for its last.pt too
    elif path.is_dir():
        path = run_checkpoint(path)
    if path.is_file():
        return path
    if option:
        drop = f", or drop {option}=" if optional else ""
        raise GentoolError(f"{option}={given}: there is no checkpoint at {path}; pass a "
                           f"checkpoint file or the directory of a train run{drop}.")
    raise GentoolError(f"no checkpoint at {path}; pass a checkpoint file or the directory of a "
                       "train run.")


def save_checkpoint(path: Path, payload: dict[str, Any], then: str | None = None) -> None:
    """Write atomically; a full or read-only disk leaves the previous file at `path` intact and
    ends in one sentence saying so (WriteFailed), `then` saying how to go on (by default: how to
    resume the run of `<run>/checkpoints/<file>`)."""
    then = then or resume_advice(path.parent.parent)
    payload = {"format_version": FORMAT_VERSION, "gentool_version": __version__, **payload}
    kept = "the previous checkpoint there is intact" if path.exists() else \
        "no checkpoint was written there"
    atomic_write(path, lambda f: torch.save(payload, f), kept=kept, then=then)


def _corrupt(path: Path) -> GentoolError:
    return GentoolError(f"{path} is truncated or corrupt and cannot be read; use another "
                        "checkpoint of the run (checkpoints/step_<N>.pt) or train again.")


# The first bytes of the two formats torch.save writes: a zip archive (torch >= 1.6, what gentool
# writes), and the legacy format, a pickle stream (b"\x80" then the protocol number) whose first
# object is torch's magic number. torch.load reads both; which pickles it accepts weights-only
# (protocols 2 and 3, not the framed 4 and 5) is torch's to decide, so any pickle goes to it.
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_START = b"\x80"
# torch's magic number as the pickle opcode that opens a legacy-format file (LONG1, 10 bytes).
LEGACY_MAGIC_OP = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
# Enough of a file's start to tell a PyTorch file, a picture and text apart.
_SNIFFED_BYTES = 64


def _check_torch_file(path: Path) -> bytes:
    """Refuse a file that is no PyTorch file at all (a picture, metrics.json, a README) as not a
    checkpoint, and one that starts like a PyTorch file but is cut short as corrupt; return the
    file's first bytes. torch.load reads any bytes that are not a zip archive as a pickle stream,
    and what it raises then depends on the first byte (`KeyError: 101` for a file starting with
    "h")."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFFED_BYTES)
    except OSError as error:
        raise GentoolError(f"cannot read {path} ({error.strerror}); check that it is readable "
                           "or pass another checkpoint.") from error
    if not head:
        raise GentoolError(f"{path} is empty (0 bytes), not a checkpoint; use another checkpoint "
                           "of the run (checkpoints/step_<N>.pt) or train again.")
    if head.startswith(ZIP_MAGIC) or ZIP_MAGIC.startswith(head):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except Exception as error:   # a zip archive cut short has no central directory
            raise _corrupt(path) from error
        if not any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            raise _not_a_torch_file(path, "it is a zip archive that holds no PyTorch data")
        return head
    if head.startswith(PICKLE_START):
        return head
    raise _not_a_torch_file(path, _kind_of(head))


def _is_legacy_torch_file(head: bytes) -> bool:
    """Whether a pickle stream opens with torch's magic number: right after the protocol header,
    or after the 9-byte frame header that protocols 4 and 5 put first."""
    return LEGACY_MAGIC_OP in (head[2:2 + len(LEGACY_MAGIC_OP)], head[11:11 + len(LEGACY_MAGIC_OP)])


_PLAIN_PICKLE = "it is a Python pickle, not a PyTorch file"


def _not_a_torch_file(path: Path, kind: str) -> GentoolError:
    return GentoolError(f"{path} is not a gentool checkpoint ({kind}); pass a checkpoint "
                        "written by gentool train, such as <run dir>/checkpoints/last.pt.")


class FinetuneCheckpoint(GentoolError):
    """A finetune run's checkpoint where a trained model is read."""


def _finetune_checkpoint(path: Path, payload: dict[str, Any]) -> FinetuneCheckpoint:
    """A finetune run's checkpoint: a classifier, with the config of the model it was fine-tuned
    from as `pretrained_config`, the resolved path of that model's checkpoint as
    `pretrained_checkpoint` (absent from older ones), and the finetune config as `config`."""
    source = payload.get("pretrained_checkpoint")
    if not (isinstance(source, str) and source):
        config = payload["config"]
        source = config.get("checkpoint") if isinstance(config, dict) else None
    instead = f"the one it was fine-tuned from ({source})" if isinstance(source, str) and source \
        else "<run dir>/checkpoints/last.pt"
    return FinetuneCheckpoint(f"{path} is the checkpoint of a gentool finetune run (a fine-tuned "
                              "classifier), not of a trained model; pass a checkpoint written by "
                              f"gentool train instead, such as {instead}.")


def _kind_of(head: bytes) -> str:
    """What a file that is no PyTorch file is, in words, from its first bytes."""
    known = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
             (b"GIF8", "a GIF image"), (b"\x93NUMPY", "a NumPy array file"))
    for magic, kind in known:
        if head.startswith(magic):
            return f"it is {kind}, not a PyTorch file"
    return "it is a text file, not a PyTorch file" if _is_text(head) else \
        "its first bytes match no PyTorch file format"


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:   # not a character cut by the end of `head`
            return False
        text = head[:error.start].decode("utf-8")
    return all(char.isprintable() or char in "\t\r\n" for char in text)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _wrongly_typed_field(payload: dict[str, Any]) -> str | None:
    """What in a checkpoint's fields does not have the type gentool writes, in words, or None."""
    config, modules = payload["config"], payload["modules"]
    checks = (
        (_is_int(payload["format_version"]), "format_version is not an integer"),
        (_is_int(payload["step"]) and payload["step"] >= 0,
         "step is not a non-negative integer"),
        (isinstance(config, dict), "config is not a mapping"),
        (isinstance(config, dict) and isinstance(config.get("model"), dict)
         and isinstance(config.get("dataset"), dict), "config has no model and dataset sections"),
        (isinstance(modules, dict) and all(isinstance(v, dict) for v in modules.values()),
         "modules are not a mapping of weights"),
        (isinstance(payload.get("optimizers", {}), dict), "optimizers are not a mapping"),
    )
    return next((problem for ok, problem in checks if not ok), None)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a gentool checkpoint, refusing anything that needs pickle or is not ours."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GentoolError(f"no checkpoint at {path}; pass checkpoint=<run dir>/checkpoints/last.pt "
                           "of a train run.")
    head = _check_torch_file(path)
    try:
        with warnings.catch_warnings():
            # torch warns about every legacy file pickled with protocol > 2 that it then reads.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        # torch names the Python class it refused ("Unsupported global: GLOBAL mod.Class").
        if "global" in message.lower():
            raise GentoolError(f"{path} needs pickle to load (it holds Python objects, not only "
                               "tensors), and gentool refuses such files for safety; use a "
                               "checkpoint written by gentool train.") from error
        # The weights-only reader knows no opcode of the framed protocols 4 and 5.
        if "Unsupported operand" in message and head.startswith(PICKLE_START):
            if not _is_legacy_torch_file(head):
                raise _not_a_torch_file(path, _PLAIN_PICKLE) from error
            raise GentoolError(
                f"{path} is a legacy-format PyTorch file pickled with protocol {head[1]}, which "
                "torch cannot read weights-only (the only way gentool reads checkpoints, for "
                "safety); save it again with torch.save's default format, or use a checkpoint "
                "written by gentool train.") from error
        raise _corrupt(path) from error
    except RuntimeError as error:
        # A pickle that does not open with torch's magic number is no legacy-format file.
        if "Invalid magic number" in str(error):
            raise _not_a_torch_file(path, _PLAIN_PICKLE) from error
        raise _corrupt(path) from error
    # What torch's parsers raise on bytes cut short or garbled.
    except (EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError, struct.error,
            zipfile.BadZipFile) as error:
        raise _corrupt(path) from error
    except Exception as error:   # no sign of damage (MemoryError, an I/O error): say what it was
        detail = str(error).strip().splitlines()
        kind = type(error).__name__ + (f": {detail[0]}" if detail else "")
        raise GentoolError(f"{path} cannot be read ({kind}); fix that or pass another "
                           "checkpoint.") from error
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
        raise GentoolError(f"{path} is not a gentool checkpoint (it lacks the step, config and "
                           "weights gentool writes); pass a checkpoint written by gentool train.")
    wrong = _wrongly_typed_field(payload)
    if wrong and "pretrained_config" in payload:
        raise _finetune_checkpoint(path, payload)
    if wrong:
        raise GentoolError(f"{path} is not a gentool checkpoint (its {wrong}); pass a checkpoint "
                           "written by gentool train.")
    if payload["format_version"] > FORMAT_VERSION:
        raise GentoolError(f"{path} was written by a newer gentool (format "
                           f"{payload['format_version']}); upgrade gentool to read it.")
    # `config`, and the `pretrained_config` a finetune run keeps: everything a caller may build.
    for key in payload:
        if key == "config" or str(key).endswith("_config"):
            check_stored_config(payload[key], str(path))
    return payload


def load_into(method: torch.nn.Module, state: dict[str, Any], path: str | Path, fix: str,
              optimizers: dict[str, torch.optim.Optimizer] | None = None) -> None:
    """Load a checkpoint's weights (read by load_checkpoint) into `method`, and its optimizer
    states into `optimizers` when given; a checkpoint whose weights or optimizer states do not
    fit ends in one sentence, `fix` saying what to do instead."""
    try:
        method.load_state_dict(state["modules"]["method"])
        if optimizers is not None:
            for name, optimizer_state in state.get("optimizers", {}).items():
                optimizers[name].load_state_dict(optimizer_state)
    except (RuntimeError, KeyError, AttributeError, ValueError) as error:
        raise GentoolError(f"{path} does not fit this model (its weights have other names or "
                           f"shapes than the model built for them); {fix}.") from error
