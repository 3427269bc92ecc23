"""The sparse Res16UNet backbone: level shapes and strides, CPU forward/backward, the spconv shim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unscene3d.errors import InputError
from unscene3d.model.backbone import BackboneConfig, build_backbone, sparse_input
from unscene3d.model.sparse_backend import install_cpu_backward_shim, resolve_device, spconv_module
from unscene3d.voxelize import voxelize

TINY = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1, 1, 1, 1, 1, 1, 1, 1), init_dim=8,
                      stem_kernel=3, out_channels=5)


def random_scan(seed: int, count: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Points on a few planes, like walls and a floor, with negative coordinates too.
    points = rng.uniform(-0.7, 0.9, size=(count, 3))
    points[: count // 3, 2] = 0.0
    points[count // 3: 2 * count // 3, 0] = -0.7
    return points


def voxelized(seed: int, use_normals: bool = False):
    points = random_scan(seed)
    rng = np.random.default_rng(seed + 100)
    features = rng.uniform(-0.5, 0.5, size=(len(points), 6 if use_normals else 3))
    return voxelize(points, features, 0.02)


def test_every_level_has_the_right_voxels_and_channels():
    model = build_backbone(TINY, seed=0).eval()
    scans = [voxelized(0), voxelized(1)]
    batch = sparse_input(scans)
    with torch.no_grad():
        out = model(batch.tensor)
    assert sorted(out.levels) == [1, 2, 4, 8, 16]
    channels = {16: 16, 8: 16, 4: 8, 2: 12, 1: 12}
    for stride, level in out.levels.items():
        assert level.features.shape[1] == channels[stride]
        got = {tuple(row) for row in level.indices.numpy().tolist()}
        expected = set()
        for b, (vox, origin) in enumerate(zip(scans, batch.origins)):
            coarse = np.unique(np.floor_divide(vox.coords - origin, stride), axis=0)
            expected |= {(b, *row) for row in coarse.tolist()}
        assert got == expected, f"stride {stride}"
    # The finest decoder level and the head sit on the input voxels, in input order.
    assert torch.equal(out.levels[1].indices, batch.tensor.indices)
    assert out.output.features.shape == (batch.tensor.features.shape[0], 5)
    assert [lvl.features.shape[1] for lvl in out.multiscale()] == [16, 8, 12, 12]


def test_forward_backward_on_cpu_reaches_every_parameter():
    model = build_backbone(TINY, seed=0).train()
    batch = sparse_input([voxelized(2)])
    out = model(batch.tensor)
    loss = out.output.features.square().mean() + out.levels[2].features.mean()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_same_seed_same_network_and_output():
    batch = sparse_input([voxelized(3)])
    a = build_backbone(TINY, seed=7).eval()
    b = build_backbone(TINY, seed=7).eval()
    c = build_backbone(TINY, seed=8).eval()
    with torch.no_grad():
        fa, fb, fc = (m(batch.tensor).output.features for m in (a, b, c))
    assert torch.equal(fa, fb)
    assert not torch.equal(fa, fc)


def test_instance_norm_and_normals_inputs():
    config = BackboneConfig(**{**TINY.to_dict(), "norm": "instance", "use_normals": True})
    assert config.in_channels == 6
    model = build_backbone(config, seed=0)
    out = model(sparse_input([voxelized(4, use_normals=True), voxelized(5, use_normals=True)]).tensor)
    out.output.features.sum().backward()
    assert torch.isfinite(out.levels[2].features).all()


def test_paper_config_is_res16unet34c():
    config = BackboneConfig()
    assert config.planes == (32, 64, 128, 256, 256, 128, 96, 96)
    assert config.layers == (2, 3, 4, 6, 2, 2, 2, 2)
    assert config.feature_dim == 96
    model = build_backbone(config, seed=0)
    assert [len(stage) for stage in model.encoder] + [len(stage) for stage in model.decoder] == list(config.layers)
    # About 37.9M weights, the size of MinkowskiEngine's Res16UNet34C with a 5^3 stem.
    assert 37.0e6 < sum(p.numel() for p in model.parameters()) < 38.5e6


def test_config_round_trip_and_bad_values():
    assert BackboneConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(InputError, match="unknown backbone settings"):
        BackboneConfig.from_dict({**TINY.to_dict(), "depth": 3})
    with pytest.raises(InputError, match="norm"):
        BackboneConfig(norm="group")


def test_cpu_backward_shim_is_idempotent_and_cpu_safe():
    spconv_module()
    from spconv.pytorch import ops

    assert getattr(ops.get_current_stream, "unscene3d_shim", False)
    assert install_cpu_backward_shim() is False  # already installed
    if not torch.cuda.is_available():
        assert ops.get_current_stream() == 0
        with pytest.raises(InputError, match="CUDA"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cpu_strided_conv_matches_a_reference_every_time():
    # spconv 2.3.8's CPU conv intermittently drops contributions with several torch threads; the
    # shim runs it on one thread. Repeat a kernel-2 stride-2 conv against a plain numpy sum.
    spconv = spconv_module()
    torch.manual_seed(0)
    conv = spconv.SparseConv3d(3, 8, 2, stride=2, bias=False)
    weight = conv.weight.detach().numpy()  # (out, k, k, k, in)
    vox = voxelized(3)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for _ in range(30):
            x = sparse_input([vox]).tensor
            with torch.no_grad():
                out = conv(x)
            rows = {tuple(r): i for i, r in enumerate(out.indices.numpy().tolist())}
            expected = np.zeros(tuple(out.features.shape), dtype=np.float64)
            for (b, i, j, k), feature in zip(x.indices.numpy().tolist(), x.features.numpy()):
                expected[rows[(b, i // 2, j // 2, k // 2)]] += weight[:, i % 2, j % 2, k % 2, :] @ feature
            np.testing.assert_allclose(out.features.numpy(), expected, atol=1e-5)
    finally:
        torch.set_num_threads(threads)


def test_seeded_construction_repeats_and_leaves_the_callers_rng_alone():
    import torch

    from unscene3d.model.seeding import seeded

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = seeded(lambda: torch.nn.Linear(3, 2), 7)
    assert torch.rand(1) == expected_next  # the caller's stream did not move
    second = seeded(lambda: torch.nn.Linear(3, 2), 7)
    assert torch.equal(first.weight, second.weight)
    assert not torch.equal(first.weight, seeded(lambda: torch.nn.Linear(3, 2), 8).weight)
