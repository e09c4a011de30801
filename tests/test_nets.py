"""Encoders and decoders are sized from the data shape: every shape comes back unchanged."""

import pytest
import torch

from gentool.nets.conv import ConvDecoder, ConvEncoder, downsampling_plan
from gentool.nets.mlp import MLPDecoder, MLPEncoder

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 28, 20), (1, 5, 5)]


def test_downsampling_plan_halves_even_sides_down_to_about_four():
    assert downsampling_plan(8, 8) == [(4, 4)]
    assert downsampling_plan(28, 28) == [(14, 14), (7, 7)]
    assert downsampling_plan(32, 32) == [(16, 16), (8, 8), (4, 4)]
    assert downsampling_plan(64, 64) == [(32, 32), (16, 16), (8, 8), (4, 4)]
    assert downsampling_plan(28, 20) == [(14, 10), (7, 5)]
    assert downsampling_plan(5, 5) == []


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("params_per_pixel", [1, 2])
def test_conv_encoder_decoder_round_trip_shapes(shape, params_per_pixel):
    x = torch.rand(3, *shape)
    code = ConvEncoder(shape, out_features=10)(x)
    assert code.shape == (3, 10)
    out = ConvDecoder(10, shape, params_per_pixel=params_per_pixel, batch_norm=True)(code)
    assert out.shape == (3, shape[0] * params_per_pixel, *shape[1:])


@pytest.mark.parametrize("shape", SHAPES)
def test_mlp_encoder_decoder_round_trip_shapes(shape):
    x = torch.rand(2, *shape)
    code = MLPEncoder(shape, out_features=4, hidden=[16])(x)
    assert MLPDecoder(4, shape, hidden=[16], params_per_pixel=2)(code).shape == \
        (2, 2 * shape[0], *shape[1:])


def test_mlp_with_no_hidden_layer_is_one_linear_map():
    encoder = MLPEncoder((1, 4, 4), out_features=3, hidden=[])
    assert [type(m).__name__ for m in encoder.net] == ["Linear"]
