"""Robustness on a trained network: over the sigmas where the network still reads its input, the sensitivity
of (nearly) every dictionary feature rises with sigma; a sigma that drives the network to chance is flagged."""

from __future__ import annotations

import torch

from featflow.config import DatasetSpec, ModelSpec, TrainSpec
from featflow.data import load_split, write_dataset
from featflow.dictionary.nmf import NMFDictionary, fit_nmf
from featflow.metrics import robustness
from featflow.models import forward_to, load_checkpoint
from featflow.models.train import train_model

SIGMAS = (0.01, 0.1, 0.5, 100.0)  # normalized-input units; the last one leaves no signal


def test_sensitivity_rises_over_the_unflagged_sigmas_of_a_trained_network(tmp_path) -> None:
    write_dataset(DatasetSpec(kind="digits", n_test=200, image_size=16, grayscale=True), tmp_path / "d.h5", {})
    spec = ModelSpec(arch="smallcnn", dataset="digits", width=8, train=TrainSpec(epochs=4, batch_size=32, lr=0.05))
    train_model(spec, tmp_path / "d.h5", tmp_path / "m.pt", device=torch.device("cpu"), attrs={"stage": "train"})
    model, _ = load_checkpoint(tmp_path / "m.pt")
    train, test = load_split(tmp_path / "d.h5", "train"), load_split(tmp_path / "d.h5", "test")
    with torch.no_grad():
        acts = forward_to(model, train.x[:600], "act").double()
    fit = fit_nmf(acts, 24, iterations=100, generator=torch.Generator().manual_seed(0), ridge=1e-2)
    dictionary = NMFDictionary(fit.atoms, 300, 1e-2)

    def to_image(x: torch.Tensor) -> torch.Tensor:  # noise in normalized-input units, as the stage adds it
        return x * model.std + model.mean

    def encode(x: torch.Tensor) -> torch.Tensor:
        return dictionary.encode(forward_to(model, to_image(x), "act").double())

    base = (test.x[:64] - model.mean) / model.std
    noise = robustness.Noise(0)
    with torch.no_grad():
        sens = torch.from_numpy(robustness.sensitivity(base, encode, SIGMAS, 8, noise))
        acc = robustness.noisy_accuracy(base, test.y[:64], lambda x: model(to_image(x)), SIGMAS, 8, noise)
    flagged = [bool(f) for f in robustness.at_chance(acc.tolist(), torch.bincount(test.y[:64]).tolist())]
    assert flagged[:2] == [False, False] and flagged[-1], (acc, flagged)  # sigma 0.5: ~54%, either way
    usable = [i for i, bad in enumerate(flagged) if not bad]
    alive = ~torch.isnan(sens[0])
    rises = torch.ones_like(alive)
    for lo, hi in zip(usable, usable[1:], strict=False):
        rises &= sens[hi] > sens[lo]
    assert alive.sum() >= 12
    assert rises[alive].float().mean() >= 0.9, sens[usable][:, alive]
