"""The metric suites of `gentool eval`, each chosen by the capabilities a method has (its types).

A suite is a function EvalContext -> list[Row] plus a check that says, in words, why it does not
apply to a model (None when it does). `metrics=[...]` names suites; by default every suite that
applies runs, except `inception`, which needs an optional extra and downloaded weights.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gentool.capabilities import Encodes, Reconstructs, ScoresLikelihood, Translates
from gentool.data.batching import first_examples
from gentool.engine import visuals
from gentool.errors import GentoolError
from gentool.evaluate.context import EvalContext
from gentool.metrics import likelihood as bounds
from gentool.metrics.classifier import features_of
from gentool.metrics.coverage import class_coverage, per_class_accuracy
from gentool.metrics.frechet import frechet_distance_of
from gentool.metrics.image_quality import psnr, ssim
from gentool.metrics.precision_recall import precision_recall
from gentool.metrics.representation import representation_metrics
from gentool.metrics.retrieval import DEFAULT_KS, measurable, retrieval_precision
from gentool.options import closest

log = logging.getLogger("gentool")


@dataclass
class Row:
    """One line of the results table: the model's value and the references beside it."""

    label: str
    key: str
    value: float
    references: list[tuple[str, str, float]] = field(default_factory=list)  # (label, key, value)

    def metrics(self) -> dict[str, float]:
        return {self.key: self.value, **{key: value for _, key, value in self.references}}


# -- likelihood ---------------------------------------------------------------------------------
def likelihood(ctx: EvalContext) -> list[Row]:
    """ELBO and the IWAE bound on the test split (as binarised for training), nats and bits/dim."""
    x_all = ctx.likelihood_test
    k, size = ctx.cfg.iwae_k, ctx.cfg.batch_size
    elbo, iwae = [], []
    for start in range(0, len(x_all), size):
        e, i = bounds.elbo_and_iwae(ctx.method, x_all[start:start + size], k, ctx.cfg.max_pairs)
        elbo.append(e)
        iwae.append(i)
    nll_elbo, nll_iwae = -float(torch.cat(elbo).mean()), -float(torch.cat(iwae).mean())
    return [Row(f"negative ELBO, nats ({len(x_all)} test examples)", "nelbo", nll_elbo),
            Row(f"NLL bound IWAE k={k}, nats", "iwae_nll", nll_iwae),
            Row("negative ELBO, bits/dim", "nelbo_bits_per_dim", _bits(ctx, nll_elbo)),
            Row(f"NLL bound IWAE k={k}, bits/dim", "iwae_bits_per_dim", _bits(ctx, nll_iwae))]


def _bits(ctx: EvalContext, nats: float) -> float:
    return ctx.method.bits_per_dim(nats)


def naive_monte_carlo(ctx: EvalContext) -> list[Row]:
    """log p(x) from prior samples, k = 1, 10, ... k_max, against IWAE on the same examples."""
    x = ctx.likelihood_test[:ctx.cfg.naive_mc.examples]
    k_max = int(ctx.cfg.naive_mc.k_max)
    ks = sorted({10 ** p for p in range(int(math.log10(k_max)) + 1)} | {k_max})
    estimates = bounds.naive_monte_carlo(ctx.method, x, ks, ctx.method.latent_dim,
                                         ctx.cfg.max_pairs)
    iwae = bounds.elbo_and_iwae(ctx.method, x, ctx.cfg.iwae_k, ctx.cfg.max_pairs)[1]
    reference = -float(iwae.mean())
    nll = {k: -float(estimates[k].mean()) for k in ks}
    ctx.figures["naive_mc"] = visuals.line_plot(
        [float(k) for k in ks], [nll[k] for k in ks], reference,
        title=f"NLL estimate on {len(x)} test examples (nats)",
        x_label="prior samples k (log scale)", line_label="naive Monte Carlo",
        reference_label=f"IWAE k={ctx.cfg.iwae_k}")
    return [Row(f"NLL naive Monte Carlo k={k}, nats ({len(x)} examples)", f"naive_mc_nll_k{k}",
                nll[k], [(f"IWAE k={ctx.cfg.iwae_k}", "naive_mc_iwae_nll", reference)])
            for k in ks]


# -- reconstruction -----------------------------------------------------------------------------
def reconstruction_errors(images: torch.Tensor, outputs: torch.Tensor) -> dict[str, float]:
    """Per-pixel MSE and binary cross-entropy of [0, 1] images and reconstructions."""
    outputs = outputs.clamp(1e-6, 1 - 1e-6)
    return {"mse": float(F.mse_loss(outputs, images)),
            "bce": float(F.binary_cross_entropy(outputs, images))}


