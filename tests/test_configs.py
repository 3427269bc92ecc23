"""Run configurations: one diff that names nested keys, one way to write and read them back."""

from __future__ import annotations

import dataclasses
import json

import pytest

from unscene3d.errors import InputError
from unscene3d.model.checkpoint import Checkpoint
from unscene3d.train import pretrain, selftrain
from unscene3d.train.configs import checkpoint_config, config_diff, read_run_config, write_config


def test_diff_names_nested_keys_and_keys_on_one_side():
    saved = {"lr": 1e-3, "model": {"decoder": {"num_queries": 50, "sizes": [1, 2]}, "kind": "segment"}}
    new = {"lr": 1e-3, "model": {"decoder": {"num_queries": 60, "sizes": [1, 3]}}, "seed": 1}
    assert config_diff(saved, new) == ["model.decoder.num_queries", "model.decoder.sizes", "model.kind", "seed"]
    assert config_diff(saved, saved) == []
    # A section replaced by a plain value is named as a whole.
    assert config_diff({"model": {"a": 1}}, {"model": None}) == ["model"]


def test_diff_of_two_presets_names_the_changed_settings():
    paper = selftrain.preset_config("paper")
    fewer_queries = dataclasses.replace(
        paper, model=dataclasses.replace(paper.model, decoder=dataclasses.replace(paper.model.decoder, num_queries=7)))
    assert config_diff(paper.to_dict(), fewer_queries.to_dict()) == ["model.decoder.num_queries"]
    small = pretrain.preset_config("cpu-small")
    assert "backbone.layers" in config_diff(small.to_dict(), pretrain.preset_config("paper").to_dict())


@pytest.mark.parametrize("config", [selftrain.preset_config("segment"), pretrain.preset_config("cpu-small")])
def test_written_config_reads_back_equal(tmp_path, config):
    write_config(tmp_path / "config.json", config)
    assert read_run_config(tmp_path / "config.json", type(config)) == config
    assert read_run_config(tmp_path / "config.json", type(config), expected=config) == config


def test_reading_names_the_file_and_the_differing_keys(tmp_path):
    config = selftrain.preset_config("segment")
    path = tmp_path / "config.json"
    write_config(path, config)
    other = dataclasses.replace(config, densify=dataclasses.replace(config.densify, recut_masks=1), lr=0.5)
    with pytest.raises(InputError, match=r"config.json: .*another configuration \(differs in: densify.recut_masks, lr\)"):
        read_run_config(path, type(config), expected=other)
    path.write_text("{not json")
    with pytest.raises(InputError, match="config.json: unreadable run configuration"):
        read_run_config(path, type(config))
    path.write_text(json.dumps({"model": {}}))
    with pytest.raises(InputError, match="config.json: unreadable run configuration"):
        read_run_config(path, type(config))


def test_checkpoint_config_names_the_checkpoint(tmp_path):
    config = pretrain.preset_config("cpu-small")
    checkpoint = Checkpoint(tmp_path, {"train": config.to_dict()}, {}, None)
    assert checkpoint_config(checkpoint, pretrain.PretrainConfig) == config
    with pytest.raises(InputError, match=r"another configuration \(differs in: augment.crop_size, steps\)"):
        other = dataclasses.replace(config, steps=5, augment=dataclasses.replace(config.augment, crop_size=9.0))
        checkpoint_config(checkpoint, pretrain.PretrainConfig, expected=other)
    for broken in ({}, {"train": {"backbone": {}}}, {"train": [1]}):
        with pytest.raises(InputError, match="bad configuration in checkpoint"):
            checkpoint_config(Checkpoint(tmp_path, broken, {}, None), pretrain.PretrainConfig)
