#!/usr/bin/env python
"""The lecture's other GAN claims, measured: one small table per claim on one fixed setup.

Claims (`--claims`; each is a set of configurations on one base setup, at one budget):

- `saturating`: the minimax game "converges poorly", the non-saturating one well. DCGAN on
  Fashion-MNIST (experiment=dcgan_fashion_mnist) with each generator loss: the Fréchet distance
  of the checkpoints at every tenth of the run, and the generator's gradient norm and D(G(z))
  as training logs them (`grad_norm/generator`, `train/d_fake` every 10 steps).
- `supports`: when p_data and p_G do not overlap, instance noise, WGAN-GP and R1 let training
  succeed where the plain game fails. A Dirac-GAN-like toy (Mescheder et al. 2018): the data is
  one Gaussian of sigma 0.01 at (2, 0), the toy MLP generator starts near the origin, and the
  learning rate stays constant, so nothing but the game decides whether it settles.
- `stabilised`: DCGAN on Fashion-MNIST, the plain preset against stabilised variants: Fréchet
  distance, precision and recall of the final model.
- `conditional`: the class-conditional DCGAN (model.conditional=true): how often the feature
  classifier reads the samples drawn for class c as class c, beside its accuracy on the real
  test images of class c.

Every run trains through the real `gentool train` path (`run_train` on the composed config).
Image metrics are those of `gentool eval`'s samples suite (the feature classifier's Fréchet
distance, precision/recall, classes, per-class accuracy of conditional samples) on
`--eval-samples` samples; the toy metrics are the data set's mode metrics (2,500 samples).

The study survives interruption. Each (claim, configuration, budget, seed) cell writes one JSON
file, `<cells>/<claim>/<configuration>/steps<N>/seed<k>.json`, once its run and its evaluation
are finished; cells that have a file are skipped, so the same command continues where it
stopped. An interrupted run resumes from its last checkpoint in
`<runs>/<claim>/<configuration>/steps<N>/seed<k>`; SIGTERM or Ctrl-C stops the study after
each running cell's checkpoint (exit 128 + the signal), or at once before the cells start
(while the feature classifier trains, say). A DCGAN cell measured in the features of an
older classifier (its recipe version, `gentool.metrics.classifier.VERSION`) counts as missing;
re-running it re-evaluates the kept run, or retrains where the run is gone. Cells run side by
side in `--workers` processes of one thread each. `--claims` chooses the claims to run and to
table; `--configs`, `--seeds` and `--steps` choose which of their cells to run. The markdown
tables between the markers of `--out` are rebuilt from the cell files after every cell and at any
time with --table-only, and always cover each claim's whole study: its study budget on its study
seeds (with any further seed a cell file exists for) with the missing cells marked, and every
other budget found among the cells (probes) as a table of its own.

    .venv/bin/python scripts/gan_study.py --workers 1                       # the whole study
    .venv/bin/python scripts/gan_study.py --table-only                      # rebuild the tables
    .venv/bin/python scripts/gan_study.py --claims stabilised --steps 2000 --seeds 1   # a probe
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from study_files import (end_stop_before_cells, run_cells, stop_cleanly_before_cells, train_cell,
                         write_atomic, write_json)

REPO = Path(__file__).resolve().parents[1]
CELLS = REPO / "docs" / "results" / "gan_study"
RUNS = REPO / "runs" / "gan_study"
OUT = REPO / "docs" / "gan_study.md"
DATA_DIR = Path(os.environ.get("GENTOOL_DATA_DIR", REPO / "data"))


def markers(claim: str) -> tuple[str, str]:
    return (f"<!-- scripts/gan_study.py {claim}: begin -->",
            f"<!-- scripts/gan_study.py {claim}: end -->")


@dataclass(frozen=True)
class Claim:
    title: str
    base: tuple[str, ...]                       # overrides of every configuration
    configs: dict[str, tuple[str, tuple[str, ...]]]   # name -> (label, overrides)
    budget: int                                 # generator steps of the study's runs
    seeds: int                                  # the study's seeds: 0..seeds-1
    images: bool                                # DCGAN (evaluated) or toy (mode metrics)
    curve: bool = False                         # evaluate every tenth of the run
    log_every: int = 100                        # 10: the early gradient norms are resolved
    # Configurations that probes (runs below the budget) ruled out: tabled as probes, not run at
    # the study budget unless named with --configs.
    probe_only: tuple[str, ...] = ()

    def study_configs(self) -> list[str]:
        return [c for c in self.configs if c not in self.probe_only]

    def study_seeds(self) -> list[int]:
        return list(range(self.seeds))


DCGAN = ("experiment=dcgan_fashion_mnist",)
# One Gaussian (sigma 0.01) at (2, 0): `ring` with one mode of radius 2. The generator of
# gan_toy_small starts with its samples near the origin, 2 away, so the supports do not overlap.
# The game is the one the lecture writes down (minimax), with the discriminator ahead: 5 of its
# steps per generator step, so it is close to the optimal D of the vanishing-gradient argument
# (Arjovsky and Bottou 2017). The learning rate stays constant: no decay settles a run for it.
DIRAC = ("experiment=gan_toy_small", "dataset=ring", "dataset.num_classes=1",
         "dataset.source.modes=1", "dataset.source.radius=2.0", "dataset.source.sigma=0.01",
         "dataset.range=[-3.0,3.0]", "trainer.schedule.name=constant", "model.n_critic=5",
         "loss=minimax")

CLAIMS: dict[str, Claim] = {
    "saturating": Claim(
        "minimax against non-saturating generator loss, DCGAN on Fashion-MNIST", DCGAN,
        {"nonsaturating": ("non-saturating (the preset)", ()),
         "minimax": ("minimax (saturating)", ("loss=minimax",))},
        budget=10000, seeds=3, images=True, curve=True, log_every=10),
    "supports": Claim(
        "non-overlapping supports: a near-point target 2 away from the generator's start, "
        "minimax game, 5 D steps per G step", DIRAC,
        {"plain": ("minimax GAN (the plain game)", ()),
         "ns": ("non-saturating generator loss", ("loss=nonsaturating",)),
         "noise": ("minimax + instance noise, sigma 0.5 annealed to 0 over the run", (
             "model.instance_noise.sigma=0.5", "model.instance_noise.anneal_steps={steps}")),
         "noise_const": ("minimax + instance noise, sigma 0.5 throughout", (
             "model.instance_noise.sigma=0.5",)),
         "r1": ("minimax + R1, gamma=1", ("model.r1=1.0",)),
         "gp": ("WGAN-GP, lambda=10", ("loss=wasserstein", "model.gradient_penalty=10"))},
        budget=2000, seeds=3, images=False),
    "stabilised": Claim(
        "stabilised DCGAN variants against the plain preset, Fashion-MNIST", DCGAN,
        {"plain": ("plain: experiment=dcgan_fashion_mnist", ()),
         "hinge_sn_mbstd": ("hinge + spectral norm + minibatch std in D", (
             "loss=hinge", "model.discriminator.spectral_norm=true",
             "model.discriminator.batch_norm=false", "model.discriminator.minibatch_std=true")),
         "sn": ("spectral norm in D (no batch norm in D)", (
             "model.discriminator.spectral_norm=true", "model.discriminator.batch_norm=false")),
         "hinge_sn": ("hinge + spectral norm (without minibatch std)", (
             "loss=hinge", "model.discriminator.spectral_norm=true",
             "model.discriminator.batch_norm=false")),
         "r1": ("R1, gamma=1", ("model.r1=1.0",)),
         "r1_01": ("R1, gamma=0.1", ("model.r1=0.1",)),
         "r1_10": ("R1, gamma=10", ("model.r1=10.0",)),
         "ttur": ("two time-scale: G lr 1e-4, D lr 4e-4", (
             "model.generator_optimizer.lr=1e-4", "model.discriminator_optimizer.lr=4e-4"))},
        budget=10000, seeds=3, images=True,
        # Far behind the plain preset in their 2,000-step probes (docs/gan_study.md, section 3).
        probe_only=("hinge_sn_mbstd", "sn", "hinge_sn", "ttur", "r1_10")),
    "conditional": Claim(
        "class-conditional DCGAN on Fashion-MNIST: is class c read as class c?",
        (*DCGAN, "model.conditional=true"),
        {"cdcgan": ("experiment=dcgan_fashion_mnist model.conditional=true", ())},
        budget=10000, seeds=1, images=True),
}


# -- one cell ---------------------------------------------------------------------------------

def cell_path(cells: Path, claim: str, config: str, steps: int, seed: int) -> Path:
    return cells / claim / config / f"steps{steps}" / f"seed{seed}.json"


def job_overrides(claim: str, config: str, seed: int, steps: int) -> list[str]:
    """The claim's base, the configuration's own overrides and the cell's, each key once: a
    configuration's own value (loss=nonsaturating) takes the place of the base's (loss=minimax)."""
    from gentool.overrides import merged_overrides

    spec = CLAIMS[claim]
    tenth = max(1, steps // 10)
    own = [o.replace("{steps}", str(steps)) for o in spec.configs[config][1]]
    return merged_overrides(
        *spec.base, *own, f"seed={seed}", "device=cpu",
        f"trainer.max_steps={steps}", f"trainer.log_every={min(spec.log_every, steps)}",
        # images: the final evaluation only (the study evaluates checkpoints itself);
        # points: the mode metrics at every tenth, as training logs them
        f"trainer.eval_every={steps if spec.images else tenth}",
        # the checkpoints of every tenth are kept where the claim evaluates them all
        f"trainer.checkpoint_every={tenth}",
        f"trainer.keep_checkpoints={10 if spec.curve else 0}",
        "trainer.progress_bar=false")


def classifier_version() -> int:
    from gentool.metrics.classifier import VERSION

    return VERSION


def is_done(path: Path, images: bool) -> bool:
    """A cell file exists and, for images, was measured with today's feature classifier."""
    if not path.exists():
        return False
    return not images or json.loads(path.read_text()).get("classifier", {}).get(
        "version") == classifier_version()


