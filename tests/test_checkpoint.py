"""Checkpoint files: atomic writes, weights-only reads, clear refusals, RNG round trips."""

import errno
import os
import pickle
import random
import warnings

import numpy as np
import pytest
import torch

from gentool.engine.checkpoint import (capture_rng_state, checkpoint_of, load_checkpoint,
                                       restore_rng_state, save_checkpoint)
from gentool.engine import checkpoint
from gentool.engine.files import WriteFailed, atomic_write
from gentool import __version__
from gentool.errors import GentoolError

PAYLOAD = {"step": 3, "config": {"model": {"name": "vae"}, "dataset": {"name": "digits"}},
           "modules": {"method": {"w": torch.ones(2)}}, "optimizers": {}, "grad_scaler": None}


def test_round_trip_with_rng_state_is_plain_data(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {**PAYLOAD, "rng": capture_rng_state()})
    state = load_checkpoint(path)  # weights_only=True inside: only plain types and tensors
    assert state["step"] == 3 and state["format_version"] == 1
    assert torch.equal(state["modules"]["method"]["w"], torch.ones(2))


def test_rng_state_restores_torch_python_and_numpy_streams():
    state = capture_rng_state()
    first = (torch.rand(3), random.random(), np.random.rand())
    restore_rng_state(state)
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, PAYLOAD)
    before = path.read_bytes()

    def crash(f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_a_full_disk_is_one_sentence_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, PAYLOAD)
    before = path.read_bytes()

    def torch_save_on_a_full_disk(payload, f):
        f.write(b"half a checkpoint")
        try:   # torch reports its file's ENOSPC as a RuntimeError raised while handling it
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos")

    monkeypatch.setattr(checkpoint.torch, "save", torch_save_on_a_full_disk)
    with pytest.raises(WriteFailed, match=f"^no space left on the device holding {path}; the "
                                          "previous checkpoint there is intact; free some space, "
                                          "then resume by running the same command with "
                                          f"hydra.run.dir={tmp_path.parent.resolve()}.$"):
        save_checkpoint(path, PAYLOAD)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]


@pytest.mark.parametrize("code,problem", [(errno.EROFS, "is on a read-only file system"),
                                          (errno.EACCES, "no permission to write"),
                                          (errno.EIO, "could not write")])
