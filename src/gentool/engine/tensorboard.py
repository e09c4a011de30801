"""What a run shows in TensorBoard, chosen by the capabilities of the method.

Scalars come from the loop; this module adds the pictures: input|reconstruction pairs, samples
from a fixed noise batch (always the same noise, so frames compare over steps), the latent scatter
coloured by label, a latent traversal, and at the end the embedding projector and HParams.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from gentool.capabilities import (Decodes, Discriminates, Encodes, Reconstructs, Samples,
                                  Translates, conditional_classes)
from gentool.data import take
from gentool.engine import visuals
from gentool.engine.eval_mode import seeded_eval
from gentool.engine.latent_dims import choose_dims

log = logging.getLogger("gentool")


class VisualLogger:
    def __init__(self, writer: SummaryWriter, method, data, image_examples: int,
                 scatter_examples: int, seed: int):
        self.writer = writer
        self.method = method
        self.value_range = data.value_range
        self.seed = seed
        # A fixed batch of test examples (a PairBatch for a translation data set) ...
        self.examples = take(data.test, image_examples)
        self.images = self.examples[0]
        # ... and a larger one, with labels, for the latent scatter and the projector.
        scatter = take(data.test, scatter_examples)
        self.scatter_x, self.scatter_y = scatter[0], scatter.labels
        self.class_names = getattr(data, "class_names", None)
        self.traversal_dims = None   # the dims the last traversal varied (logged when they change)
        self.points = len(data.shape) == 1  # toy 2-D sets and vectors: no image grids
        self.toy_points = data.kind == "points"  # samples drawn over the data in the plane

    @torch.no_grad()
    def log(self, step: int) -> None:
        method, writer, value_range = self.method, self.writer, self.value_range
        # The same noise batch every time, and the training RNG stream untouched.
        with seeded_eval(method, self.seed):
            if isinstance(method, Translates):
                writer.add_image("translations", visuals.translation_rows(
                    method, self.examples, value_range), step)
            if isinstance(method, Reconstructs) and not self.points:
                out = method.reconstruct(self.images)
                writer.add_image("reconstructions",
                                 visuals.pairs_grid(self.images, out, value_range), step)
            if isinstance(method, Samples) and self.toy_points:
                surface = None
                if isinstance(method, Discriminates):
                    device = self.images.device
                    surface = lambda points: method.discriminate(points.to(device))  # noqa: E731
                picture = visuals.points_image(self.scatter_x, method.sample(len(self.scatter_x)),
                                               value_range, surface)
                writer.add_image("samples", picture, step)
            elif isinstance(method, Samples) and not self.points:
                writer.add_image("samples", visuals.grid(method.sample(self.images.shape[0]),
                                                         value_range), step)
                if conditional_classes(method):  # one row per class
                    writer.add_image("samples/by_class",
                                     visuals.grid(visuals.class_rows(method, 8), value_range, 8),
                                     step)
            if isinstance(method, Encodes):
                self._log_scatter(step)
            if isinstance(method, Samples) and isinstance(method, Decodes) and not self.points \
                    and method.latent_dim >= 2:
                self._log_traversal(step)

    def _log_scatter(self, step: int) -> None:
        codes = self.method.encode(self.scatter_x)
        points, how = visuals.project_2d(codes)
        axis_names = ("latent dimension 0", "latent dimension 1") if codes.shape[1] <= 2 else \
            ("principal component 1", "principal component 2")
        title = f"Latent codes of {len(codes)} test examples ({how})"
        self.writer.add_image("latent/scatter", visuals.scatter_image(
            points, self.scatter_y, self.class_names, axis_names, title), step)

    def _log_traversal(self, step: int) -> None:
        """The traversal over the two most active latent dimensions (latent_dims.choose_dims),
        enlarged to a readable size with the dims written above it."""
        chosen = choose_dims(self.method, self.scatter_x)
        if chosen.dims != self.traversal_dims:
            log.info("TensorBoard latent/traversal, step %d: %s", step, chosen.sentence())
            self.traversal_dims = chosen.dims
        i, j = chosen.dims
        picture = visuals.grid(visuals.traverse(self.method, 11, chosen.dims), self.value_range,
                               11)
        caption = f"latent dim {i} left to right, dim {j} bottom to top"
        self.writer.add_image("latent/traversal",
                              visuals.captioned(visuals.upscale(picture, "auto"), caption), step)
        self.writer.add_text("latent/traversal_dims", chosen.sentence(), step)

    @torch.no_grad()
    def log_embedding(self, step: int, max_points: int = 1000) -> None:
        """The embedding projector of the final step; called by the process that writes
        (rank 0), whose SummaryWriter always has a log directory."""
        if not isinstance(self.method, Encodes) or self.points:  # sprites need images
            return
        logdir: str = self.writer.get_logdir()
        if (Path(logdir) / f"{step:05d}" / "latent").is_dir():
            # Running a finished run again evaluates the same weights at the same step, so the
            # projector already holds this embedding; add_embedding would write it again and
            # print a warning about the existing folder.
            return
        x = self.scatter_x[:max_points]
        with seeded_eval(self.method, self.seed):
            codes = self.method.encode(x).float().cpu()
        labels = self.scatter_y[:max_points].tolist() if self.scatter_y is not None else None
        sprites = visuals.to_unit(x, self.value_range).cpu()
        if sprites.shape[1] == 1:  # the projector's sprite sheet wants colour images
            sprites = sprites.repeat(1, 3, 1, 1)
        h, w = sprites.shape[2:]
        if h != w:  # ... and square ones (Frey faces are 28x20): centre them on white
            side = max(h, w)
            top, left = (side - h) // 2, (side - w) // 2
            sprites = torch.nn.functional.pad(sprites, (left, side - w - left, top, side - h - top),
                                              value=1.0)
        self.writer.add_embedding(codes, metadata=labels, label_img=sprites, global_step=step,
                                  tag="latent")


def log_hparams(writer: SummaryWriter, hparams: dict, final_metrics: dict) -> None:
    """The HParams tab: flattened config choices against the final test metrics.

    The metrics are the last values of the `test/<key>` curves the loop logged (the last
    evaluation is the final one, on the whole test split), so HParams reads them from there and
    no single-point scalars of their own clutter the Scalars tab; SummaryWriter.add_hparams would
    add such scalars, hence the summaries are written here.
    """
    clean = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
             for k, v in hparams.items()}
    metrics = {f"test/{k}": v for k, v in final_metrics.items() if isinstance(v, (int, float))}
    file_writer = writer._get_file_writer()   # None for a writer that writes nothing
    if file_writer is None:
        return
    for summary in hparams_summaries(clean, metrics):   # experiment, session start, end
        file_writer.add_summary(summary)