def reconstruction(ctx: EvalContext) -> list[Row]:
    images = ctx.test[0]
    unit = ctx.unit(images)
    model = reconstruction_errors(unit, ctx.unit(ctx.reconstruct(images)))
    pca = reconstruction_errors(unit, ctx.pca.reconstruct(unit).clamp(0, 1))
    reference = ctx.pca_label(f"PCA, {ctx.pca.latent_dim} components")
    return [Row("test MSE per pixel (pixels in [0,1])", "mse", model["mse"],
                [(reference, "pca_mse", pca["mse"])]),
            Row("test BCE per pixel, nats", "bce", model["bce"],
                [(reference, "pca_bce", pca["bce"])])]


# -- sample quality -----------------------------------------------------------------------------
def samples(ctx: EvalContext) -> list[Row]:
    """Fréchet distance and precision/recall against the test split, in the feature space of the
    data set's classifier (raw coordinates for 2-D points), beside the train-vs-test floor."""
    n = min(ctx.cfg.n_samples, len(ctx.test[0]))
    real_test, real_train = ctx.test[0][:n], ctx.train[0][:n]
    fake = ctx.samples
    if ctx.is_points:
        feats = {"test": real_test, "train": real_train, "fake": fake}
        space = "in raw 2-D coordinates"
    else:
        classifier, accuracy = ctx.classifier
        feats, predicted = {}, {}
        for name, images in (("test", real_test), ("train", real_train), ("fake", fake)):
            feats[name], predicted[name] = features_of(classifier, ctx.unit(images))
        space = f"in classifier features (its test accuracy {accuracy:.3f})"
    model_pr = precision_recall(feats["test"], feats["fake"], ctx.cfg.neighbours)
    floor_pr = precision_recall(feats["test"], feats["train"], ctx.cfg.neighbours)
    floor = "real vs real"
    rows = [Row(f"Fréchet distance {space}", "fd", frechet_distance_of(feats["test"], feats["fake"]),
                [(floor, "fd_real", frechet_distance_of(feats["test"], feats["train"]))]),
            Row(f"precision (k={ctx.cfg.neighbours})", "precision", model_pr["precision"],
                [(floor, "precision_real", floor_pr["precision"])]),
            Row(f"recall (k={ctx.cfg.neighbours})", "recall", model_pr["recall"],
                [(floor, "recall_real", floor_pr["recall"])])]
    if ctx.is_points:
        score = ctx.data.sample_metrics
        model_modes, real_modes = score(fake[:2500]), score(real_train[:2500])
        rows += [Row(f"modes captured (of {ctx.data.num_classes})", "modes", model_modes["modes"],
                     [(floor, "modes_real", real_modes["modes"])]),
                 Row("high-quality samples (within 3 sigma)", "high_quality",
                     model_modes["high_quality"],
                     [(floor, "high_quality_real", real_modes["high_quality"])]),
                 Row("reverse KL of the mode histogram to uniform", "reverse_kl",
                     model_modes["reverse_kl"],
                     [(floor, "reverse_kl_real", real_modes["reverse_kl"])]),
                 Row("spread around the modes, in sigmas", "spread", model_modes["spread"],
                     [(floor, "spread_real", real_modes["spread"])])]
        return rows
    labels = ctx.test.labels
    model_cov = class_coverage(predicted["fake"], labels, ctx.data.num_classes)
    real_cov = class_coverage(predicted["train"], labels, ctx.data.num_classes)
    rows += [
        Row(f"classes covered (of {ctx.data.num_classes})", "classes_covered",
            model_cov["classes_covered"], [(floor, "classes_covered_real",
                                            real_cov["classes_covered"])]),
        Row("KL(sample classes || data classes), nats", "class_kl", model_cov["class_kl"],
            [(floor, "class_kl_real", real_cov["class_kl"])]),
        Row("feature classifier test accuracy", "classifier_accuracy", ctx.classifier[1])]
    if ctx.sample_labels is not None:
        rows += conditional_accuracy(ctx, predicted["fake"], predicted["test"], labels[:n])
    return rows


def conditional_accuracy(ctx: EvalContext, fake_predicted, real_predicted,
                         real_labels) -> list[Row]:
    """Does a class-conditional model's class c come out as class c? The share of its samples
    of each class that the feature classifier reads as that class, beside the classifier's
    accuracy on the real test images of the class (what a perfect generator would score): the
    mean over classes, then class by class."""
    classes = ctx.data.num_classes
    model = per_class_accuracy(fake_predicted, ctx.sample_labels, classes)
    real = per_class_accuracy(real_predicted, real_labels, classes)
    names = ctx.data.class_names or []
    reference = f"real test images ({len(real_labels)})"
    rows = [Row(f"class-conditional samples read as their class, mean over {classes} classes",
                "conditional_accuracy", float(model.nanmean()),
                [(reference, "conditional_accuracy_real", float(real.nanmean()))])]
    for c in range(classes):
        name = f"{c} ({names[c]})" if c < len(names) else str(c)
        rows.append(Row(f"  class {name}", f"conditional_accuracy_c{c}", float(model[c]),
                        [(reference, f"conditional_accuracy_c{c}_real", float(real[c]))]))
    return rows


