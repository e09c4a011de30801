"""The `gentool` command: a dispatcher over thin Hydra mains, one per command.

The command word is taken off sys.argv and the rest is left to that command's @hydra.main, so
every Hydra feature (-m sweeps, --cfg job, --help, launchers, sweepers) works unchanged; every
config Hydra composes for the command is checked before Hydra acts on its `hydra` node
(gentool.hydra_guard).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from gentool import __version__
from gentool.config import STARTED, setup
from gentool.errors import GentoolError
from gentool.hydra_guard import HydraConfigRefused, checked_composition


def agree_on_run_name() -> None:
    """Processes started together by torchrun join their process group now, before Hydra makes
    the run directory, and take rank 0's start time and tag."""
    from gentool.engine.rank import rank_from_env   # torch-free: `train --help` stays quick

    if not rank_from_env().distributed or "GENTOOL_RUN_TAG" in os.environ:
        return
    import torch.distributed as dist

    from gentool.engine.distributed import init_distributed

    init_distributed()
    shared = [STARTED.isoformat(), secrets.token_hex(3)]
    dist.broadcast_object_list(shared, src=0)
    os.environ["GENTOOL_RUN_STARTED"], os.environ["GENTOOL_RUN_TAG"] = shared

CONFIG_PATH = "configs"


def _report_user_errors(run):
    """Show a GentoolError as one line on stderr and exit 1, unless HYDRA_FULL_ERROR=1."""
    try:
        return run()
    except GentoolError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"gentool: error: {error}", file=sys.stderr)
        sys.exit(1)


def _report_stops(run, command: str):
    """A run stopped by a signal is not an error: one line (the step, the checkpoint and the
    command that resumes it) on stderr and in the log, then exit 128 + the signal. Ctrl-C before
    a run has started exits 130 the same way, without a traceback."""
    from gentool.engine.rank import rank_from_env
    from gentool.engine.stop import RunStopped

    try:
        return run()
    except RunStopped as stopped:
        if rank_from_env().is_main:
            from gentool.engine.run_log import write_to_run_log
            from gentool.hydra_run import resume_command

            run_dir = stopped.checkpoint.parent.parent
            line = f"gentool: {stopped}; resume with: {resume_command(command, run_dir)}"
            print(line, file=sys.stderr, flush=True)
            write_to_run_log(line)
        stopped.hand_over()   # submitit requeues the job on SIGUSR2 (and exits)
        sys.exit(stopped.exit_status)
    except KeyboardInterrupt:
        print(f"gentool: {command} interrupted (Ctrl-C).", file=sys.stderr, flush=True)
        sys.exit(130)


def _run_directory(cfg: DictConfig):
    """The Hydra job's run directory, with what a start writes there once it is accepted: the
    `.hydra/` config snapshot and the log file."""
    from gentool.engine.run_directory import RunDirectory
    from gentool.engine.run_log import start_run_log
    from gentool.hydra_run import config_snapshot, created_from

    path = Path(HydraConfig.get().runtime.output_dir)
    return RunDirectory(path, created_from=created_from(path),
                        on_start=[config_snapshot(cfg), lambda run_dir: start_run_log()])


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def train_main(cfg: DictConfig):
    from gentool.train import run_train  # torch is imported only once a command runs

    return _report_user_errors(lambda: _report_stops(
        lambda: run_train(cfg, _run_directory(cfg)), "train"))


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="sample")
def sample_main(cfg: DictConfig):
    from gentool.sample import run_sample

    return _report_user_errors(lambda: _report_stops(lambda: run_sample(cfg), "sample"))


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def eval_main(cfg: DictConfig):
    from gentool.evaluate import run_eval

    return _report_user_errors(lambda: _report_stops(lambda: run_eval(cfg), "eval"))


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="finetune")
def finetune_main(cfg: DictConfig):
    from gentool.finetune import run_finetune

    return _report_user_errors(lambda: _report_stops(
        lambda: run_finetune(cfg, _run_directory(cfg)), "finetune"))


