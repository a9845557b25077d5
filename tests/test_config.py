"""Typed configs: typos, wrong types and bad values are one-line errors naming the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesionseg.config import Config, load_config
from lesionseg.io.checkpoint import save_config
from lesionseg.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "lesionseg" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_are_valid(path: Path) -> None:
    assert isinstance(load_config(path), Config)


def test_defaults_without_a_file() -> None:
    assert load_config().train.lr > 0


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, expected",
    [
        ("train:\n  lrr: 0.1\n", "train.lrr: unknown key"),
        ("trian:\n  lr: 0.1\n", "trian: unknown key"),
        ("train:\n  lr: fast\n", "train.lr: Input should be a valid number"),
        ("train:\n  lr: -1\n", "train.lr: Input should be greater than 0"),
        ("model:\n  channels: [8, 16]\n  strides: [2, 2]\n", "model: Value error, strides needs"),
        ("preprocess:\n  spacing_mm: [1, 0, 1]\n", "preprocess.spacing_mm: Value error, every spacing must be > 0"),
        ("synth:\n  contrasts: [FLAIR]\n", "synth.contrasts: Value error, unknown contrast"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid YAML at line [23]"):
        load_config(_write(tmp_path, "train:\n  lr: [1,\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="absent.yaml: no such config file or shipped config"):
        load_config(tmp_path / "absent.yaml")


def test_shipped_config_by_name() -> None:
    from lesionseg.config import configs_dir, resolve_config

    assert resolve_config("demo") == configs_dir() / "demo.yaml" == resolve_config("demo.yaml")
    assert load_config("tiny").model.channels == [8, 16, 32]
    with pytest.raises(ConfigError, match="shipped: .*demo"):
        resolve_config("no-such-config")


def test_overrides_keep_types(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, "train:\n  lr: 0.1\n"),
        overrides=["train.lr=1e-3", "train.patch_size=[32, 32, 16]", "augment.enabled=false", "data.contrasts=[T2w,T1w]"],
    )
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.patch_size == (32, 32, 16)
    assert cfg.augment.enabled is False
    assert cfg.data.contrasts == ["T2w", "T1w"]


def test_override_with_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"train\.learning_rate: unknown key"):
        load_config(overrides=["train.learning_rate=0.1"])


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(overrides=["train.lr"])


def test_saved_config_loads_back(tmp_path: Path) -> None:
    cfg = load_config(overrides=["train.steps=7", "synth.contrasts=[T2w, PSIR]"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg
