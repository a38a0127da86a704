"""Problem 1: the residual-MLP gradients of hw2.ipynb against torch.autograd."""
import math

import pytest
import torch


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "sin", "elu"])
def test_recursion_matches_autograd(hw2, k, activation):
    # sizes and seeds the notebook does not print
    error = hw2.residual_grad_error(k, activation, seed=1000 + k,
                                    m=5, d_y=2, n=9)
    assert error < hw2.GRAD_BAR


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
    with pytest.raises(ValueError,
                       match=r"^Ws\[0\] must be of shape \(4, 4\), got \(4, 5\)"):
        hw2.residual_mlp_grads(X, Y, Ws, bs, g, g_prime)


def test_mismatched_output_layer_raises(hw2):
    g, g_prime = hw2.ACTIVATIONS["tanh"]
    X, Y, Ws, bs = hw2.random_residual_problem(2, m=4, d_y=2, seed=0)
    with pytest.raises(ValueError, match=r"^Ws\[1\] must be of shape \(4, 1\)"):
        hw2.residual_mlp_grads(X, Y[:1], Ws, bs, g, g_prime)


def test_max_relative_error_is_nan_aware(hw2):
    """A NaN error in any pair, not only the first, makes the result NaN,
    so `error < GRAD_BAR` fails instead of the NaN being skipped by max()."""
    exact = torch.ones(3, dtype=torch.float64)
    broken = torch.tensor([1.0, float("nan"), 1.0], dtype=torch.float64)
    for ours in ([exact, broken], [broken, exact]):
        error = hw2.max_relative_error(ours, [exact, exact])
        assert math.isnan(error) and not error < hw2.GRAD_BAR


def test_max_relative_error_edge_cases(hw2):
    zero, one = torch.zeros(2, dtype=torch.float64), torch.ones(2)
    assert hw2.max_relative_error([zero], [zero]) == 0.0  # 0/0: exact
    assert hw2.max_relative_error([one.double()], [zero]) == math.inf
    with pytest.raises(ValueError):  # unequal lists are never truncated
        hw2.max_relative_error([zero, zero], [zero])


def test_mse_loss_is_the_mean_over_samples_of_squared_norms(hw2):
    Y = torch.zeros(3, 2, dtype=torch.float64)
    assert hw2.mse_loss(Y + 2, Y).item() == 12.0  # (1/N) sum of squares


def test_numpy_inputs_are_converted(hw2):
    g, g_prime = hw2.ACTIVATIONS["tanh"]
    X, Y, Ws, bs = hw2.random_residual_problem(3, seed=4)
    reference = hw2.residual_mlp_grads(X, Y, Ws, bs, g, g_prime)
    as_numpy = hw2.residual_mlp_grads(X.numpy(), Y.numpy(),
                                      [W.numpy() for W in Ws], bs, g, g_prime)
    for ours, ref in zip(sum(as_numpy, []), sum(reference, [])):
        assert torch.equal(ours, ref)


@pytest.mark.parametrize("k", [0, -1, 2.0])
def test_random_problem_needs_a_depth_of_one_or_more(hw2, k):
    with pytest.raises((ValueError, TypeError), match=r"^k must be"):
        hw2.random_residual_problem(k)


def replace(name, make):
    """A change of one argument: make(old value) -> new value."""
    return lambda args: args | {name: make(args[name])}


def replace_list_item(name, index, make):
    def change(args):
        items = list(args[name])
        items[index] = make(items[index])
        return args | {name: items}
    return change


@pytest.mark.parametrize("change, error, message", [
    # one column of Y used to be broadcast silently against all 5 of Y_hat
    (replace("Y", lambda Y: Y[:, :1]), ValueError,
     r"^Y must be of shape \(\*, 5\), got \(2, 1\)"),
    (replace("X", lambda X: X[:, 0]), ValueError, r"^X must be of shape"),
    (replace("X", lambda X: X.to(torch.int64)), TypeError,
     r"^X must be a floating-point tensor, got Tensor .* torch.int64"),
    (replace("X", lambda X: X.tolist()), TypeError,
     r"^X must be a floating-point tensor, got list"),
    (replace("Y", lambda Y: Y.float()), TypeError, r"^Y must be torch.float64"),
    (replace("Y", lambda Y: Y * math.nan), ValueError, r"^Y must be finite"),
    (replace_list_item("Ws", 1, lambda W: W.float()), TypeError,
     r"^Ws\[1\] must be torch.float64"),
    (replace_list_item("bs", 2, lambda b: b.tolist()), TypeError,
     r"^bs\[2\] must be a floating-point tensor"),
    (lambda a: a | {"X": a["X"][:, :0], "Y": a["Y"][:, :0]}, ValueError,
     r"^X must be non-empty"),
    (replace("g", lambda g: "tanh"), TypeError, r"^g must be callable"),
    (replace("g_prime", lambda g: None), TypeError,
     r"^g_prime must be callable"),
    (replace("Ws", lambda Ws: Ws[0]), TypeError,
     r"^Ws and bs must be lists of tensors"),
    (replace("bs", lambda bs: bs[:2]), ValueError,
     r"^Ws and bs must be k >= 1 weights and k biases, got 3 and 2"),
])
def test_bad_input_names_the_argument(hw2, change, error, message):
    g, g_prime = hw2.ACTIVATIONS["tanh"]
    X, Y, Ws, bs = hw2.random_residual_problem(3, m=4, d_y=2, n=5, seed=1)
    args = change(dict(X=X, Y=Y, Ws=Ws, bs=bs, g=g, g_prime=g_prime))
    with pytest.raises(error, match=message):
        hw2.residual_mlp_grads(**args)