def report_paths(paths: list[str], metrics: list[str] | None) -> tuple[list[str], list[str] | None]:
    """The paths and metric keys of `gentool report`. Written `--metrics KEY... PATH...`, the
    paths are the words at the end of --metrics that are run folders (find_runs reads runs
    from them; a metric key names none), after any paths given before --metrics. A word after
    such a folder that is none (a mistyped folder) is refused as find_runs refuses it."""
    from gentool.report import find_runs, holds_runs

    keys = list(metrics or [])
    taken: list[str] = []
    while len(keys) > 1 and holds_runs(keys[-1]):
        taken.insert(0, keys.pop())
    folders = [i for i, word in enumerate(keys) if holds_runs(word)]
    if folders and folders[-1] + 1 < len(keys):
        find_runs([keys[folders[-1] + 1]])   # raises: the word names no run folder
    if taken:
        return [*paths, *taken], keys
    if paths:
        return paths, metrics
    if metrics:
        raise GentoolError(f"no run folder given (--metrics took {', '.join(metrics)} as metric "
                           "keys); put the run folders before --metrics, or name folders that "
                           "exist.")
    raise GentoolError("no run folder given; name run directories or folders of runs, e.g. "
                       "gentool report multirun/train.")


def report_main() -> None:
    """Not a Hydra app: it takes paths, not a config."""
    import argparse

    from gentool.report import report, table_path, write_table

    parser = argparse.ArgumentParser(
        prog="gentool report",
        description="A markdown table of many runs' metrics.json: runs that differ only in "
                    "seed form one row (mean ± std), labelled by the overrides that differ.")
    # Empty here so that `--metrics KEY... PATH...`, where --metrics takes every word after it,
    # reaches report_paths, which takes the paths back.
    parser.add_argument("paths", nargs="*", help="run directories or folders of runs "
                                                 "(a multirun sweep folder, runs/train, ...)")
    parser.add_argument("--metrics", nargs="+", help="metric keys to show (default: every "
                                                     "eval/* key, else every test/* key); "
                                                     "given before the paths, the run "
                                                     "folders at its end are taken as paths")
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args(sys.argv[1:])

    def run():
        args.paths, args.metrics = report_paths(args.paths, args.metrics)
        out = table_path(args.out) if args.out is not None else None
        text = report(args.paths, args.metrics)
        print(text)
        if out is not None:
            write_table(out, text)

    _report_user_errors(run)


def compare_main() -> None:
    """Not a Hydra app: it takes run directories, not a config."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="gentool compare",
        description="The 2-D test codes of trained autoencoders/VAEs beside PCA's 2-D "
                    "projection of the same test data, coloured by class, in one PNG (codes of "
                    "more than 2 dimensions by their first two principal components). Each "
                    "panel gives the retrieval precision at 10 of its full code, the PCA panel "
                    "that of PCA with as many components as each run's code.")
    parser.add_argument("runs", nargs="+", help="train run directories (or their checkpoints)")
    parser.add_argument("--out", default="compare.png",
                        help="the PNG to write (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=2000,
                        help="test examples drawn, a fixed seeded subset (default: %(default)s)")
    parser.add_argument("--data-dir", default=os.environ.get("GENTOOL_DATA_DIR", "data"),
                        help="where the data sets are read from (default $GENTOOL_DATA_DIR "
                             "or data)")
    args = parser.parse_args(sys.argv[1:])

    def run():
        from gentool.compare import compare

        if args.examples < 2:
            raise GentoolError(f"--examples is {args.examples} but must be at least 2.")
        setup()
        print(compare(args.runs, args.out, args.examples, args.data_dir))

    _report_user_errors(run)


COMMANDS = {
    "train": (train_main, "train a model (AE, VAE, GAN, pix2pix) on a data set; writes a run "
                          "directory"),
    "sample": (sample_main, "draw samples, reconstructions, interpolations, latent traversals "
                            "or translations from a checkpoint"),
    "eval": (eval_main, "measure a checkpoint with every metric that applies to it"),
    "finetune": (finetune_main, "a classifier on a pretrained AE/VAE encoder from a few labels "
                                "per class, beside one from scratch"),
    "report": (report_main, "tabulate the metrics of many runs or a sweep (mean ± std over "
                            "seeds)"),
    "compare": (compare_main, "draw the 2-D test codes of runs beside PCA's, coloured by "
                              "class (PNG)"),
}

USAGE = f"""usage: gentool <command> [hydra overrides...] [hydra flags...]

