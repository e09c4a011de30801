"""What a run shows in TensorBoard: every loss term, lr, throughput, grad norms, the pictures,
the embedding projector and the HParams summary."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY
from gentool.train import run_train


def events(run_dir):
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from conftest import compose_config

    run_dir = tmp_path_factory.mktemp("vae_run")
    run_train(compose_config("train", [*TINY, "model=vae"]), run_dir)
    return run_dir


def test_scalars_cover_every_loss_term_lr_throughput_and_grad_norm(vae_run):
    tags = set(events(vae_run).Tags()["scalars"])
    for term in ("loss", "recon", "kl", "elbo", "bits_per_dim", "mse", "images_per_second", "lr"):
        assert f"train/{term}" in tags, term
    for term in ("loss", "recon", "kl", "elbo", "bits_per_dim"):
        assert f"test/{term}" in tags, term
    assert "grad_norm/model" in tags
    steps = [e.step for e in events(vae_run).Scalars("train/loss")]
    assert steps == [2, 4, 6]  # every trainer.log_every steps


def test_pictures_of_a_vae(vae_run):
    images = set(events(vae_run).Tags()["images"])
    assert {"reconstructions", "samples", "latent/scatter", "latent/traversal"} <= images


def test_embedding_projector_has_labels_and_sprites(vae_run):
    config = (vae_run / "projector_config.pbtxt").read_text()
    assert "metadata_path" in config and "sprite" in config
    assert list(vae_run.glob("*/latent/metadata.tsv"))
    assert list(vae_run.glob("*/latent/sprite.png"))


def test_hparams_summary_is_written(vae_run):
    found = []
    for path in vae_run.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        try:
            found += accumulator.PluginTagToContent("hparams").keys()
        except KeyError:  # the scalars file: add_hparams writes a file of its own
            pass
    assert "_hparams_/session_start_info" in found


def test_hparams_name_the_model_and_read_the_final_metrics_from_the_test_curves(vae_run):
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = events(vae_run)
    content = accumulator.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model"].string_value == "vae"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    metrics = {info.name.tag for info in experiment.metric_infos}
    scalars = set(accumulator.Tags()["scalars"])
    assert "test/loss" in metrics and metrics <= scalars   # HParams' values come from the curves
    assert not [tag for tag in scalars if tag.startswith("final")]   # no single-point scalars


def test_the_traversal_says_which_dimensions_it_varies(vae_run):
    accumulator = events(vae_run)
    texts = accumulator.Tensors("latent/traversal_dims/text_summary")
    assert b"Traversing latent dimensions" in texts[-1].tensor_proto.string_val[0]
    picture = accumulator.Images("latent/traversal")[-1]
    assert picture.width >= 512   # enlarged from 11 x 8 pixels wide


def test_an_autoencoder_shows_no_samples(tmp_path):
    from conftest import compose_config

    run_train(compose_config("train", [*TINY, "model=ae"]), tmp_path)
    images = set(events(tmp_path).Tags()["images"])
    assert "reconstructions" in images and "latent/scatter" in images
    assert "samples" not in images and "latent/traversal" not in images
