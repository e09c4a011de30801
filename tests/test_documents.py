"""Documents and vectors end to end: the multinomial likelihood and retrieval precision against
hand computations, losses refused where they do not fit the data, and AE/VAE/linear AE trained,
evaluated and compared on fixture files."""

import json
import math
import re

import pytest
import torch
from PIL import Image

from conftest import TINY, compose_config
from data_fixtures import write_text_folder, write_vector_files
from gentool.compare import compare
from gentool.errors import GentoolError
from gentool.evaluate import run_eval
from gentool.losses.likelihoods import Multinomial
from gentool.methods import build_method
from gentool.metrics.retrieval import retrieval_precision
from gentool.train import run_train


def test_multinomial_is_the_log_probability_of_the_counts():
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]])   # p = 1/6, 2/6, 3/6
    x = torch.tensor([[2.0, 0.0, 1.0]])                            # n = 3
    words = 2 * math.log(1 / 6) + math.log(3 / 6)
    coefficient = math.log(math.factorial(3) / (math.factorial(2) * math.factorial(1)))
    assert Multinomial().loss(logits, x).item() == pytest.approx(-(coefficient + words))
    assert Multinomial(coefficient=False).loss(logits, x).item() == pytest.approx(-words)
    reference = torch.distributions.Multinomial(3, logits=logits).log_prob(x)
    assert Multinomial().loss(logits, x).item() == pytest.approx(-reference.item(), rel=1e-6)
    assert torch.allclose(Multinomial().mean(logits), torch.tensor([[1 / 6, 2 / 6, 3 / 6]]))


@pytest.mark.parametrize("dataset,loss,message", [
    (["dataset=vectors", "dataset.shape=[6]", "dataset.source.path=x"], "multinomial",
     r"loss=multinomial models counts values but dataset=vectors holds real values"),
    (["dataset=digits"], "multinomial", "loss=multinomial models counts values but "
                                        "dataset=digits holds unit"),
    (["dataset=text_folder", "dataset.source.path=x", "dataset.num_classes=3"], "bernoulli",
     "loss=bernoulli models unit or binary values but dataset=text_folder holds counts"),
    (["dataset=vectors", "dataset.shape=[6]", "dataset.source.path=x"], "bernoulli",
     "use loss=gaussian or loss=mse\\.$"),
])
def test_losses_are_refused_where_they_do_not_fit_the_data(dataset, loss, message):
    cfg = compose_config("train", ["model=ae", f"loss={loss}", *dataset])
    with pytest.raises(GentoolError, match=message):
        build_method(cfg)


def test_bernoulli_takes_binary_vectors_and_gaussian_any():
    for values, loss in (("binary", "bernoulli"), ("real", "gaussian"), ("counts", "mse")):
        cfg = compose_config("train", ["model=vae" if loss != "mse" else "model=ae",
                                       f"loss={loss}", "dataset=vectors", "dataset.shape=[6]",
                                       "dataset.source.path=x", f"dataset.values={values}"])
        assert build_method(cfg).reconstruct(torch.rand(3, 6)).shape == (3, 6)


def test_retrieval_precision_by_hand():
    # Four codes: two pointing right (labels 0, 0), one up (1), one up-right-ish (1).
    codes = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [1.0, 1.2]])
    labels = torch.tensor([0, 0, 1, 1])
    # Nearest by cosine, the query left out: 0->1 (same), 1->0 (same), 2->3 (same), 3->2 (same).
    # Second nearest: 0->3 (other), 1->3 (other), 2->0 or 1... (other), 3->1 (other).
    result = retrieval_precision(codes, labels, ks=(1, 2, 3, 100))
    # At k >= 3 every other code is a neighbour, whatever the codes: those ks are left out.
    assert result == {1: 1.0, 2: pytest.approx(0.5)}
    # Cosine ignores length: scaling a code changes nothing.
    assert retrieval_precision(codes * torch.tensor([[5.0], [1.0], [3.0], [0.5]]), labels,
                               ks=(1, 2)) == {1: 1.0, 2: 0.5}


