"""Transfer learning: weights copied by name and shape with a report, freezing modes, per-block learning rates,
contrast-aware normalisation, and the contrast recorded in the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchio as tio

from lesionseg.config import ModelConfig, PreprocessConfig, TransferConfig, load_config
from lesionseg.errors import ConfigError, TrainingError
from lesionseg.io.checkpoint import load_model
from lesionseg.networks.blocks import network_blocks
from lesionseg.networks.factory import build_network
from lesionseg.training.optim import build_loss, build_optimizer
from lesionseg.training.trainer import train, train_step
from lesionseg.training.transfer import apply_freezing, load_matching_weights, parameter_groups, trainable_blocks
from lesionseg.transforms.preprocessing import preprocessing
from tests.conftest import CONFIGS

TINY = ModelConfig(channels=[8, 16, 32], strides=[2, 2])


def _steps(network: torch.nn.Module, optimizer: torch.optim.Optimizer, count: int = 3) -> None:
    generator = torch.Generator().manual_seed(0)
    loss_function = build_loss(load_config(CONFIGS / "tiny.yaml").train)
    for step in range(count):
        images = torch.randn((2, 1, 16, 16, 32), generator=generator)
        labels = (torch.rand((2, 1, 16, 16, 32), generator=generator) > 0.9).float()
        train_step(network, images, labels, loss_function=loss_function, optimizer=optimizer,
                   scaler=torch.amp.GradScaler("cuda", enabled=False), grad_clip=1.0, amp=False, step=step)


def test_blocks_cover_every_parameter_in_order() -> None:
    for config in (TINY, ModelConfig(architecture="dynunet", channels=[8, 16, 32, 64], strides=[2, 2, 2])):
        network = build_network(config)
        blocks = network_blocks(network)
        assert sorted(n for b in blocks for n in b.parameters) == sorted(n for n, _ in network.named_parameters())
        assert blocks[0].name == "encoder0" and blocks[-1].name == "head"
        assert [b.role for b in blocks].index("bottleneck") == len(config.channels) - 1


def test_frozen_parameters_do_not_change_and_trainable_ones_do() -> None:
    network = build_network(TINY)
    trainable = apply_freezing(network, TransferConfig(mode="frozen_encoder", init_from=Path("x")), step=0)
    assert trainable == ["decoder1", "head"]
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    _steps(network, build_optimizer(network, load_config(CONFIGS / "tiny.yaml").train))
    encoder = {n for b in network_blocks(network) if b.is_encoder_side for n in b.parameters}
    for name, parameter in network.named_parameters():
        changed = not torch.equal(before[name], parameter.detach())
        assert changed == (name not in encoder), name


def test_progressive_unfreezing_goes_from_head_to_input() -> None:
    blocks = network_blocks(build_network(TINY))
    config = TransferConfig(mode="progressive", unfreeze_every=10, init_from=Path("x"))
    assert [b.name for b in trainable_blocks(blocks, config, 0)] == ["head"]
    assert [b.name for b in trainable_blocks(blocks, config, 10)] == ["decoder1", "head"]
    assert len(trainable_blocks(blocks, config, 1000)) == len(blocks)


def test_discriminative_learning_rates() -> None:
    network = build_network(TINY)
    groups = parameter_groups(network, TransferConfig(mode="discriminative", lr_decay=0.5), lr=1e-3)
    assert [g["block"] for g in groups] == ["encoder0", "encoder1", "bottleneck", "decoder1", "head"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 / 16, 1e-3 / 8, 1e-3 / 4, 1e-3 / 2, 1e-3])
    optimizer = build_optimizer(network, load_config(CONFIGS / "tiny.yaml").train, groups)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([g["lr"] for g in groups])


def test_loading_reports_loaded_skipped_and_new() -> None:
    source = build_network(TINY).state_dict()
    other = build_network(ModelConfig(channels=[8, 16, 64], strides=[2, 2]))  # deeper layers differ in width
    report = load_matching_weights(other, source, origin="src")
    assert report.loaded and report.new and report.skipped
    assert all("shape" in why for why in report.new.values())
    assert torch.equal(other.state_dict()["model.0.conv.weight"], source["model.0.conv.weight"])
    assert "loaded" in report.summary() and "newly initialised" in report.summary()

    fresh = build_network(TINY)
    report = load_matching_weights(fresh, source, reinit_head=True)
    assert set(report.new) == {"model.2.conv.weight", "model.2.conv.bias"}
    assert not torch.equal(fresh.state_dict()["model.2.conv.weight"], source["model.2.conv.weight"])
    with pytest.raises(TrainingError, match="no tensor matches"):
        load_matching_weights(fresh, {"something.else": torch.zeros(1)})


def test_psir_signs_survive_normalisation() -> None:
    data = np.zeros((20, 20, 20), dtype=np.float32)
    data[5:10] = -300.0 + np.random.default_rng(0).uniform(0, 50, (5, 20, 20))  # CSF-like negative
    data[10:15] = 500.0 + np.random.default_rng(1).uniform(0, 50, (5, 20, 20))  # cord-like positive
    image = tio.ScalarImage(tensor=torch.from_numpy(data)[None], affine=np.eye(4))
    config = PreprocessConfig(spacing_mm=None)
    signed = preprocessing(config, "PSIR")(image).data[0].numpy()
    assert np.all(signed[data == 0] == 0) and np.all(signed[data < 0] < 0) and np.all(signed[data > 0] > 0)
    zscored = preprocessing(config, "T2w")(image).data[0].numpy()
    assert np.all(zscored[data == 0] != 0)  # z-scoring moves zero: the reason PSIR is treated differently


def test_init_from_trains_frozen_encoder_and_records_contrast(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", [
        "data.contrasts=[PSIR]", f"transfer.init_from={trained_tiny_model}", "transfer.mode=frozen_encoder",
        "train.steps=6", "train.val_every=3",
    ])
    result = train(config, data_root=phantom_dataset, run_dir=tmp_path / "run")
    source, tuned = load_model(trained_tiny_model), load_model(result.model_dir)
    metadata = json.loads((result.model_dir / "metadata.json").read_text())
    # T2w lesions are brighter than the cord around them, PSIR ones darker: the T2w network reads PSIR inverted
    polarity = metadata["transfer"]["polarity"]
    assert source.metadata.label_contrast > 0 > metadata["label_contrast"]
    assert polarity["chosen"] == "invert" and polarity["inverted"] == ["model.0.conv"]
    encoder = {n for b in network_blocks(build_network(tuned.config.model)) if b.is_encoder_side for n in b.parameters}
    for name in source.state_dict:
        expected = -source.state_dict[name] if name == "model.0.conv.weight" else source.state_dict[name]
        same = torch.equal(expected, tuned.state_dict[name])
        assert same == (name in encoder), name
    assert metadata["contrasts"] == ["PSIR"]
    assert metadata["transfer"]["source_contrasts"] == ["T2w"] and metadata["transfer"]["mode"] == "frozen_encoder"
    assert metadata["contrast_normalization"]["PSIR"] == "signed"


@pytest.mark.parametrize("config", [
    TINY, ModelConfig(channels=[8, 16, 32], strides=[2, 2], num_res_units=1),  # the residual branch reads it too
    ModelConfig(architecture="dynunet", channels=[8, 16, 32], strides=[2, 2]),
], ids=["unet", "residual-unet", "dynunet"])
def test_inverting_the_input_convolutions_computes_on_the_negated_image(config: ModelConfig) -> None:
    from lesionseg.training.transfer import invert_input

    torch.manual_seed(0)
    network = build_network(config).eval()
    image = torch.randn(1, 1, 16, 16, 32)
    with torch.no_grad():
        on_negated = network(-image)
        inverted = invert_input(network, image)
        assert network(image).allclose(on_negated, atol=1e-5)
        assert not network(image).allclose(on_negated.neg(), atol=1e-3)  # the network is not odd: the test can fail
    assert len(inverted) == (2 if config.num_res_units else 1)


def test_label_contrast_is_the_sign_of_the_label_against_its_surroundings() -> None:
    from lesionseg.training.transfer import label_contrast

    images = torch.randn(2, 1, 12, 12, 12) * 0.1
    labels = torch.zeros(2, 1, 12, 12, 12)
    labels[0, 0, 4:7, 4:7, 4:7] = 1
    images[0][labels[0] > 0] += 1.0  # a bright lesion in the first image; the second has none
    total, count = label_contrast(images, labels)
    assert count == 1 and total > 2
    total, count = label_contrast(-images, labels)
    assert count == 1 and total < -2
    assert label_contrast(images, torch.zeros_like(labels)) == (0.0, 0)


def test_polarity_keep_and_unknown_source_leave_the_weights(trained_tiny_model: Path) -> None:
    from lesionseg.training.transfer import align_polarity

    source = load_model(trained_tiny_model)
    network = build_network(source.config.model)
    before = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    image = torch.randn(1, 1, 16, 16, 32)
    config = TransferConfig(init_from=trained_tiny_model)
    same_sign = align_polarity(network, config, source.metadata, 0.8, image)
    unknown = align_polarity(network, config, source.metadata, None, image)
    kept = align_polarity(network, TransferConfig(init_from=trained_tiny_model, polarity="keep"), source.metadata, -0.8, image)
    assert same_sign["chosen"] == unknown["chosen"] == kept["chosen"] == "keep"
    assert all(torch.equal(before[name], tensor) for name, tensor in network.state_dict().items())
    opposite = align_polarity(network, config, source.metadata, -0.8, image)
    assert opposite["chosen"] == "invert" and torch.equal(network.state_dict()["model.0.conv.weight"],
                                                          -before["model.0.conv.weight"])


def test_freezing_without_a_source_is_a_config_error(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["transfer.mode=frozen_encoder"])
    with pytest.raises(ConfigError, match="need transfer.init_from"):
        train(config, data_root=phantom_dataset, run_dir=tmp_path / "run")


def test_rescaling_keeps_the_function_and_restores_initial_norms() -> None:
    from lesionseg.training.transfer import normalised_convolutions, rescale_to_initial_norms

    torch.manual_seed(0)
    network, fresh = build_network(TINY).eval(), build_network(TINY).eval()
    with torch.no_grad():
        for layer in normalised_convolutions(network):
            layer.weight.mul_(5.0)  # as a trained network's weights grow
    image = torch.randn(1, 1, 16, 16, 32)
    with torch.no_grad():
        before = network(image)
        assert rescale_to_initial_norms(network, fresh) == 4  # every conv but the head feeds an instance norm
        after = network(image)
    torch.testing.assert_close(after, before, rtol=1e-3, atol=1e-3)
    for layer, reference in zip(normalised_convolutions(network), normalised_convolutions(fresh), strict=True):
        assert float(layer.weight.detach().norm()) == pytest.approx(float(reference.weight.detach().norm()), rel=1e-5)


def test_inversion_augmentation_negates_the_image_only() -> None:
    from lesionseg.transforms.augmentation import RandomInversion

    subject = tio.Subject(image=tio.ScalarImage(tensor=torch.randn(1, 4, 4, 4)),
                          label=tio.LabelMap(tensor=torch.ones(1, 4, 4, 4, dtype=torch.uint8)))
    inverted = RandomInversion(p=1.0)(subject)
    assert torch.equal(inverted["image"].data, -subject["image"].data)
    assert torch.equal(inverted["label"].data, subject["label"].data)