def test_other_refused_writes_are_one_sentence(tmp_path, code, problem):
    def refused(f):
        raise OSError(code, os.strerror(code))

    with pytest.raises(WriteFailed, match=problem):
        atomic_write(tmp_path / "metrics.json", refused)
    assert os.listdir(tmp_path) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    atomic_write(tmp_path / "a.json", lambda f: f.write(b"{}"))
    assert (tmp_path / "a.json").stat().st_mode & 0o644 == 0o644


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(GentoolError, match="no checkpoint at .*nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_checkpoint_of_a_file_or_a_run_directory(tmp_path, monkeypatch):
    run = tmp_path / "run"
    last, step = run / "checkpoints" / "last.pt", run / "checkpoints" / "step_3.pt"
    for path in (last, step):
        save_checkpoint(path, PAYLOAD)
    assert checkpoint_of(run) == last and checkpoint_of(str(run)) == last
    assert checkpoint_of(step) == step
    # The run's checkpoints folder stands for its last.pt, as the run directory does.
    assert checkpoint_of(run / "checkpoints") == last
    last.unlink()
    with pytest.raises(GentoolError, match=f"^checkpoint={run}/checkpoints: there is no "
                                           f"checkpoint at {run}/checkpoints/last.pt; "):
        checkpoint_of(run / "checkpoints", "checkpoint")
    save_checkpoint(last, PAYLOAD)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert checkpoint_of("~/run") == last and checkpoint_of("~/run/checkpoints/step_3.pt") == step
    # A folder without checkpoints/last.pt, and a missing file: refused, naming the option.
    with pytest.raises(GentoolError, match=f"^no checkpoint at {tmp_path}/checkpoints/last.pt; "):
        checkpoint_of(tmp_path)
    with pytest.raises(GentoolError, match=f"^resume=nowhere.pt: there is no checkpoint at "
                                           f"nowhere.pt; .* or drop resume=.$"):
        checkpoint_of("nowhere.pt", "resume", optional=True)
    with pytest.raises(GentoolError, match="^checkpoint=nowhere.pt: there is no checkpoint at "
                                           "nowhere.pt; pass a checkpoint file or the directory "
                                           "of a train run.$"):
        checkpoint_of("nowhere.pt", "checkpoint")


def test_a_run_directorys_checkpoints_folder_is_recognised_where_checkpoint_of_reads(tmp_path):
    """The folder that `checkpoint=<run>` reads from is the one sample refuses to write into:
    a folder named checkpoints with a checkpoint file in it, or beside the `.hydra` snapshot."""
    run = tmp_path / "run"
    save_checkpoint(checkpoint.run_checkpoint(run), PAYLOAD)
    assert checkpoint_of(run) == run / "checkpoints" / "last.pt"
    assert checkpoint.is_run_checkpoints(checkpoint_of(run).parent)
    fresh = tmp_path / "fresh"   # a run started, no checkpoint yet
    (fresh / ".hydra").mkdir(parents=True)
    assert checkpoint.is_run_checkpoints(fresh / "checkpoints")
    mine = tmp_path / "mine" / "checkpoints"   # a user's folder of pictures so named
    mine.mkdir(parents=True)
    (mine / "a.png").write_bytes(b"png")
    assert not checkpoint.is_run_checkpoints(mine)
    (mine / "b.PTH").write_bytes(b"weights")
    assert checkpoint.is_run_checkpoints(mine)
    assert not checkpoint.is_run_checkpoints(tmp_path / "run")   # the run directory itself


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, PAYLOAD)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(GentoolError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_truncated_legacy_format_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "old.pt"
    torch.save(PAYLOAD, path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[2:].startswith(checkpoint.LEGACY_MAGIC_OP)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(GentoolError, match="truncated or corrupt"):
        load_checkpoint(path)


def _gentool_checkpoint() -> dict:
    """What save_checkpoint writes, as a dict (rng state, versions and all)."""
    return {**PAYLOAD, "format_version": checkpoint.FORMAT_VERSION,
            "gentool_version": __version__, "rng": capture_rng_state(),
            "monitor": {"key": None, "mode": None, "best": None, "best_step": None,
                        "since_best": None}}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_legacy_format_checkpoints_load_when_torch_reads_them_weights_only(tmp_path, protocol):
    path = tmp_path / "old.pt"
    torch.save(_gentool_checkpoint(), path, _use_new_zipfile_serialization=False,
               pickle_protocol=protocol)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(path, weights_only=True)
        readable = True
    except pickle.UnpicklingError:
        readable = False
    if readable:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            state = load_checkpoint(path)
        assert state["step"] == 3 and torch.equal(state["modules"]["method"]["w"], torch.ones(2))
        assert not [w for w in caught if "pickle protocol" in str(w.message)]
    else:
        with pytest.raises(GentoolError) as refused:
            load_checkpoint(path)
        assert str(refused.value) == (
            f"{path} is a legacy-format PyTorch file pickled with protocol {protocol}, which "
            "torch cannot read weights-only (the only way gentool reads checkpoints, for "
            "safety); save it again with torch.save's default format, or use a checkpoint "
            "written by gentool train.")
    assert readable == (protocol in (2, 3))   # what torch 2.x reads weights-only


def test_zip_checkpoint_saved_under_another_file_name_loads(tmp_path):
    # torch names the folder inside the archive after the file it wrote ("step_7/data.pkl").
    written = tmp_path / "step_7.pt"
    torch.save(_gentool_checkpoint(), written)
    renamed = tmp_path / "last.pt"
    written.rename(renamed)
    assert load_checkpoint(renamed)["step"] == 3


def test_an_error_that_is_no_damage_is_not_called_corrupt(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, PAYLOAD)

    def load(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(torch, "load", load)
    with pytest.raises(GentoolError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == (f"{path} cannot be read (MemoryError); fix that or pass "
                                  "another checkpoint.")


def _png() -> bytes:
    from PIL import Image
    import io
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    return buffer.getvalue()


def _npz() -> bytes:
    import io
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros(3))
    return buffer.getvalue()


# Files that are no PyTorch file at all. torch.load reads such bytes as a pickle stream: a file
# starting with "h" raises KeyError: 101, others UnpicklingError or ValueError.
NOT_TORCH_FILES = [
    ("notackpt.txt", b"hello\n", "it is a text file, not a PyTorch file"),
    ("last.pt", b"not a checkpoint at all", "it is a text file, not a PyTorch file"),
    ("metrics.json", b'{"step": 4, "test/loss": 1.5}\n', "it is a text file, not a PyTorch file"),
    ("README.md", "# gentool \u2014 caf\u00e9\n".encode() * 9,
     "it is a text file, not a PyTorch file"),
    ("samples.png", _png(), "it is a PNG image, not a PyTorch file"),
    ("codes.npy", b"\x93NUMPY\x01\x00v\x00", "it is a NumPy array file, not a PyTorch file"),
    ("codes.npz", _npz(), "it is a zip archive that holds no PyTorch data"),
    ("model.pkl", pickle.dumps({"step": 1}, protocol=4),
     "it is a Python pickle, not a PyTorch file"),
    ("blob.bin", bytes([1, 2, 0, 5]), "its first bytes match no PyTorch file format"),
]


@pytest.mark.parametrize("name,content,kind", NOT_TORCH_FILES,
                         ids=[name for name, _, _ in NOT_TORCH_FILES])
def test_a_file_that_is_no_pytorch_file_is_not_a_checkpoint(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(GentoolError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == (f"{path} is not a gentool checkpoint ({kind}); pass a "
                                  "checkpoint written by gentool train, such as "
                                  "<run dir>/checkpoints/last.pt.")


def test_empty_and_barely_started_files_are_named_as_such(tmp_path):
    empty, cut = tmp_path / "empty.pt", tmp_path / "cut.pt"
    empty.write_bytes(b"")
    cut.write_bytes(b"PK")   # the start of a zip archive
    with pytest.raises(GentoolError, match="empty.pt is empty \\(0 bytes\\), not a checkpoint"):
        load_checkpoint(empty)
    with pytest.raises(GentoolError, match="cut.pt is truncated or corrupt"):
        load_checkpoint(cut)


def test_any_error_of_the_loader_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, PAYLOAD)

    def load(*args, **kwargs):
        raise KeyError(101)   # what torch's unpickler raises on an unexpected opcode

    monkeypatch.setattr(torch, "load", load)
    with pytest.raises(GentoolError, match="truncated or corrupt"):
        load_checkpoint(path)


class Payload:  # an arbitrary Python object: loading it would need pickle
    pass


def test_checkpoint_that_needs_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({**PAYLOAD, "extra": Payload()}, path)
    with pytest.raises(GentoolError, match="needs pickle to load"):
        load_checkpoint(path)


@pytest.mark.parametrize("protocol", [2, 3])
def test_legacy_format_checkpoint_that_needs_pickle_is_refused(tmp_path, protocol):
    path = tmp_path / "evil.pt"
    torch.save({**PAYLOAD, "extra": Payload()}, path, _use_new_zipfile_serialization=False,
               pickle_protocol=protocol)
    with pytest.raises(GentoolError, match="needs pickle to load"):
        load_checkpoint(path)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_pickle_file_is_refused(tmp_path, protocol):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"step": 1}, protocol=protocol))
    with pytest.raises(GentoolError, match="it is a Python pickle, not a PyTorch file"):
        load_checkpoint(path)


def test_foreign_tensor_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)  # someone else's weights-only file
    with pytest.raises(GentoolError, match="not a gentool checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("fields,problem", [
    ({"format_version": "1"}, "format_version is not an integer"),
    ({"step": 2.5}, "step is not a non-negative integer"),
    ({"config": ["model"]}, "config is not a mapping"),
    ({"config": {"dataset": {}}}, "config has no model and dataset sections"),
    ({"modules": {"method": torch.ones(1)}}, "modules are not a mapping of weights"),
])
def test_fields_of_the_wrong_type_are_not_a_gentool_checkpoint(tmp_path, fields, problem):
    path = tmp_path / "odd.pt"
    torch.save({**PAYLOAD, "format_version": 1, **fields}, path)
    with pytest.raises(GentoolError, match=f"is not a gentool checkpoint \\(its {problem}\\)"):
        load_checkpoint(path)


def test_checkpoint_from_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({**PAYLOAD, "format_version": 99}, path)
    with pytest.raises(GentoolError, match="newer gentool"):
        load_checkpoint(path)


def test_a_finetune_checkpoint_names_the_checkpoint_it_came_from(tmp_path):
    """A finetune checkpoint stores the resolved path it started from; an older one without it
    names its finetune config's checkpoint= instead."""
    path = tmp_path / "last.pt"
    older = {"format_version": 1, "step": 2, "config": {"checkpoint": "runs/ae"},
             "modules": {"classifier": {"w": torch.ones(1)}},
             "pretrained_config": PAYLOAD["config"]}
    torch.save(older, path)
    with pytest.raises(GentoolError,
                       match=r"such as the one it was fine-tuned from \(runs/ae\)\.$"):
        load_checkpoint(path)
    torch.save({**older, "pretrained_checkpoint": "/data/runs/ae/checkpoints/last.pt"}, path)
    with pytest.raises(GentoolError,
                       match=r"fine-tuned from \(/data/runs/ae/checkpoints/last\.pt\)"):
        load_checkpoint(path)
