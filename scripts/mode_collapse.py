#!/usr/bin/env python
"""Mode-collapse study on the 2-D toy sets: a plain GAN against each remedy, several seeds.

Every configuration trains through the real `gentool train` path (`run_train` on the composed
config) on `ring` (8 Gaussians, sigma 0.01) and `grid` (25 Gaussians, sigma 0.05), and is scored
on 2,500 samples with the VEEGAN/PacGAN metrics: modes captured (a mode counts when it is the
nearest centre of at least one sample within 3 sigma of it), the share of such high-quality
samples, and the reverse KL of the samples' mode histogram to the uniform one (none when no
sample is high quality).

The study survives interruption. Each (configuration, data set, seed) cell writes one JSON file,
`<cells>/<dataset>/<configuration>/seed<k>.json`, once its run is finished; cells that have a file
are skipped, so running the same command again continues where it stopped. A run that was
interrupted resumes from its last checkpoint in `<runs>/<dataset>/<configuration>/seed<k>`;
SIGTERM or Ctrl-C stops the study after each running cell's checkpoint (exit 128 + the signal),
or at once before the cells start. Cells run side by side in `--workers` processes of one
thread each. `--configs`, `--datasets` and `--seeds` choose the cells to run; the markdown table
in `--out` always covers the whole study (every configuration and data set on seeds 0-2, with
any further seed a cell file exists for), rebuilt from the cell files after every run and at any
time with --table-only; it marks the cells still missing. Failed runs are kept in the table: a
run that diverged counts as 0 modes and 0% high quality, with its message in the per-cell table.

    .venv/bin/python scripts/mode_collapse.py --workers 1                # the whole study
    .venv/bin/python scripts/mode_collapse.py --table-only               # rebuild the table
    .venv/bin/python scripts/mode_collapse.py --configs plain pack2 --datasets ring --seeds 1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from markdown_section import markers, write_section
from study_files import (end_stop_before_cells, run_cells, stop_cleanly_before_cells, train_cell,
                         write_json)

REPO = Path(__file__).resolve().parents[1]
CELLS = REPO / "docs" / "results" / "mode_collapse"
RUNS = REPO / "runs" / "mode_collapse"
OUT = REPO / "docs" / "mode_collapse.md"
BEGIN, END = markers("scripts/mode_collapse.py")

# Every configuration is the plain GAN of experiment=gan_toy_small with the switches shown; the
# last one is the preset of each data set. The overrides are format strings: `{half}` is half the
# run length (for annealing), `{dataset}` the data set, and `{{`/`}}` a literal brace.
BASE = "experiment=gan_toy_small"
PACKED_SETTINGS = ["model.generator_optimizer.lr=1e-4", "model.discriminator_optimizer.lr=2e-3",
                   "model.r1=0.01"]
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "plain": ("non-saturating GAN", []),
    "minimax": ("minimax GAN", ["loss=minimax"]),
    "unrolled": ("unrolled, k=5", ["model.unrolled_steps=5"]),
    "mbd": ("minibatch discrimination", [
        "model.discriminator.minibatch_discrimination={{num_kernels:50,kernel_dim:5}}"]),
    "mbstd": ("minibatch std", ["model.discriminator.minibatch_std=true"]),
    "noise": ("instance noise, sigma 0.1 annealed over half the run", [
        "model.instance_noise.sigma=0.1", "model.instance_noise.anneal_steps={half}"]),
    "r1": ("R1, gamma=0.1", ["model.r1=0.1"]),
    "gp": ("WGAN-GP, lambda=10, n_critic=5", [
        "loss=wasserstein", "model.gradient_penalty=10", "model.n_critic=5"]),
    # The toy settings of the WGAN-GP authors' code (gan_toy.py of igul222/improved_wgan_training):
    # a penalty of 0.1 rather than the paper's 10, Adam 1e-4 with betas (0.5, 0.9), no batch norm.
    "gp_toy": ("WGAN-GP at its authors' toy settings: lambda 0.1, n_critic 5, Adam 1e-4 (0.5, "
               "0.9), G without batch norm", [
        "loss=wasserstein", "model.gradient_penalty=0.1", "model.n_critic=5",
        "model.generator.batch_norm=false",
        "model.generator_optimizer.lr=1e-4", "model.discriminator_optimizer.lr=1e-4",
        "model.generator_optimizer.betas=[0.5,0.9]",
        "model.discriminator_optimizer.betas=[0.5,0.9]"]),
    "nobn": ("generator without batch norm", ["model.generator.batch_norm=false"]),
    "ttur": ("two time-scale: G lr 2.5e-4, D lr 1e-3", [
        "model.generator_optimizer.lr=2.5e-4", "model.discriminator_optimizer.lr=1e-3"]),
    "pack2": ("PacGAN, m=2", ["model.pack=2"]),
    # A packed D stays at chance at the plain GAN's learning rates unless G is much slower than
    # D (results/pack_diagnosis/): these rows give it G lr 1e-4, D lr 2e-3, R1 0.01 and 256
    # packs per batch, with the same settings at m=1 as their control.
    "slow_g": ("m=1 control of the PacGAN rows: G lr 1e-4, D lr 2e-3, R1 0.01", PACKED_SETTINGS),
    "pack2_slow_g": ("PacGAN, m=2, 256 packs, settings of the control", [
        "model.pack=2", "trainer.batch_size=512", *PACKED_SETTINGS]),
    "pack3_slow_g": ("PacGAN, m=3, 256 packs, settings of the control", [
        "model.pack=3", "trainer.batch_size=768", *PACKED_SETTINGS]),
    "pack4_slow_g": ("PacGAN, m=4, 256 packs, settings of the control", [
        "model.pack=4", "trainer.batch_size=1024", *PACKED_SETTINGS]),
    "mixture": ("mixture-of-Gaussians latent: 100 components, sigma 0.1, 16 dimensions", [
        "model.latent_dim=16", "model.latent_mixture.components=100",
        "model.latent_mixture.sigma=0.1"]),
    "best": ("best combination: experiment=gan_{dataset}", ["experiment=gan_{dataset}"]),
}
# Steps per run (generator steps) of each data set: the fixed budget the table states.
BUDGET = {"ring": 20000, "grid": 20000}
STUDY_SEEDS = [0, 1, 2]   # the seeds of every row of the table
MODES = {"ring": 8, "grid": 25}

# Published figures, mean over their runs, as printed in the papers (not measured here).
PUBLISHED_SOURCES = (
    "PacGAN: Lin, Khetan, Fanti and Oh, \"PacGAN: The power of two samples in generative "
    "adversarial networks\", NeurIPS 2018, the table of the synthetic-data experiments (Table 1 "
    "of the paper; `synthetic_data_experiments/results/Table1.png` in github.com/fjxmlzn/PacGAN): "
    "their GAN of 4x400 ReLU + batch norm (G) and 3x200 maxout (D), 2,500 samples scored, "
    "10 trials. VEEGAN: Srivastava, Valkov, Russell, Gutmann and Sutton, \"VEEGAN: Reducing mode "
    "collapse in GANs using implicit variational learning\", NIPS 2017, Table 1 (modes and "
    "high-quality share only; no reverse KL there).")
PUBLISHED = [  # (row, ring modes, ring %, ring KL, grid modes, grid %, grid KL)
    ("GAN (PacGAN paper)", 6.3, 98.2, 0.45, 17.3, 94.8, 0.70),
    ("PacGAN2 (PacGAN paper)", 7.9, 95.6, 0.07, 23.8, 91.3, 0.13),
    ("PacGAN3 (PacGAN paper)", 7.8, 97.7, 0.10, 24.6, 94.2, 0.06),
    ("PacGAN4 (PacGAN paper)", 7.8, 95.9, 0.07, 24.8, 93.6, 0.04),
    ("GAN (VEEGAN paper)", 1.0, 99.3, None, 3.3, 0.5, None),
    ("unrolled GAN (VEEGAN paper)", 7.6, 35.6, None, 23.6, 16.0, None),
    ("VEEGAN (VEEGAN paper)", 8.0, 52.9, None, 24.6, 40.0, None),
]


# -- one cell ---------------------------------------------------------------------------------

def cell_path(cells: Path, dataset: str, config: str, seed: int) -> Path:
    return cells / dataset / config / f"seed{seed}.json"


def job_overrides(config: str, dataset: str, seed: int, steps: int) -> list[str]:
    extra = [o.format(half=steps // 2, dataset=dataset) for o in CONFIGS[config][1]]
    from gentool.overrides import merged_overrides

    base = [] if any(o.startswith("experiment=") for o in extra) else [BASE]
    return merged_overrides(
        *base, *extra, f"dataset={dataset}", f"seed={seed}", "device=cpu",
        f"trainer.max_steps={steps}", f"trainer.log_every={max(1, steps // 20)}",
        f"trainer.eval_every={max(1, steps // 5)}",
        f"trainer.checkpoint_every={max(1, steps // 10)}", "trainer.keep_checkpoints=0",
        "trainer.progress_bar=false")


def run_cell(job: tuple[str, str, int, int, str, str]) -> dict:
    """Train one cell (resuming its run directory if it holds a checkpoint) and write its file."""
    config, dataset, seed, steps, run_dir, out = job
    overrides = job_overrides(config, dataset, seed, steps)
    run = train_cell(overrides, run_dir)
    if run.interrupted is not None:   # a signal: the checkpoint is kept, the next sitting resumes
        return {"config": config, "dataset": dataset, "seed": seed,
                "interrupted": run.interrupted}
    if run.status != "finished":   # a failed run stays in the table: no mode, no sample
        metrics = {"test/modes": 0.0, "test/high_quality": 0.0, "test/reverse_kl": None,
                   "status": run.status}
    else:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    result = {
        "config": config, "label": CONFIGS[config][0].format(dataset=dataset),
        "dataset": dataset, "seed": seed, "steps": steps, "overrides": overrides,
        "status": metrics.get("status", "finished"),
        "modes": metrics["test/modes"], "high_quality": 100 * metrics["test/high_quality"],
        "reverse_kl": finite_or_none(metrics["test/reverse_kl"]),
        "spread": finite_or_none(metrics.get("test/spread")),
        **rejection_figures(metrics),
        "seconds": run.seconds(), **run.facts(),
    }
    write_json(Path(out), result)
    return result


def rejection_figures(metrics: dict) -> dict:
    """The same run's figures on draws with the lowest-scored share dropped by the discriminator
    (training reports them as test/rejection/* when model.rejection > 0), under "rejection"."""
    if "test/rejection/modes" not in metrics:
        return {}
    return {"rejection": {"modes": metrics["test/rejection/modes"],
                          "high_quality": 100 * metrics["test/rejection/high_quality"],
                          "reverse_kl": finite_or_none(metrics["test/rejection/reverse_kl"]),
                          "spread": finite_or_none(metrics.get("test/rejection/spread"))}}


def finite_or_none(value):
    """A figure for the cell file: None where the run reports none (NaN, or absent)."""
    return None if value is None or math.isnan(value) else value


# -- the table --------------------------------------------------------------------------------

def read_cells(cells: Path, configs, datasets, seeds, budget) -> dict:
    """{(config, dataset, seed): result} for the finished cells of this budget: the seeds asked
    for, and any further seed a cell file exists for (a preset checked on more seeds)."""
    found = {}
    for config in configs:
        for dataset in datasets:
            extra = sorted(int(p.stem[len("seed"):]) for p in
                           (cells / dataset / config).glob("seed*.json")
                           if p.stem[len("seed"):].isdigit())
            for seed in sorted(set(seeds) | set(extra)):
                path = cell_path(cells, dataset, config, seed)
                if path.exists():
                    result = json.loads(path.read_text())
                    if result["steps"] == budget[dataset]:
                        found[(config, dataset, seed)] = result
    return found


def seeds_of(found: dict, config: str, dataset: str, seeds) -> list[int]:
    """The seeds asked for and the further seeds found, in order."""
    return sorted(set(seeds) | {s for (c, d, s) in found if (c, d) == (config, dataset)})


def mean_std(values: list[float], digits: int) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def summary_cells(by_seed: dict[int, dict], seeds) -> list[str]:
    """Mean ± std of a row's cells ({seed: figures}) over its finished seeds; a note when they
    are not exactly the study's `seeds`: how many of those finished, and the further seeds."""
    if not by_seed:
        return ["missing", "missing", "missing"]
    study = sum(s in seeds for s in by_seed)
    further = len(by_seed) - study
    rows = list(by_seed.values())
    if study < len(seeds):
        note = f" ({study}/{len(seeds)} seeds" + (f" and {further} further)" if further else ")")
    else:
        note = f" ({len(rows)} seeds)" if further else ""
    kls = [r["reverse_kl"] for r in rows if r["reverse_kl"] is not None]
    kl = mean_std(kls, 2) if kls else "—"
    if kls and len(kls) < len(rows):
        kl += f" ({len(rows) - len(kls)} without)"
    return [mean_std([r["modes"] for r in rows], 1) + note,
            mean_std([r["high_quality"] for r in rows], 1), kl]


def table(found: dict, configs, datasets, seeds, budget, view=None) -> str:
    """Mean ± std per configuration; view="rejection" reads the figures of draws filtered by
    the discriminator."""
    head = ["configuration"]
    for d in datasets:
        head += [f"{d}: modes (of {MODES[d]})", f"{d}: % high quality", f"{d}: reverse KL"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for config in configs:
        if view is not None and not any(view in r for (c, _, _), r in found.items() if c == config):
            continue   # a configuration that does not draw that way has no row in this view
        label = CONFIGS[config][0].format(dataset="<dataset>")
        cells = []
        for d in datasets:
            rows = {s: found[(config, d, s)] for s in seeds_of(found, config, d, seeds)
                    if (config, d, s) in found}
            if view is not None:
                viewed = {s: r[view] for s, r in rows.items() if view in r}
                if rows and not viewed:   # finished runs of a configuration that keeps every draw
                    cells += ["does not reject", "—", "—"]
                    continue
                rows = viewed
            cells += summary_cells(rows, seeds)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def published_table(datasets) -> str:
    columns = {"ring": (1, 2, 3), "grid": (4, 5, 6)}
    head = ["published (not measured here)"]
    for d in datasets:
        head += [f"{d}: modes (of {MODES[d]})", f"{d}: % high quality", f"{d}: reverse KL"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in PUBLISHED:
        cells = []
        for d in datasets:
            modes, hq, kl = (row[i] for i in columns[d])
            cells += [f"{modes:.1f}", f"{hq:.1f}", "—" if kl is None else f"{kl:.2f}"]
        lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_cell(found: dict, configs, datasets, seeds) -> str:
    lines = ["| configuration | data | seed | modes | % high quality | reverse KL | spread (sigmas) "
             "| with rejection: modes, % high quality, reverse KL | wall s | CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for config in configs:
        for d in datasets:
            for s in seeds_of(found, config, d, seeds):
                r = found.get((config, d, s))
                if r is None:
                    lines.append(f"| {config} | {d} | {s} | missing | | | | | | |")
                    continue
                kl = "—" if r["reverse_kl"] is None else f"{r['reverse_kl']:.3f}"
                if r.get("status", "finished") != "finished":
                    kl += f" ({r['status']})"
                resumed = f" (resumed at {r['resumed_from_step']})" if r["resumed_from_step"] \
                    else ""
                kept = r.get("rejection")
                kept = "—" if kept is None else (
                    f"{kept['modes']:.0f}, {kept['high_quality']:.1f}, "
                    + ("—" if kept["reverse_kl"] is None else f"{kept['reverse_kl']:.3f}"))
                spread = "—" if r.get("spread") is None else f"{r['spread']:.2f}"
                lines.append(f"| {config} | {d} | {s} | {r['modes']:.0f} | "
                             f"{r['high_quality']:.1f} | {kl} | {spread} | {kept} | "
                             f"{r['seconds']:.0f}{resumed} | {r['cpu_seconds']:.0f} |")
    return "\n".join(lines)


def report(cells: Path, configs, datasets, seeds, budget) -> str:
    found = read_cells(cells, configs, datasets, seeds, budget)
    total = len(configs) * len(datasets) * len(seeds)
    finished = sum(seed in seeds for (_, _, seed) in found)
    budgets = "; ".join(f"{d}: {budget[d]:,} generator steps" for d in datasets)
    machines = sorted({r["machine"] for r in found.values()})
    return "\n".join([
        f"Budget per run: {budgets}; seeds {', '.join(map(str, seeds))}; "
        f"{finished} of {total} cells finished"
        + (f", {total - finished} missing." if finished < total else ".")
        + further_seeds_note(len(found) - finished),
        f"Mean ± std over the finished seeds of each cell; one thread per run "
        f"({', '.join(machines) or 'no run yet'}).",
        "", table(found, configs, datasets, seeds, budget), "",
        "The same runs where the configuration rejects draws by the discriminator's score "
        "(`model.rejection`, gentool/rejection.py): the share it names of the lowest-scored "
        "draws is dropped. This changes how samples are drawn, not the model; only "
        "configurations that reject have a row here:", "",
        table(found, configs, datasets, seeds, budget, view="rejection"), "",
        "Published figures for comparison. " + PUBLISHED_SOURCES, "",
        published_table(datasets), "", "Every cell (files in "
        f"`{cells.relative_to(REPO) if cells.is_relative_to(REPO) else cells}`):", "",
        per_cell(found, configs, datasets, seeds)])


def study_report(cells: Path, budget: dict) -> str:
    """The report of the whole study, whichever cells a command runs: a table of only those
    would replace the study's table in the document."""
    return report(cells, list(CONFIGS), list(BUDGET), STUDY_SEEDS, budget)


def further_seeds_note(count: int) -> str:
    if count == 0:
        return ""
    return f" Also included: {count} cell{'s' if count > 1 else ''} of further seeds."


def write_report(path: Path, body: str) -> None:
    """Replace this script's section of the markdown file, keeping the rest of it."""
    write_section(path, BEGIN, END, body, heading="# Mode collapse on the toy sets\n")


# -- driver -----------------------------------------------------------------------------------

def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                        help="configurations to run (default: all; the table shows all)")
    parser.add_argument("--datasets", nargs="+", choices=list(BUDGET), default=list(BUDGET),
                        help="data sets to run (default: all; the table shows all)")
    parser.add_argument("--seeds", type=int, default=len(STUDY_SEEDS),
                        help=f"run seeds 0..N-1 (default {len(STUDY_SEEDS)}; the table shows "
                             "seeds 0-2 and any further seed that has a cell file)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run for every data set (default: the study's budget, "
                             + ", ".join(f"{d} {s}" for d, s in BUDGET.items()) + ")")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs side by side, one thread each (default 1)")
    parser.add_argument("--table-only", action="store_true",
                        help="only rebuild the table from the cell files")
    parser.add_argument("--cells", type=Path, default=CELLS, help="the cell files' folder")
    parser.add_argument("--runs", type=Path, default=RUNS, help="run directories (checkpoints)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    budget = {d: args.steps or BUDGET[d] for d in BUDGET}
    seeds = list(range(args.seeds))
    if not args.table_only:
        run_missing(args, budget, seeds)
    end_stop_before_cells()   # where no cell ran too: a stop from here is not one before them
    body = study_report(args.cells, budget)
    write_report(args.out, body)
    print(body)
    return body


def run_missing(args, budget, seeds) -> None:
    jobs = [(c, d, s, budget[d], str(args.runs / d / c / f"seed{s}"),
             str(cell_path(args.cells, d, c, s)))
            for s in seeds for d in args.datasets for c in args.configs
            if not cell_path(args.cells, d, c, s).exists()]
    print(f"{len(jobs)} cells to run, {args.workers} at a time", flush=True)
    if not jobs:
        return

    def reported(result: dict) -> None:
        if "interrupted" in result:
            print(f"{result['config']:<9} {result['dataset']:<5} seed {result['seed']}: "
                  f"{result['interrupted']}", flush=True)
            return
        kl = "—" if result["reverse_kl"] is None else f"{result['reverse_kl']:.3f}"
        print(f"{result['config']:<9} {result['dataset']:<5} seed {result['seed']}: "
              f"{result['modes']:.0f} modes, {result['high_quality']:.1f}% high quality, "
              f"reverse KL {kl} ({result['seconds']:.0f} s)", flush=True)
        write_report(args.out, study_report(args.cells, budget))

    run_cells(run_cell, jobs, args.workers, name=lambda job: f"{job[1]}/{job[0]}/seed{job[2]}",
              on_result=reported)


if __name__ == "__main__":
    stop_cleanly_before_cells()
    main()