def test_compare_leaves_out_precision_the_codes_cannot_change():
    from gentool.compare import _precision_at

    codes = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [1.0, 1.2]])
    labels = torch.tensor([0, 0, 1, 1])
    assert _precision_at(codes, labels, 2) == pytest.approx(0.5)
    assert _precision_at(codes, labels, 3) is None   # all 3 other codes, whatever the codes


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("doc_runs")
    texts = write_text_folder(root, per_class=12)
    vectors = write_vector_files(root, n=60)
    text = ["dataset=text_folder", f"dataset.source.path={texts}", "dataset.num_classes=3",
            "dataset.source.vocabulary=20", f"data_dir={root}"]
    table = ["dataset=vectors", f"dataset.source.path={vectors / 'table.csv'}",
             "dataset.source.label_column=kind", "dataset.shape=[6]", "dataset.num_classes=3",
             "dataset.source.scale=standardise", f"data_dir={root}"]
    configs = {"doc_ae": ["model=doc_ae", *text], "doc_vae": ["model=doc_vae", "model.latent_dim=3",
                                                              *text],
               "vae": ["model=vae", "loss=gaussian", "model.latent_dim=2", *table],
               "ae_linear": ["model=ae_linear", "model.latent_dim=3", *table]}
    for name, overrides in configs.items():
        run_train(compose_config("train", [*TINY, "trainer.batch_size=8", *overrides]),
                  root / name)
    return root


@pytest.mark.parametrize("name", ["doc_ae", "doc_vae", "vae", "ae_linear"])
def test_vector_models_train_and_evaluate_with_retrieval(runs, name, capsys):
    metrics = json.loads((runs / name / "metrics.json").read_text())
    assert metrics["step"] == 6 and math.isfinite(metrics["test/loss"])
    results = run_eval(compose_config("eval", [
        "device=cpu", f"checkpoint={runs / name}/checkpoints/last.pt", f"data_dir={runs}",
        "iwae_k=5", "naive_mc.k_max=10", "naive_mc.examples=4", "probe_examples=200"]))
    n = int(re.search(r"retrieval precision@1 \(cosine, (\d+) test examples\)",
                      capsys.readouterr().out)[1])
    # Precision at k is kept only where the n test examples measure it (k < n - 1).
    for suffix in ("", "_pixels", "_pca"):
        for k in (1, 10, 100):
            key = f"eval/retrieval_p{k}{suffix}"
            assert (key in results) == (k < n - 1)
            assert key not in results or 0 <= results[key] <= 1
    assert ("eval/nelbo" in results) == name.endswith("vae")
    assert not any(key.startswith(("eval/fd", "eval/mse")) for key in results)


def test_retrieval_at_k_the_test_split_cannot_measure_is_left_out(runs, capsys, caplog):
    caplog.set_level("INFO", logger="gentool")
    results = run_eval(compose_config("eval", [
        "device=cpu", f"checkpoint={runs / 'doc_ae'}/checkpoints/last.pt", f"data_dir={runs}",
        "metrics=[representation]", "probe_examples=200"]))
    table = capsys.readouterr().out
    n = int(re.search(r"retrieval precision@1 \(cosine, (\d+) test examples\)", table)[1])
    assert n == 7   # the 36 documents' test split: @1 is measured, @10 and @100 are not
    assert "eval/retrieval_p1" in results
    assert "retrieval precision@10" not in table
    assert not any(key.startswith("eval/retrieval_p10") for key in results)
    assert ("Retrieval precision@10/100 left out: the test split has 7 examples, so at k >= 6 "
            "every other example is a neighbour") in caplog.text


def test_samples_of_vectors_are_refused_in_one_sentence(runs):
    with pytest.raises(GentoolError, match="metrics=samples needs image data or 2-D points"):
        run_eval(compose_config("eval", ["device=cpu", f"data_dir={runs}",
                                         f"checkpoint={runs / 'vae'}/checkpoints/last.pt",
                                         "metrics=[samples]"]))


def test_eval_with_no_suite_that_applies_says_what_each_needs(runs, tmp_path):
    # An autoencoder on unlabelled vectors: no likelihood, no images, no labels.
    run_train(compose_config("train", [
        *TINY, "trainer.batch_size=8", "model=ae", "loss=mse", "dataset=vectors",
        f"dataset.source.path={runs / 'vectors' / 'x.npy'}", "dataset.shape=[6]",
        f"data_dir={runs}"]), tmp_path / "ae")
    eval_of = ["device=cpu", f"data_dir={runs}", f"checkpoint={tmp_path / 'ae'}"]
    with pytest.raises(GentoolError) as refused:
        run_eval(compose_config("eval", eval_of))
    message = str(refused.value)
    assert message.startswith("no suite applies to model=ae on dataset=vectors, so there is "
                              "nothing to measure: likelihood needs ")
    assert "reconstruction needs image data" in message
    assert "representation needs a labelled data set" in message
    with pytest.raises(GentoolError, match=r"metrics=\[\] chooses no suite") as refused:
        run_eval(compose_config("eval", [*eval_of, "metrics=[]"]))
    assert "supports no suite" in str(refused.value)
    assert "metrics=[]" not in str(refused.value).split("chooses no suite")[1]