def inception(ctx: EvalContext) -> list[Row]:
    """Inception FID and KID through torchmetrics (optional extra, weights downloaded once)."""
    from gentool.metrics.inception import inception_scores

    n = min(ctx.cfg.n_samples, len(ctx.test[0]))
    scores = inception_scores(ctx.unit(ctx.test[0][:n]), ctx.unit(ctx.samples), ctx.device)
    return [Row("Inception FID", "inception_fid", scores["fid"]),
            Row("Inception KID", "inception_kid", scores["kid"])]


# -- translation --------------------------------------------------------------------------------
def translation(ctx: EvalContext) -> list[Row]:
    """L1, PSNR and SSIM of the outputs against the targets of the test pairs (pixels in [0, 1]),
    and the Fréchet distance of outputs to targets in the classifier's features when the pairs
    carry labels, beside the train-vs-test targets floor."""
    n = min(ctx.cfg.n_samples, len(ctx.test[0]))
    pairs = first_examples(ctx.test, n)
    inputs, targets = pairs.inputs, pairs.targets
    outputs = ctx.batched(ctx.method.translate, inputs)
    out, tgt = ctx.unit(outputs), ctx.unit(targets)
    rows = [Row(f"L1 to the target ({n} test pairs, pixels in [0,1])", "l1",
                float((out - tgt).abs().mean())),
            Row("PSNR, dB", "psnr", float(psnr(out, tgt).mean())),
            Row("SSIM (11x11 Gaussian window)", "ssim", float(ssim(out, tgt).mean()))]
    if ctx.data.num_classes:
        classifier, accuracy = ctx.classifier
        fake = features_of(classifier, out)[0]
        real = features_of(classifier, tgt)[0]
        train = features_of(classifier, ctx.unit(ctx.seen(ctx.train)[:n]))[0]
        rows += [Row(f"Fréchet distance to the targets in classifier features (its test "
                     f"accuracy {accuracy:.3f})", "fd", frechet_distance_of(real, fake),
                     [("real vs real", "fd_real", frechet_distance_of(real, train))])]
    return rows


# -- representations ----------------------------------------------------------------------------
def representation(ctx: EvalContext) -> list[Row]:
    """Probes on the model's codes, on the raw inputs and on PCA codes of the same size: fitted
    on train, scored on test; and retrieval precision among the test codes (cosine k-NN, the
    fraction of the k nearest with the query's label) at k = 1, 10, 100."""
    (train_x, train_y), (test_x, test_y) = ctx.train, ctx.test
    classes, seed = ctx.data.num_classes, ctx.cfg.seed
    encoders = {"model": ctx.encode, "raw": lambda x: ctx.features(x).flatten(1),
                "pca": lambda x: ctx.pca.encode(ctx.features(x)).float()}

    def probe(encode):
        return representation_metrics(encode(train_x).cpu().numpy(), train_y.cpu().numpy(),
                                      encode(test_x).cpu().numpy(), test_y.cpu().numpy(),
                                      classes, seed)

    scores = {name: probe(encode) for name, encode in encoders.items()}
    for name, encode in encoders.items():
        precision = retrieval_precision(encode(test_x), test_y)
        scores[name].update({f"retrieval_p{k}": value for k, value in precision.items()})
    raw = "inputs" if ctx.is_vectors else "pixels"
    if ctx.is_vectors and str(ctx.dataset_cfg.get("values", "real")) == "counts":
        raw = "inputs log(1+count)"
    labels = {"linear_probe": "linear-probe accuracy (logistic regression)",
              "knn": "5-NN accuracy", "kmeans_nmi": f"k-means NMI (k={classes})",
              **{f"retrieval_p{k}": f"retrieval precision@{k} (cosine, {len(test_x)} test "
                                    "examples)" for k in _measurable_ks(len(test_x))}}
    return [Row(labels[key], key, scores["model"][key],
                [(raw, f"{key}_pixels", scores["raw"][key]),
                 (ctx.pca_label(f"PCA {ctx.pca.latent_dim}"), f"{key}_pca", scores["pca"][key])])
            for key in labels]


def _measurable_ks(n: int) -> list[int]:
    """The DEFAULT_KS that n test examples measure; the others are logged as left out."""
    left_out = [k for k in DEFAULT_KS if not measurable(k, n)]
    if left_out:
        log.info("Retrieval precision@%s left out: the test split has %d examples, so at k >= "
                 "%d every other example is a neighbour and the precision does not depend on "
                 "the codes.", "/".join(map(str, left_out)), n, n - 1)
    return [k for k in DEFAULT_KS if measurable(k, n)]


