# Plumbing of the temporal rules (temporal.smk): the epochs an experiment follows, where their files lie, the
# stages' params. Functions only (snakemake --lint: no functions beside rules).
TX_CFG = CFG.get("temporal")


def tx_train(name):
    """The train section of an experiment's model."""
    return CFG["models"][experiment(name)["model"]]["train"]


def tx_epochs(name):
    """Every epoch followed over training: the checkpoints (0: the untrained control), then the final model's."""
    train = tx_train(name)
    return sorted(set(train["checkpoints"]) | {train["epochs"]})


def tx_sediment_epochs(name):
    """The epochs with a dictionary of their own (one recipe): the trained checkpoints and the final model."""
    return [e for e in tx_epochs(name) if e > 0]


def tx_checkpoint(wc):
    """The network of an epoch: the checkpoint, or at the final epoch the final model (the train rule's)."""
    model = experiment(wc.experiment)["model"]
    if int(wc.epoch) == tx_train(wc.experiment)["epochs"]:
        return f"results/models/{model}.pt"
    return f"results/models/{model}/epoch_{wc.epoch}.pt"


def tx_activations(split):
    """A checkpoint's activations of ``split``; at the final epoch, the final model's (the activations rule's)."""

    def path(wc):
        if int(wc.epoch) == tx_train(wc.experiment)["epochs"]:
            return f"results/{wc.experiment}/activations/{split}.h5"
        return f"results/{wc.experiment}/temporal/epoch_{wc.epoch}/activations_{split}.h5"

    return path


def tx_spec(wc, complexity=(), temporal=(), layers=False):
    """The complexity and temporal values a temporal stage reads (and the experiment's layers when it does)."""
    return {
        "complexity": {key: CX_CFG[key] for key in complexity},
        "temporal": {key: TX_CFG[key] for key in temporal},
        "experiment": {"layers": experiment(wc.experiment)["layers"]} if layers else {},
    }