@dataclass(frozen=True)
class Job:
    claim: str
    config: str
    seed: int
    steps: int
    run_dir: str
    out: str
    data_dir: str                 # the runs' data_dir: the feature classifier's cache
    eval_samples: int
    extra: tuple[str, ...] = ()   # overrides after the cell's own (--override)
    classifier_steps: int | None = None   # None: the eval config's

    def train_overrides(self) -> list[str]:
        from gentool.overrides import merged_overrides

        return merged_overrides(*job_overrides(self.claim, self.config, self.seed, self.steps),
                                *self.extra)

    def eval_overrides(self) -> list[str]:
        steps = [] if self.classifier_steps is None else \
            [f"classifier_steps={self.classifier_steps}"]
        return ["device=cpu", f"n_samples={self.eval_samples}", f"data_dir={self.data_dir}",
                *steps]


def run_cell(job: Job) -> dict:
    """Train one cell (resuming its run directory), evaluate it and write its file."""
    claim, config, seed, steps = job.claim, job.config, job.seed, job.steps
    spec = CLAIMS[claim]
    overrides = job.train_overrides()
    run_dir = Path(job.run_dir)
    run = train_cell([*overrides, f"data_dir={job.data_dir}"], run_dir)
    if run.interrupted is not None:   # a signal: the checkpoint is kept, the next sitting resumes
        return {"claim": claim, "config": config, "seed": seed, "interrupted": run.interrupted}
    # A run that diverged stays in the table, with its message as its status.
    result = {"claim": claim, "config": config, "label": spec.configs[config][0], "seed": seed,
              "steps": steps, "overrides": overrides, "status": run.status}
    evaluated = time.perf_counter()
    if spec.images:
        result.update(evaluate_images(run_dir, spec, job.eval_overrides(), run.status))
    else:
        result.update(evaluate_points(run_dir, run.cfg, run.status))
    result.update({"train_seconds": run.train_seconds,
                   "eval_seconds": round(time.perf_counter() - evaluated, 1), **run.facts()})
    write_json(Path(job.out), result)
    return result