def test_compare_draws_codes_beside_pca(runs, tmp_path):
    out = compare([str(runs / "doc_ae"), str(runs / "doc_vae")], str(tmp_path / "c.png"),
                  examples=9, data_dir=str(runs))
    image = Image.open(out)
    assert image.width >= 3 * 512 and image.height >= 512
    with pytest.raises(GentoolError, match="compare runs of one data set"):
        compare([str(runs / "doc_ae"), str(runs / "vae")], str(tmp_path / "d.png"),
                data_dir=str(runs))
    with pytest.raises(GentoolError, match="no checkpoint at"):
        compare([str(tmp_path)], str(tmp_path / "e.png"), data_dir=str(runs))


def test_compare_replaces_a_symlink_named_by_out_not_its_target(runs, tmp_path):
    checkpoint = runs / "doc_ae" / "checkpoints" / "last.pt"
    before = checkpoint.read_bytes()
    link = tmp_path / "codes.png"
    link.symlink_to(checkpoint)
    compare([str(runs / "doc_ae")], str(link), examples=9, data_dir=str(runs))
    assert checkpoint.read_bytes() == before
    assert not link.is_symlink() and Image.open(link).format == "PNG"


def test_compare_gives_pca_precision_at_the_size_of_each_code(runs):
    from gentool.compare import _test_examples, compare_panels
    from gentool.data import build_data, take
    from gentool.metrics.pca import PCA

    panels, _, _ = compare_panels([str(runs / "vae"), str(runs / "ae_linear")], examples=100,
                                  data_dir=str(runs), k=2)
    assert [p.title.splitlines()[1].rpartition(":")[0] for p in panels[1:]] == [
        "retrieval precision@2 of the 2-D code", "retrieval precision@2 of the 3-D code"]
    heading, figures = panels[0].title.splitlines()[1].split(": ")
    assert heading == "retrieval precision@2 of 2 / 3 components"
    # The 3-component figure is PCA's with 3 components, fitted on the train split, on the same
    # test examples as the codes (vectors are used as loaded).
    dataset = compose_config("train", [
        "dataset=vectors", f"dataset.source.path={runs / 'vectors' / 'table.csv'}",
        "dataset.source.label_column=kind", "dataset.shape=[6]", "dataset.num_classes=3",
        "dataset.source.scale=standardise"]).dataset
    data = build_data(dataset, str(runs), torch.device("cpu"), batch_size=500, seed=0,
                      drop_last=False)
    test = _test_examples(data, 100)
    pca = PCA(take(data.train, data.train.num_examples)[0], 3)
    expected = retrieval_precision(pca.encode(test[0]).float(), test.labels, (2,))[2]
    assert float(figures.split(" / ")[1]) == pytest.approx(expected, abs=5e-4)
    assert panels[0].points.shape[1] == 2


def test_vector_models_sample_and_reconstruct_as_arrays(runs, tmp_path):
    import numpy as np

    from gentool.sample import run_sample

    common = ["device=cpu", f"data_dir={runs}", "n=5", "format=npy"]
    out = run_sample(compose_config("sample", [*common, f"checkpoint={runs / 'vae'}/checkpoints/last.pt",
                                               f"out={tmp_path / 's.npy'}"]))
    assert np.load(out).shape == (5, 6)
    out = run_sample(compose_config("sample", [*common, f"checkpoint={runs / 'doc_ae'}/checkpoints/last.pt",
                                               "mode=reconstruct", f"out={tmp_path / 'r.npy'}"]))
    words = np.load(out)
    assert words.shape == (5, 20) and np.allclose(words.sum(1), 1, atol=1e-5)   # probabilities
    with pytest.raises(GentoolError, match="20-D vectors, which have no picture; use format=npy"):
        run_sample(compose_config("sample", ["device=cpu", f"data_dir={runs}",
                                             f"checkpoint={runs / 'doc_vae'}/checkpoints/last.pt",
                                             f"out={tmp_path / 'x.png'}"]))
