"""Cross-network inversion: a network with permuted output channels recovers the permutation."""

import copy

import torch

from featflow.fv.optimize import feature_fn, visualize
from featflow.fv.param import make_render
from featflow.fv.targets import make_targets
from featflow.ifv.cross import invert_with
from tests.unit._fv_nets import conv_net


def test_inverting_with_a_channel_permuted_copy_recovers_the_permutation():
    torch.set_num_threads(1)
    net_a = conv_net(n_f=6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    net_b = copy.deepcopy(net_a)
    with torch.no_grad():  # channel j of B is channel perm[j] of A
        net_b.body[3].weight.copy_(net_a.body[3].weight[perm])
        net_b.body[3].bias.copy_(net_a.body[3].bias[perm])
    fn_a = feature_fn(net_a, "3", "maxpool_mean", None)
    fn_b = feature_fn(net_b, "3", "maxpool_mean", None)
    x = make_targets(0, 6, True, torch.Generator())["targets"]
    real = visualize(
        fn_a,
        (3, 16, 16),
        x,
        2,
        "rgb",
        adam_steps=100,
        lbfgs_steps=100,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    pred, y_b = invert_with(fn_b, make_render("rgb", (3, 16, 16)), real.params, 2, device=torch.device("cpu"))
    assert torch.allclose(y_b, real.responses[:, perm], atol=1e-5)
    # A's visualization of e_i is explained in B by B's copy of channel i, i.e. the j with perm[j] = i
    assert torch.equal(pred.argmax(dim=1), torch.argsort(perm))