def scalars(run: Path, tags) -> dict[str, list[list[float]]]:
    """{tag: [[step, value], ...]} from the run's TensorBoard files (the last value of a step
    that a resumed run logged twice), values to 4 significant digits."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    for path in sorted(run.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in tags:
            if tag in events.Tags()["scalars"]:
                found[tag].update({e.step: e.value for e in events.Scalars(tag)})
    return {tag: [[s, float(f"{v:.4g}")] for s, v in sorted(values.items())]
            for tag, values in found.items()}


def evaluate_images(run: Path, spec: Claim, eval_overrides: list[str], status: str) -> dict:
    """The samples suite of `gentool eval` on the final checkpoint (and on every kept periodic
    one for a curve), and the training scalars the claim reads."""
    from gentool.engine.checkpoint import CHECKPOINTS_FOLDER, run_checkpoint
    from gentool.metrics.classifier import VERSION

    n = int(next(o for o in eval_overrides if o.startswith("n_samples=")).split("=")[1])
    result: dict = {"eval_samples": n}
    if status != "finished":   # nothing to measure; the version marks the cell as current
        result["classifier"] = {"version": VERSION, "accuracy": None}
        return result
    checkpoints = [run_checkpoint(run)]
    if spec.curve:
        checkpoints = sorted((run / CHECKPOINTS_FOLDER).glob("step_*.pt"),
                             key=lambda p: int(p.stem.split("_")[1]))
    measured = [samples_metrics(path, eval_overrides) for path in checkpoints]
    result["final"] = measured[-1]
    if spec.curve:
        result["curve"] = [{"step": m["step"], "fd": m["fd"], "precision": m["precision"],
                            "recall": m["recall"]} for m in measured]
        result["scalars"] = scalars(run, ["grad_norm/generator", "train/d_fake"])
    result["classifier"] = {"version": VERSION,
                            "accuracy": measured[-1]["classifier_accuracy"]}
    return result


def samples_metrics(checkpoint: Path, eval_overrides: list[str]) -> dict:
    """`gentool eval checkpoint=... metrics=[samples] <eval_overrides>` without writing into the
    run (the keys of its rows, and the checkpoint's step)."""
    import torch
    from hydra import compose, initialize_config_module

    from gentool.engine.device import seed_everything
    from gentool.evaluate.context import EvalContext
    from gentool.evaluate.suites import samples
    from gentool.trained import load_trained_method

    with initialize_config_module("gentool.configs", version_base="1.3"):
        cfg = compose("eval", overrides=[f"checkpoint={checkpoint}", *eval_overrides])
    trained = load_trained_method(checkpoint, torch.device("cpu"))
    seed_everything(cfg.seed)
    context = EvalContext(trained.method, trained.train_cfg.dataset, cfg, trained.device)
    metrics = {k: v for row in samples(context) for k, v in row.metrics().items()}
    # A non-finite figure (NaN, an undefined metric) stays a float here: write_json writes it
    # into the cell file as null.
    return {"step": trained.step, "class_names": context.data.class_names,
            **{k: round(v, 5) for k, v in metrics.items()}}


def evaluate_points(run: Path, cfg, status: str) -> dict:
    """The final mode metrics (metrics.json), the share of high-quality samples at every tenth
    of the run, and the median distance of 2,500 final samples to the target point."""
    if status != "finished":
        return {"high_quality": 0.0, "modes": 0.0, "median_distance": None, "curve": []}
    import torch

    from gentool.data.toy2d import ring_centres
    from gentool.engine.checkpoint import run_checkpoint
    from gentool.engine.device import seed_everything
    from gentool.trained import load_trained_method

    metrics = json.loads((run / "metrics.json").read_text())
    trained = load_trained_method(run_checkpoint(run), torch.device("cpu"))
    seed_everything(0)
    with torch.no_grad():
        points = trained.method.sample(2500).double()
    source = cfg.dataset.source
    target = ring_centres(int(source.modes), float(source.radius)).double()
    distance = torch.cdist(points, target).min(dim=1).values
    curve = scalars(run, ["test/high_quality"])["test/high_quality"]
    return {"high_quality": 100 * metrics["test/high_quality"], "modes": metrics["test/modes"],
            "median_distance": round(float(distance.median()), 5),
            "curve": [[step, round(100 * value, 2)] for step, value in curve]}


# -- the tables -------------------------------------------------------------------------------

def read_cells(cells: Path, claim: str, configs) -> dict:
    """{(config, steps, seed): result} of every finished, current cell of a claim."""
    found = {}
    images = CLAIMS[claim].images
    for config in configs:
        for path in sorted((cells / claim / config).glob("steps*/seed*.json")):
            if is_done(path, images):
                result = json.loads(path.read_text())
                found[(config, result["steps"], result["seed"])] = result
    return found


def stale_cells(cells: Path, claim: str, configs) -> list[Path]:
    """Cell files measured with an older feature classifier (re-run them to re-measure)."""
    if not CLAIMS[claim].images:
        return []
    return [p for c in configs for p in sorted((cells / claim / c).glob("steps*/seed*.json"))
            if not is_done(p, True)]


def mean_std(values, digits: int, style: str = "f") -> str:
    """mean ± std of the values given (None: not measured), the value alone for one run;
    style "g" gives `digits` significant digits, for figures that span orders of magnitude."""
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    text = f"{statistics.mean(values):.{digits}{style}}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.{digits}{style}}"
    return text


def mean_std_seeds(rows, value, digits: int, seeds) -> str:
    """mean_std of `value(row)` over the rows that measured it, with a note where their seeds
    are not exactly the table's `seeds`: how many of those they cover, and the further seeds."""
    measured = [r for r in rows if value(r) is not None]
    if not measured:
        return "—"
    covered = sum(r["seed"] in seeds for r in measured)
    further = len(measured) - covered
    if covered < len(seeds):
        note = f" ({covered}/{len(seeds)} seeds" + (f" and {further} further)" if further else ")")
    else:
        note = f" ({len(measured)} seeds)" if further else ""
    return mean_std([value(r) for r in measured], digits) + note


def runs_of(found: dict, config: str, steps: int) -> list[dict]:
    """The cells of a configuration at a budget that have a file, by seed: a table's rows show
    every seed that has one."""
    return [found[key] for key in sorted(k for k in found if k[:2] == (config, steps))]


def further_seeds_note(count: int) -> str:
    if count == 0:
        return ""
    return f" Also included: {count} cell{'s' if count > 1 else ''} of further seeds."


def window_mean(series, low: int, high: int) -> float | None:
    """The mean of a logged scalar over the steps in [low, high] (a null, a non-finite value as
    the cell file holds it, is left out)."""
    values = [v for s, v in series if low <= s <= high and v is not None]
    return statistics.mean(values) if values else None


def finished(rows):
    return [r for r in rows if r["status"] == "finished"]


# "Early in training": the logged steps 10, 20, ..., 200, while D learns to reject the first
# samples (D(G(z)) falls from about 0.5 to below 0.1 within the first 100 steps of the preset).
EARLY = (10, 200)


def summary_saturating(rows, seeds, steps) -> list[str]:
    ok = finished(rows)
    early = EARLY                                # the first logged steps
    late = (steps - steps // 10 + 1, steps)      # the last tenth
    grad = [r["scalars"]["grad_norm/generator"] for r in ok]
    fake = [r["scalars"]["train/d_fake"] for r in ok]
    return [mean_std_seeds(ok, lambda r: r["final"]["fd"], 1, seeds),
            mean_std([r["final"]["precision"] for r in ok], 3),
            mean_std([r["final"]["recall"] for r in ok], 3),
            mean_std([window_mean(g, *early) for g in grad], 3, style="g"),
            mean_std([window_mean(g, *late) for g in grad], 3, style="g"),
            mean_std([window_mean(f, *early) for f in fake], 3)]


def curve_table(found, spec, configs, steps) -> str:
    points = [steps * k // 10 for k in range(1, 11)]
    head = ["configuration", *[f"{p:,}" for p in points]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for config in configs:
        rows = finished(runs_of(found, config, steps))
        cells = []
        for p in points:
            values = [c["fd"] for r in rows for c in r["curve"] if c["step"] == p]
            cells.append(mean_std(values, 1) if values else "missing")
        lines.append(f"| {spec.configs[config][0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_supports(rows, seeds, steps) -> list[str]:
    ok = finished(rows)
    half = [[v for s, v in r["curve"] if s > steps // 2 and v is not None] for r in ok]
    return [mean_std_seeds(rows, lambda r: r["high_quality"], 1, seeds),
            mean_std([statistics.mean(h) if h else None for h in half], 1),
            mean_std([min(h) if h else None for h in half], 1),
            mean_std([r["median_distance"] for r in ok], 4)]


def summary_stabilised(rows, seeds, steps) -> list[str]:
    ok = finished(rows)
    return [mean_std_seeds(ok, lambda r: r["final"]["fd"], 1, seeds),
            mean_std([r["final"]["precision"] for r in ok], 3),
            mean_std([r["final"]["recall"] for r in ok], 3),
            mean_std([r["final"]["classes_covered"] for r in ok], 1),
            mean_std([r["final"]["class_kl"] for r in ok], 3),
            mean_std([r["train_seconds"] / 60 for r in ok], 1)]


def summary_conditional(rows, seeds, steps) -> list[str]:
    ok = finished(rows)
    return [mean_std_seeds(ok, lambda r: r["final"]["fd"], 1, seeds),
            mean_std([r["final"]["precision"] for r in ok], 3),
            mean_std([r["final"]["recall"] for r in ok], 3),
            mean_std([r["final"]["conditional_accuracy"] for r in ok], 3),
            mean_std([r["final"]["conditional_accuracy_real"] for r in ok], 3)]


SUMMARIES = {
    "saturating": (["final Fréchet distance", "precision", "recall",
                    "G grad norm, steps 10-200", "G grad norm, last tenth",
                    "D(G(z)), steps 10-200"], summary_saturating),
    "supports": (["% within 3 sigma at the end",
                  "% within 3 sigma, mean over the second half",
                  "% within 3 sigma, worst of the second half",
                  "median distance to the point"], summary_supports),
    "stabilised": (["Fréchet distance", "precision", "recall", "classes covered", "class KL",
                    "training minutes"], summary_stabilised),
    "conditional": (["Fréchet distance", "precision", "recall",
                     "samples read as their class (mean over classes)",
                     "real test images read as their class"], summary_conditional),
}


def summary_table(claim, found, configs, seeds, steps) -> str:
    head, summarise = SUMMARIES[claim]
    spec = CLAIMS[claim]
    lines = ["| configuration | " + " | ".join(head) + " |", "|" + "---|" * (len(head) + 1)]
    for config in configs:
        rows = runs_of(found, config, steps)
        cells = summarise(rows, seeds, steps) if rows else ["missing"] * len(head)
        lines.append(f"| {spec.configs[config][0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(found, configs, steps) -> str:
    """Conditional accuracy class by class (mean over the seeds) beside the real images'."""
    rows = finished([r for c in configs for r in runs_of(found, c, steps)])
    if not rows:
        return ""
    classes = sum(1 for key in rows[0]["final"] if key.startswith("conditional_accuracy_c")
                  and not key.endswith("_real"))
    names = rows[0]["final"]["class_names"] or [""] * classes
    lines = ["| class | samples drawn for the class, read as it | real test images of the "
             "class, read as it |", "|---|---|---|"]
    for c, name in enumerate(names):
        model = [r["final"].get(f"conditional_accuracy_c{c}") for r in rows]
        real = [r["final"].get(f"conditional_accuracy_c{c}_real") for r in rows]
        label = str(c) if name in ("", str(c)) else f"{c} {name}"
        lines.append(f"| {label} | {mean_std(model, 3)} | {mean_std(real, 3)} |")
    return "\n".join(lines)


def per_cell(claim, found, configs, seeds, budgets) -> str:
    spec = CLAIMS[claim]
    key = "high_quality" if not spec.images else "fd"
    name = "% within 3 sigma" if not spec.images else "Fréchet distance"
    lines = [f"| configuration | steps | seed | {name} | status | train s | eval s | CPU s | "
             "machine |", "|---|---|---|---|---|---|---|---|---|"]
    for config in configs:
        for steps in budgets:
            listed = seeds if steps == spec.budget and config not in spec.probe_only else []
            for s in sorted(set(listed) | {k[2] for k in found if k[:2] == (config, steps)}):
                r = found.get((config, steps, s))
                if r is None:
                    lines.append(f"| {config} | {steps:,} | {s} | missing | | | | | |")
                    continue
                value = r.get(key) if not spec.images else r.get("final", {}).get(key)
                shown = "—" if value is None else f"{value:.1f}"
                resumed = f" (resumed at {r['resumed_from_step']})" \
                    if r["resumed_from_step"] else ""
                lines.append(f"| {config} | {steps:,} | {s} | {shown} | {r['status']} | "
                             f"{r['train_seconds']:.0f}{resumed} | {r['eval_seconds']:.0f} | "
                             f"{r['cpu_seconds']:.0f} | {r['machine']} |")
    return "\n".join(lines)


def classifier_accuracies(results: list[dict]) -> str:
    """The feature classifier's test accuracies of the cells, each shown once as printed: cells
    measured at different times can hold accuracies that differ only past the third decimal."""
    shown: list[str] = []
    for accuracy in sorted(r["classifier"]["accuracy"] for r in results):
        text = f"{accuracy:.3f}"
        if text not in shown:
            shown.append(text)
    return ", ".join(shown)


def report(cells: Path, claim: str, configs, seeds) -> str:
    """The claim's tables: at its study budget, the rows of `seeds` with any further seed that
    has a cell file (counted apart, not against the cells of `seeds`); every other budget found
    (a probe), on the seeds found."""
    spec = CLAIMS[claim]
    found = read_cells(cells, claim, configs)
    budgets = sorted({spec.budget} | {k[1] for k in found}, key=lambda b: (b != spec.budget, b))
    study = [c for c in configs if c not in spec.probe_only]
    total = len(study) * len(seeds)
    done = sum(1 for c in study for s in seeds if (c, spec.budget, s) in found)
    further = sum(1 for (_, steps, s) in found if steps == spec.budget and s not in seeds)
    parts = []
    for steps in budgets:
        at_budget = steps == spec.budget
        budget_seeds = seeds if at_budget else sorted({k[2] for k in found if k[1] == steps})
        shown = [c for c in configs if (c in study or (c, steps) in {k[:2] for k in found})
                 and (at_budget or any(k[:2] == (c, steps) for k in found))]
        if at_budget:
            parts.append(f"**Study budget: {steps:,} generator steps, seeds "
                         f"{', '.join(map(str, seeds))}: {done} of {total} cells finished"
                         + (f", {total - done} missing.**" if done < total else ".**")
                         + further_seeds_note(further))
        else:
            parts.append(f"**Probe at {steps:,} generator steps (below the study budget), "
                         f"seeds {', '.join(map(str, budget_seeds))}:**")
        parts += ["", summary_table(claim, found, shown, budget_seeds, steps), ""]
        if spec.curve:
            parts += [f"Fréchet distance at every tenth of the run ({steps:,} steps):", "",
                      curve_table(found, spec, shown, steps), ""]
        if claim == "conditional":
            table = per_class_table(found, shown, steps)
            if table:
                parts += ["Class by class:", "", table, ""]
    results = [r for r in found.values() if r.get("classifier")]
    if results:
        parts.append(f"Image metrics in the features of gentool's feature classifier, recipe "
                     f"version {classifier_version()} (test accuracy "
                     f"{classifier_accuracies(results)}), on "
                     f"{', '.join(sorted({str(r['eval_samples']) for r in results}))} samples "
                     "against as many test images.")
    stale = stale_cells(cells, claim, configs)
    if stale:
        parts.append(f"{len(stale)} cell file(s) measured with an older feature classifier are "
                     "left out (re-run the command to re-measure them).")
    where = cells.relative_to(REPO) if cells.is_relative_to(REPO) else cells
    parts += ["", f"Every cell (files in `{where}/{claim}`; wall seconds of training and "
              "evaluation, one thread per run):", "",
              per_cell(claim, found, configs, seeds, budgets)]
    return "\n".join(parts)


def study_report(cells: Path, claim: str) -> str:
    """The report of the claim's whole study, whichever cells a command runs: a report on the
    seeds of one command (`--seeds 1`, a probe) would replace the study's tables in the
    document."""
    return report(cells, claim, list(CLAIMS[claim].configs), CLAIMS[claim].study_seeds())


def write_report(path: Path, claim: str, body: str) -> None:
    """Replace the claim's part between its markers; a claim without markers is appended."""
    begin, end = markers(claim)
    block = f"{begin}\n{body}\n{end}"
    old = path.read_text() if path.exists() else "# The lecture's GAN claims, measured\n"
    if begin in old and end in old:
        text = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        text = old.rstrip("\n") + f"\n\n{block}\n"
    write_atomic(path, text)


# -- driver -----------------------------------------------------------------------------------

def main(argv=None) -> dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", nargs="+", choices=list(CLAIMS), default=list(CLAIMS))
    parser.add_argument("--configs", nargs="+", default=None,
                        help="configurations to run (default: every one of each claim)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="run seeds 0..N-1 (default: each claim's study seeds; the tables "
                             "show each claim's study seeds and any further seed that has a "
                             "cell file)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run (default: each claim's study budget); another "
                             "budget is a probe, tabled apart")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs side by side, one thread each (default 1)")
    parser.add_argument("--eval-samples", type=int, default=5000,
                        help="generated samples (and test images) per image evaluation")
    parser.add_argument("--table-only", action="store_true",
                        help="only rebuild the tables from the cell files")
    parser.add_argument("--cells", type=Path, default=CELLS, help="the cell files' folder")
    parser.add_argument("--runs", type=Path, default=RUNS, help="run directories (checkpoints)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="data_dir of the runs: where the feature classifier is cached")
    parser.add_argument("--classifier-steps", type=int, default=None,
                        help="training steps of the feature classifier (default: gentool "
                             "eval's)")
    parser.add_argument("--override", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides added to every run after the cell's own (e.g. "
                             "device=cuda); they are recorded in the cell files")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    known = {c for claim in args.claims for c in CLAIMS[claim].configs}
    unknown = sorted(set(args.configs or []) - known)
    if unknown:
        parser.error(f"--configs {unknown} are no configuration of {args.claims}; pick from "
                     f"{sorted(known)}")
    if not args.table_only:
        run_missing(args)
    end_stop_before_cells()   # where no cell ran too: a stop from here is not one before them
    bodies = {}
    for claim in args.claims:
        bodies[claim] = study_report(args.cells, claim)
        write_report(args.out, claim, bodies[claim])
    print("\n\n".join(f"## {claim}\n{body}" for claim, body in bodies.items()))
    return bodies


def jobs_of(args) -> list[tuple]:
    jobs = []
    for claim in args.claims:
        spec = CLAIMS[claim]
        steps = args.steps or spec.budget
        for seed in range(args.seeds or spec.seeds):
            for config in spec.configs:
                if args.configs and config not in args.configs:
                    continue
                if not args.configs and steps == spec.budget and config in spec.probe_only:
                    continue
                out = cell_path(args.cells, claim, config, steps, seed)
                if not is_done(out, spec.images):
                    run = args.runs / claim / config / f"steps{steps}" / f"seed{seed}"
                    jobs.append(Job(claim, config, seed, steps, str(run), str(out),
                                    str(args.data_dir), args.eval_samples,
                                    tuple(args.override), args.classifier_steps))
    return jobs


def run_missing(args) -> None:
    jobs = jobs_of(args)
    print(f"{len(jobs)} cells to run, {args.workers} at a time", flush=True)
    if not jobs:
        return
    first_images = next((job for job in jobs if CLAIMS[job.claim].images), None)
    if first_images is not None:
        ensure_classifier(first_images)

    def reported(result: dict) -> None:
        name = f"{result['claim']}/{result['config']} seed {result['seed']}"
        if "interrupted" in result:
            print(f"{name}: {result['interrupted']}", flush=True)
            return
        print(f"{name}, {result['steps']} steps: {result['status']} "
              f"({result['train_seconds']:.0f} s + {result['eval_seconds']:.0f} s)", flush=True)
        claim = result["claim"]
        write_report(args.out, claim, study_report(args.cells, claim))

    run_cells(run_cell, jobs, args.workers, on_result=reported,
              name=lambda job: f"{job.claim}/{job.config}/steps{job.steps}/seed{job.seed}")


def ensure_classifier(job: Job) -> None:
    """Train (or find) the image data set's feature classifier once, before the workers start,
    so side-by-side workers do not each train it."""
    import torch
    from hydra import compose, initialize_config_module

    from gentool.config import setup
    from gentool.evaluate.context import EvalContext

    torch.set_num_threads(1)
    setup()
    # The classifier logs its progress (minutes of training on a fresh machine) at INFO.
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s",
                        datefmt="%H:%M:%S")
    with initialize_config_module("gentool.configs", version_base="1.3"):
        train = compose("train", overrides=job.train_overrides())
        cfg = compose("eval", overrides=job.eval_overrides())
    EvalContext(None, train.dataset, cfg, torch.device("cpu")).classifier


if __name__ == "__main__":
    stop_cleanly_before_cells()
    main()