gentool {__version__}: train and use autoencoders, VAEs and GANs.

commands:
""" + "".join(f"  {name:<10}{help_}\n" for name, (_, help_) in COMMANDS.items()) + """
examples:
  gentool train                                   VAE on the built-in digits data set, offline
  gentool train model=vae dataset=mnist
  gentool train -m model=vae,ae seed=0,1,2        a sweep
  gentool sample checkpoint=runs/train/.../checkpoints/last.pt n=64 out=samples.png
  gentool eval checkpoint=runs/train/.../checkpoints/last.pt
  gentool finetune checkpoint=runs/train/.../checkpoints/last.pt labels_per_class=10
  gentool report multirun/train/2026-11-24/10-00-00_ab12cd
  gentool compare runs/train/.../ae_run runs/train/.../vae_run --out codes.png

`gentool <command> --help` lists that command's config groups and options (report: its flags).
"""


# Sweepers and launchers that ship as optional extras: (override, plugin module, extra).
PLUGIN_EXTRAS = (("hydra/sweeper=optuna", "hydra_plugins.hydra_optuna_sweeper", "optuna"),)


def missing_plugin(args: list[str]) -> str | None:
    """Why an override in args cannot work (its Hydra plugin is not installed), or None.

    Hydra would only say that the config hydra/sweeper/optuna does not exist."""
    import importlib.util

    for override, module, extra in PLUGIN_EXTRAS:
        if override in (arg.lstrip("+") for arg in args) and \
                importlib.util.find_spec(module) is None:
            return (f"{override} needs the {extra} plugin, which is not installed; install it "
                    f"with pip install \"gentool[{extra}]\" (in a checkout: pip install -e "
                    f"\".[{extra}]\").")
    return None


# Hydra's flags that each choose what a command does; Hydra takes only one of them.
MODE_FLAGS = {"-m": "-m", "--multirun": "-m", "-r": "--run", "--run": "--run", "-c": "--cfg",
              "--cfg": "--cfg", "-i": "--info", "--info": "--info",
              "-sc": "--shell-completion", "--shell-completion": "--shell-completion"}


def _several_modes(args: list[str]) -> str | None:
    """One sentence for flags that ask Hydra for two things at once (-m with --cfg job)."""
    given = list(dict.fromkeys(MODE_FLAGS[flag] for flag in (arg.split("=")[0] for arg in args)
                               if flag in MODE_FLAGS))
    if len(given) < 2:
        return None
    if set(given) == {"-m", "--cfg"}:
        return ("--cfg prints the config of one job, so it does not take -m; drop -m and give "
                "one value of each swept key to print that job's config.")
    return (f"{' and '.join(given)} each choose what the command does, and Hydra takes one; "
            "give only one of them.")


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return
    if args[0] in ("--version", "-V"):
        print(f"gentool {__version__}")
        return
    command = args[0]
    if command not in COMMANDS:
        print(f"gentool: error: unknown command '{command}'; use one of "
              f"{', '.join(COMMANDS)} (see gentool --help).", file=sys.stderr)
        sys.exit(2)
    problem = missing_plugin(args[1:]) or _several_modes(args[1:])
    if problem:
        print(f"gentool: error: {problem}", file=sys.stderr)
        sys.exit(1)
    if command == "train":
        _report_user_errors(agree_on_run_name)
    # Hydra reads the program name from argv[0] (for --help and shell completion).
    from gentool.hydra_run import expand_home

    sys.argv = [f"gentool {command}", *map(expand_home, args[1:])]
    if command in ("report", "compare"):
        COMMANDS[command][0]()
        return
    setup()   # the resolvers and schemas the command's config names, before Hydra composes it
    # Hydra acts on a config's hydra node (logging, callbacks, launcher, ...) before the command
    # runs; every config it composes for the command is checked first (gentool.hydra_guard).
    completing = any(arg in ("-sc", "--shell-completion") or
                     arg.startswith("--shell-completion=") for arg in args)
    try:
        with checked_composition(explain_mistakes=not completing):
            COMMANDS[command][0]()
    except HydraConfigRefused as refused:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"gentool: error: {refused}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