# -- which suites apply -------------------------------------------------------------------------
def _likelihood_missing(ctx):
    if not isinstance(ctx.method, ScoresLikelihood):
        return "a model that evaluates p(x|z) and has an encoder (a VAE)"
    return None


def _reconstruction_missing(ctx):
    if not isinstance(ctx.method, Reconstructs):
        return "a model that reconstructs (an autoencoder or VAE)"
    return "image data" if ctx.is_points or ctx.is_vectors else None


def _samples_missing(ctx):
    if not ctx.can_sample():
        return "a model that samples (a VAE or GAN) or encodes and decodes (an autoencoder)"
    if ctx.is_vectors:
        return "image data or 2-D points (vectors have no feature classifier)"
    if not ctx.is_points and not ctx.data.num_classes:
        return "a labelled data set (the feature classifier is trained on its labels)"
    return None


def _translation_missing(ctx):
    return None if isinstance(ctx.method, Translates) else "an image-to-image model (pix2pix)"


def _inception_missing(ctx):
    if not ctx.can_sample():
        return "a model that samples (a VAE or GAN) or encodes and decodes (an autoencoder)"
    return "image data" if ctx.is_points or ctx.is_vectors else None


def _representation_missing(ctx):
    if not isinstance(ctx.method, Encodes):
        return "a model with an encoder (an autoencoder or VAE)"
    return None if ctx.data.num_classes else "a labelled data set"


@dataclass
class Suite:
    run: Callable[[EvalContext], list[Row]]
    missing: Callable[[EvalContext], str | None]   # what the suite needs that is absent, or None
    default: bool = True                           # runs when metrics= is not given


SUITES = {
    "likelihood": Suite(likelihood, _likelihood_missing),
    "naive_mc": Suite(naive_monte_carlo, _likelihood_missing),
    "reconstruction": Suite(reconstruction, _reconstruction_missing),
    "samples": Suite(samples, _samples_missing),
    "representation": Suite(representation, _representation_missing),
    "translation": Suite(translation, _translation_missing),
    "inception": Suite(inception, _inception_missing, default=False),
}


def chosen_suites(ctx: EvalContext, names, model_name: str) -> list[str]:
    """The suites to run: those named (each must apply), or every default one that applies."""
    able = [n for n, suite in SUITES.items() if suite.missing(ctx) is None]
    if names is None:
        chosen = [name for name in able if SUITES[name].default]
        if not chosen:   # an empty table would report success having measured nothing
            raise GentoolError(f"no suite applies to model={model_name} on dataset="
                               f"{ctx.data.name}, so there is nothing to measure: "
                               f"{_needs_of_defaults(ctx)}.")
        return chosen
    names = list(names)
    supported = _supported(able)
    if not names:   # an empty list would print an empty table and report success
        raise GentoolError(f"metrics=[] chooses no suite; leave metrics= out for every one that "
                           f"applies, or name some (model={model_name} on dataset="
                           f"{ctx.data.name} {supported}).")
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        raise GentoolError(f"metrics={_listed(names)} names unknown suites {', '.join(unknown)}; "
                           f"model={model_name} "
                           f"on dataset={ctx.data.name} {supported}, so "
                           f"{_spelling_fix(names, able)}")
    for name in names:
        needs = SUITES[name].missing(ctx)
        if needs is not None:
            raise GentoolError(f"metrics={name} needs {needs}, and model={model_name} on "
                               f"dataset={ctx.data.name} is not that; this model {supported}.")
    return names


def _supported(able: list[str]) -> str:
    """"supports metrics=[...]", or that it supports none (metrics=[] would read as advice)."""
    return f"supports metrics={_listed(able)}" if able else "supports no suite"


def _listed(names: list[str]) -> str:
    """`names` as the metrics= override takes them, so a message's list can be typed back."""
    return f"[{','.join(names)}]"


def _needs_of_defaults(ctx: EvalContext) -> str:
    """What each default suite needs that ctx lacks: "likelihood needs ..., samples needs ..."."""
    return ", ".join(f"{name} needs {suite.missing(ctx)}" for name, suite in SUITES.items()
                     if suite.default)


def _spelling_fix(names: list[str], able: list[str]) -> str:
    """metrics= with each unknown suite replaced by the supported suite it most likely meant,
    when every one of them has a close match; else the advice to pick from the supported
    suites (a close match the model cannot run would only be refused next)."""
    meant = [name if name in SUITES else closest(name, able) for name in names]
    if None in meant:
        return "pick from those."
    return f"did you mean metrics=[{','.join(meant)}]?"
