"""What the metric suites share: the method, its data, and the expensive pieces, each made once.

Everything is computed lazily, so `metrics=[reconstruction]` never trains the feature
classifier and a GAN never fits a PCA.
"""

from __future__ import annotations

import logging
from functools import cached_property

import torch
from omegaconf import DictConfig, OmegaConf

from gentool.capabilities import Decodes, Encodes, Samples, conditional_classes
from gentool.data import AnyBatch, Data, PairBatch, build_data, take
from gentool.engine.files import atomic_write
from gentool.engine.visuals import to_unit
from gentool.metrics import classifier as feature_net
from gentool.metrics.pca import PCA, baseline_components, fewer_components_note
from gentool.rejection import reject_lowest, rejection_rate

log = logging.getLogger("gentool")


class EvalContext:
    """One evaluation: `method` (a trained method, or any object with its capabilities), the
    training config's `dataset` node, the eval config and the device."""

    def __init__(self, method, dataset_cfg: DictConfig, cfg: DictConfig, device: torch.device):
        self.method, self.dataset_cfg, self.cfg, self.device = method, dataset_cfg, cfg, device
        # The share of draws dropped by the discriminator's score (gentool.rejection), once the
        # samples are drawn.
        self.rejected = 0.0
        self.figures: dict[str, torch.Tensor] = {}    # name -> [C, H, W] image in [0, 1]

    # -- data ----------------------------------------------------------------------------------
    def _build(self, binarize: str) -> Data:
        dataset_cfg = OmegaConf.merge(self.dataset_cfg, {"binarize": binarize})
        return build_data(dataset_cfg, self.cfg.data_dir, self.device,
                          batch_size=self.cfg.batch_size, seed=self.cfg.seed, drop_last=False)

    @cached_property
    def data(self) -> Data:
        """The data as the eye sees it: grey levels, never binarised (for pictures and probes)."""
        return self._build("none")

    @cached_property
    def modelled_data(self) -> Data:
        """The data as the model was trained on it (binarised if it was), for likelihoods."""
        binarize = str(self.dataset_cfg.get("binarize", "none"))
        return self.data if binarize == "none" else self._build(binarize)

    @property
    def is_points(self) -> bool:
        """The toy 2-D sets (whose distribution is known), not vectors read from files."""
        return self.data.kind == "points"

    @property
    def is_vectors(self) -> bool:
        return self.data.kind == "vectors"

    @cached_property
    def test(self) -> AnyBatch:
        """The whole test split, in stored order."""
        return take(self.data.test, self.data.test.num_examples)

    @cached_property
    def train(self) -> AnyBatch:
        """The first `probe_examples` train examples in stored order (fits probes, PCA, ...).

        `take` reads a split's epoch(), which is in stored order even for the train split.
        """
        n = min(self.cfg.probe_examples, self.data.train.num_examples)
        return take(self.data.train, n)

    @cached_property
    def likelihood_test(self) -> torch.Tensor:
        """The first `likelihood_examples` test examples (all: null), binarised as in training."""
        split = self.modelled_data.test
        count = self.cfg.likelihood_examples
        return take(split, split.num_examples if count is None else count)[0]

    @staticmethod
    def seen(batch: AnyBatch) -> torch.Tensor:
        """What a classifier sees of a batch: the targets of image pairs (a translation data
        set), otherwise the examples themselves."""
        return batch.targets if isinstance(batch, PairBatch) else batch[0]

    def unit(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] whatever the data set's range (what classifiers and errors use);
        vectors as they are (their values have no range)."""
        if self.is_vectors:
            return images.float()
        return to_unit(images, self.data.value_range)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What PCA and the raw-input baselines see: images in [0, 1]; vectors as they are, but
        word counts as log(1 + count), the usual input of LSA, so long documents do not
        dominate the principal directions."""
        if self.is_vectors and str(self.dataset_cfg.get("values", "real")) == "counts":
            return torch.log1p(x.float())
        return self.unit(x)

    # -- models of the data --------------------------------------------------------------------
    @property
    def code_size(self) -> int:
        """The size of the method's code (1 for a method without one)."""
        return self.method.latent_dim if isinstance(self.method, (Encodes, Decodes)) else 1

    @cached_property
    def pca(self) -> PCA:
        """PCA with as many components as the method has latent dimensions, fitted on train; at
        most min(N, D), the directions the train data have (pca_note says so)."""
        train = self.features(self.train[0])
        components = baseline_components(self.code_size, train)
        if self.pca_note:
            log.info("The PCA baseline has %d components: %s.", components, self.pca_note)
        return PCA(train, components)

    @cached_property
    def pca_note(self) -> str:
        """Why the PCA baseline has fewer components than the code, "" when it has as many."""
        return fewer_components_note(self.code_size, self.train[0])

    def pca_label(self, label: str) -> str:
        """`label` ("PCA, 20 components") with pca_note in parentheses where it has one."""
        return f"{label} ({self.pca_note})" if self.pca_note else label

    @cached_property
    def classifier(self) -> tuple[feature_net.FeatureClassifier, float]:
        """The data set's feature classifier and its test accuracy, trained once, then cached."""
        full_train = take(self.data.train, self.data.train.num_examples)
        # Back to the stored 8-bit pixels: the same data gives the same key and the same training
        # inputs whatever range a model was trained in ([0, 1] for a VAE, [-1, 1] for a GAN), so
        # every model of a data set is measured in one feature space.
        pixels = (self.unit(self.seen(full_train)) * 255).round().to(torch.uint8)
        images, labels = pixels.float() / 255, full_train.labels
        steps = self.cfg.classifier_steps
        key = feature_net.content_key(pixels, labels, steps)
        path = feature_net.cache_dir(self.cfg.data_dir) / key
        model = feature_net.FeatureClassifier(images.shape[1], self.data.num_classes)
        if path.is_file():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                model.load_state_dict(state["weights"])
                return model.to(self.device).eval(), float(state["test_accuracy"])
            except Exception as error:   # noqa: BLE001 - a cache: whatever broke it, retrain
                # The cache is written atomically, so only damage from outside gentool gets
                # here; the classifier is a pure function of the data and its key, so training
                # it again and overwriting the file loses nothing.
                log.warning("The cached feature classifier %s cannot be read (%s); training it "
                            "again.", path, type(error).__name__)
        log.info("Training the feature classifier of %s (%d steps, once per data set), cached "
                 "as %s", self.data.name, steps, path)
        model = feature_net.train_classifier(
            images, labels, self.data.num_classes, steps, seed=0,
            progress=lambda step, loss: log.info("Feature classifier: step %d/%d, loss %.3f",
                                                 step, steps, loss),
            progress_every=max(1, steps // 10))
        accuracy = feature_net.accuracy(model, self.unit(self.seen(self.test)), self.test.labels)
        log.info("Feature classifier test accuracy: %.4f", accuracy)
        state = {"weights": {k: v.cpu() for k, v in model.state_dict().items()},
                 "test_accuracy": accuracy, "version": feature_net.VERSION}
        atomic_write(path, lambda f: torch.save(state, f))
        return model, accuracy

    # -- samples -------------------------------------------------------------------------------
    @property
    def sampler_note(self) -> str | None:
        """Says how samples were drawn, when they were drawn from a model without a prior."""
        if "samples" not in self.__dict__:
            return None
        if self.rejected:
            return (f"the samples are the draws that the discriminator scores highest: the lowest "
                    f"{100 * self.rejected:.0f}% are dropped (rejection={self.rejected:g})")
        if isinstance(self.method, Samples):
            return None
        return "the model has no prior, so its samples decode a Gaussian fitted to its train codes"

    def can_sample(self) -> bool:
        return isinstance(self.method, Samples) or (
            isinstance(self.method, Encodes) and isinstance(self.method, Decodes))

    @cached_property
    def sample_labels(self) -> torch.Tensor | None:
        """The class each of the `n_samples` samples of a class-conditional model is drawn for:
        sample i gets class i mod C, so the classes are as balanced as n allows and each sample's
        class is known (the per-class accuracy of the samples suite needs it). None for a model
        that does not sample conditionally."""
        classes = conditional_classes(self.method)
        if classes is None:
            return None
        return torch.arange(self.cfg.n_samples, device=self.device) % classes

    @cached_property
    def samples(self) -> torch.Tensor:
        """`n_samples` samples of the model, in data units (of the classes `sample_labels` for a
        class-conditional model).

        A model without a prior (an autoencoder, PCA) is sampled the way such models usually
        are: decode codes from a Gaussian with the mean and covariance of its train codes.
        """
        n, size = self.cfg.n_samples, self.cfg.batch_size
        labels = self.sample_labels
        self.rejected = rejection_rate(self.method, self.cfg.rejection)
        if self.rejected > 0:
            return reject_lowest(self.method, n, self.rejected, labels=labels).float()
        if labels is not None:
            draw = lambda count, start: self.method.sample(  # noqa: E731
                count, labels=labels[start:start + count])
        elif isinstance(self.method, Samples):
            draw = lambda count, start: self.method.sample(count)  # noqa: E731
        else:
            prior = fitted_gaussian(self.encode(self.train[0]))
            draw = lambda count, start: self.method.decode(  # noqa: E731
                prior.sample((count,)).float())
        with torch.no_grad():
            return torch.cat([draw(min(size, n - start), start).float()
                              for start in range(0, n, size)])

    @torch.no_grad()
    def batched(self, function, x: torch.Tensor) -> torch.Tensor:
        """function applied to x in batches of `batch_size`, as float, concatenated."""
        size = self.cfg.batch_size
        return torch.cat([function(x[i:i + size]).float() for i in range(0, len(x), size)])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.batched(self.method.encode, x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.batched(self.method.reconstruct, x)

def fitted_gaussian(codes: torch.Tensor) -> torch.distributions.MultivariateNormal:
    """The Gaussian with the mean and covariance of codes [N, D] (a small ridge keeps it proper)."""
    codes = codes.double()
    dims = codes.shape[1]
    ridge = 1e-6 * torch.eye(dims, device=codes.device, dtype=codes.dtype)
    return torch.distributions.MultivariateNormal(
        codes.mean(0), covariance_matrix=torch.cov(codes.T).reshape(dims, dims) + ridge)
