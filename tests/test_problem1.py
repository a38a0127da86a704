"""Problem 1: the residual-MLP gradients of hw2.ipynb against torch.autograd."""
import pytest
import torch

BAR = 1e-10  # the bar the notebook states; float64 rounding gives ~1e-15


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "sin", "elu"])
def test_recursion_matches_autograd(hw2, k, activation):
    # sizes and seeds the notebook does not print
    error = hw2.residual_grad_error(k, activation, seed=1000 + k,
                                    m=5, d_y=2, n=9)
    assert error < BAR


def test_check_has_power_to_fail(hw2):
    """Feeding g in place of g' must be caught: the check is not vacuous."""
    g, _ = hw2.ACTIVATIONS["tanh"]
    X, Y, Ws, bs = hw2.random_residual_problem(3, seed=7)
    wrong_W, wrong_b = hw2.residual_mlp_grads(X, Y, Ws, bs, g, g)
    ref_W, ref_b = hw2.autograd_grads(X, Y, Ws, bs, g)
    assert hw2.max_relative_error(wrong_W + wrong_b, ref_W + ref_b) > 1e-3


def test_boxed_closed_forms_for_k3(hw2):
    """The boxed (a) and (c) formulas, typed out here, equal the code."""
    g, g_prime = hw2.ACTIVATIONS["tanh"]
    X, Y, (W1, W2, W3), (b1, b2, b3) = hw2.random_residual_problem(
        3, m=6, d_y=4, n=11, seed=3)
    A1 = W1.T @ X + b1[:, None]
    H1 = g(A1) + X
    A2 = W2.T @ H1 + b2[:, None]
    H2 = g(A2) + H1
    G = 2 / X.shape[1] * (W3.T @ H2 + b3[:, None] - Y)
    D2 = g_prime(A2) * (W3 @ G)
    D1 = g_prime(A1) * (W3 @ G + W2 @ D2)
    boxed = [X @ D1.T, H1 @ D2.T, H2 @ G.T, D1.sum(1), D2.sum(1), G.sum(1)]
    dWs, dbs = hw2.residual_mlp_grads(X, Y, [W1, W2, W3], [b1, b2, b3],
                                      g, g_prime)
    for ours, formula in zip(dWs + dbs, boxed):
        torch.testing.assert_close(ours, formula, rtol=1e-13, atol=0)


def test_gradcheck_finite_differences(hw2):
    assert hw2.gradcheck_residual(k=4, activation="sin", seed=5)


def test_shapes_of_returned_gradients(hw2):
    g, g_prime = hw2.ACTIVATIONS["elu"]
    X, Y, Ws, bs = hw2.random_residual_problem(5, m=3, d_y=2, n=4, seed=2)
    dWs, dbs = hw2.residual_mlp_grads(X, Y, Ws, bs, g, g_prime)
    assert [d.shape for d in dWs] == [W.shape for W in Ws]
    assert [d.shape for d in dbs] == [b.shape for b in bs]


def test_hidden_width_not_m_raises(hw2):
    g, g_prime = hw2.ACTIVATIONS["tanh"]
    X, Y, Ws, bs = hw2.random_residual_problem(3, m=4, d_y=2, seed=0)
    Ws[0] = torch.zeros(4, 5, dtype=torch.float64)
    bs[0] = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"layer 1: W is \(4, 5\)"):
        hw2.residual_mlp_grads(X, Y, Ws, bs, g, g_prime)


def test_mismatched_output_layer_raises(hw2):
    g, g_prime = hw2.ACTIVATIONS["tanh"]
    X, Y, Ws, bs = hw2.random_residual_problem(2, m=4, d_y=2, seed=0)
    with pytest.raises(ValueError, match=r"layer 2"):
        hw2.residual_mlp_grads(X, Y[:1], Ws, bs, g, g_prime)
