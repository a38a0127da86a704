"""Problem 3: closed forms, the three solvers, and scikit-learn's optimum."""
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

DTYPE = torch.float64


def random_problem(n=80, d=5, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=DTYPE)
    X[:, 0] = 1.0
    w = scale * torch.randn(d, generator=gen, dtype=DTYPE)
    y = (torch.rand(n, generator=gen, dtype=DTYPE)
         < torch.sigmoid(X @ w)).to(DTYPE)
    return X, y, w


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def cancer(hw2):
    return hw2.load_breast_cancer_split()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_closed_forms_match_autograd(hw2, seed):
    X, y, w = random_problem(seed=seed)
    grad_ref = torch.func.grad(hw2.logistic_loss)(w, X, y)
    hess_ref = torch.autograd.functional.hessian(
        lambda v: hw2.stable_logistic_loss(v, X, y), w)
    assert relative(hw2.logistic_grad(w, X, y), grad_ref) < 1e-12
    assert relative(hw2.logistic_hessian(w, X, y), hess_ref) < 1e-12
    diag = hw2.logistic_hessian_diag(w, X)
    assert relative(diag, hess_ref.diagonal()) < 1e-12
    # the loss is PyTorch's BCELoss(sum), the same function as the stable form
    bce, stable = hw2.logistic_loss(w, X, y), hw2.stable_logistic_loss(w, X, y)
    assert abs(bce - stable) < 1e-10


def test_hessian_is_positive_semidefinite(hw2):
    X, y, w = random_problem(n=4, d=6, seed=2)  # rank <= 4 < d: singular
    eigenvalues = torch.linalg.eigvalsh(hw2.logistic_hessian(w, X, y))
    assert eigenvalues.min() > -1e-12 * eigenvalues.max()


def sklearn_objective_minimizer(X, y, l2):
    """Independent reference: lbfgs on the same objective (C = 1 / l2)."""
    model = LogisticRegression(C=1 / l2, tol=1e-12, max_iter=100_000)
    model.fit(X[:, 1:].numpy(), y.numpy())
    return torch.from_numpy(np.r_[model.intercept_, model.coef_.ravel()])


@pytest.mark.parametrize("l2", [1.0, 0.5])
def test_ridge_solution_matches_sklearn(hw2, cancer, l2):
    X, y, _, _ = cancer
    ridge = hw2.ridge_weights(X.shape[1], l2)
    reference = hw2.objective(sklearn_objective_minimizer(X, y, l2), X, y,
                              ridge).item()
    for method, lr, n_iters in [("newton", 1.0, 30), ("newton", 0.1, 400),
                                ("diag_newton", 0.1, 600)]:
        fit = hw2.fit_logistic(X, y, method, lr=lr, n_iters=n_iters, l2=l2)
        ours = hw2.objective(fit["w"], X, y, ridge).item()
        assert abs(ours - reference) / reference <= 1e-6, method


def test_newton_step_one_converges_quadratically(hw2, cancer):
    X, y, _, _ = cancer
    fit = hw2.fit_logistic(X, y, "newton", lr=1.0, n_iters=50, l2=1.0,
                           tol=1e-8)
    steps = len(fit["history"]["grad_norm"]) - 1
    assert steps <= 12  # quadratic: about 9 steps from w = 0
    g = fit["history"]["grad_norm"]
    assert g[-1] <= 1e-8 and g[-2] > 1e-8


def test_ridge_never_touches_intercept(hw2):
    ridge = hw2.ridge_weights(4, 2.5)
    assert ridge.tolist() == [0.0, 2.5, 2.5, 2.5]


def test_single_steps_follow_the_update_rules(hw2):
    """Sum objective (unit = 1): gd steps along the SUM gradient."""
    X, y, w = random_problem(seed=4)
    ridge = hw2.ridge_weights(X.shape[1], 0.7)
    g = hw2.logistic_grad(w, X, y) + ridge * w
    H = hw2.logistic_hessian(w, X, y) + torch.diag(ridge)
    steps = {method: hw2.update(method, w, 0.1, X, y, ridge, 1.0, X * X)
             for method in ("gd", "newton", "diag_newton")}
    torch.testing.assert_close(steps["gd"][0], w - 0.1 * g)
    torch.testing.assert_close(steps["newton"][0],
                               w - 0.1 * torch.linalg.solve(H, g))
    torch.testing.assert_close(steps["diag_newton"][0],
                               w - 0.1 * g / H.diagonal())
    assert all(mu == 0.0 for _, mu in steps.values())  # H is regular here
    gd_mean, _ = hw2.update("gd", w, 0.1, X, y, ridge, 1 / len(y), X * X)
    torch.testing.assert_close(gd_mean, w - 0.1 * g / len(y))


def separable_with_duplicate_column(n=60, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=gen, dtype=DTYPE)
    y = (X[:, 0] + X[:, 1] > 0).to(DTYPE)
    X = torch.cat([torch.ones(n, 1, dtype=DTYPE), X, X[:, :1]], dim=1)
    return X, y


@pytest.mark.parametrize("method", ["gd", "newton", "diag_newton"])
@pytest.mark.parametrize("lr", [0.1, 1.0])
def test_no_nan_on_separable_data_with_duplicate_column(hw2, method, lr):
    X, y = separable_with_duplicate_column()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = hw2.fit_logistic(X, y, method, lr=lr, n_iters=60,
                               X_test=X, y_test=y)
    assert torch.isfinite(fit["w"]).all()
    for key, values in fit["history"].items():
        assert np.isfinite(values).all(), key
    if fit["damped_steps"]:
        assert any("damping was added" in str(w.message) for w in caught)
    if method == "newton":  # X^T S X is exactly singular here
        assert fit["damped_steps"] > 0


def test_returned_dict_shapes_and_keys(hw2, cancer):
    X, y, X_test, y_test = cancer
    fit = hw2.fit_logistic(X, y, "diag_newton", n_iters=7,
                           X_test=X_test, y_test=y_test)
    assert {"w", "history"} <= set(fit)
    assert fit["w"].shape == (X.shape[1],)
    assert set(fit["history"]) == {"train_loss", "test_loss", "test_acc",
                                   "grad_norm", "w_norm", "time"}
    for values in fit["history"].values():
        assert values.shape == (8,)  # iterates 0..7
    assert fit["history"]["time"][0] == 0
    assert np.all(np.diff(fit["history"]["time"]) >= 0)
    assert 0 <= fit["history"]["test_acc"].min() <= 1


def test_without_test_set_only_training_metrics(hw2, cancer):
    X, y, _, _ = cancer
    fit = hw2.fit_logistic(X, y, "gd", n_iters=3, reduction="mean")
    assert len(fit["history"]["train_loss"]) == 4
    assert len(fit["history"]["test_loss"]) == 0


def test_newton_invariant_to_linear_change_of_features(hw2):
    """Exact Newton gives the same predictions under any invertible change
    of features; diagonal Newton only under per-feature scaling, with or
    without a reordering of the features."""
    X, y, _ = random_problem(n=200, d=4, seed=8, scale=0.5)
    gen = torch.Generator().manual_seed(9)
    mixing = torch.eye(4, dtype=DTYPE) + 0.5 * torch.randn(
        4, 4, generator=gen, dtype=DTYPE)
    scaling = torch.diag(torch.tensor([1.0, 3.0, 0.2, 7.0], dtype=DTYPE))
    # column j of X @ permuted_scaling is scaling[j, j] * X[:, order[j]]
    order = [2, 0, 3, 1]
    permuted_scaling = torch.eye(4, dtype=DTYPE)[order].T @ scaling

    def predictions(method, A):
        w = hw2.fit_logistic(X @ A, y, method, lr=1.0, n_iters=4)["w"]
        return X @ A @ w

    base = {m: predictions(m, torch.eye(4, dtype=DTYPE))
            for m in ("newton", "diag_newton")}
    torch.testing.assert_close(predictions("newton", mixing), base["newton"])
    for A in (scaling, permuted_scaling):
        torch.testing.assert_close(predictions("diag_newton", A),
                                   base["diag_newton"])
    assert not torch.allclose(predictions("diag_newton", mixing),
                              base["diag_newton"], rtol=1e-3)


def test_separability_check(hw2, cancer):
    X, y, _, _ = cancer
    w = hw2.separating_hyperplane(X, y)
    assert w is not None
    assert ((2 * y - 1) * (X @ w)).min() >= 1 - 1e-7
    xor = torch.tensor([[1, 0, 0], [1, 1, 1], [1, 0, 1], [1, 1, 0]],
                       dtype=DTYPE)
    assert hw2.separating_hyperplane(xor, torch.tensor(
        [0.0, 0.0, 1.0, 1.0], dtype=DTYPE)) is None


def test_data_split(cancer):
    X, y, X_test, y_test = cancer
    assert X.shape == (398, 31) and X_test.shape == (171, 31)
    assert X.dtype == DTYPE and torch.all(X[:, 0] == 1)
    torch.testing.assert_close(X[:, 1:].mean(0), torch.zeros(30, dtype=DTYPE))
    assert abs(y.mean() - y_test.mean()) < 0.01  # stratified


def test_mean_reduction_is_gradient_descent_with_lr_over_n(hw2, cancer):
    X, y, _, _ = cancer
    N = len(y)
    mean = hw2.fit_logistic(X, y, "gd", lr=0.1, n_iters=50, reduction="mean")
    sum_small = hw2.fit_logistic(X, y, "gd", lr=0.1 / N, n_iters=50)
    # lr * (g / N) and (lr / N) * g differ only in the last bits
    torch.testing.assert_close(mean["w"], sum_small["w"], rtol=1e-12, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sum_same = hw2.fit_logistic(X, y, "gd", lr=0.1, n_iters=50)
    assert not torch.allclose(mean["w"], sum_same["w"], rtol=1e-2)


@pytest.mark.parametrize("method", ["newton", "diag_newton"])
@pytest.mark.parametrize("lr", [0.1, 1.0])
def test_second_order_steps_do_not_depend_on_reduction(hw2, cancer, method,
                                                       lr):
    X, y, _, _ = cancer
    with warnings.catch_warnings():  # diagonal Newton at lr 1 is damped
        warnings.simplefilter("ignore", RuntimeWarning)
        fits = {r: hw2.fit_logistic(X, y, method, lr=lr, n_iters=30, l2=1.0,
                                    reduction=r) for r in ("sum", "mean")}
    # g and H (or diag H) are both scaled by 1/N, which cancels in the step
    # only up to rounding of the 1/N scaling (~1e-16 per step, measured
    # ~1e-14 after 30 steps), so not bit for bit: 1e-10, not 1e-15
    torch.testing.assert_close(fits["mean"]["w"], fits["sum"]["w"],
                               rtol=1e-10, atol=0)
    assert fits["mean"]["damped_steps"] == fits["sum"]["damped_steps"]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_history_is_of_the_sum_objective(hw2, cancer, reduction):
    """Whatever the reduction, train_loss is sum BCE + (l2/2)||w[1:]||^2
    and grad_norm is the max-norm of its gradient (torch.autograd)."""
    X, y, _, _ = cancer
    l2 = 1.0
    fit = hw2.fit_logistic(X, y, "newton", lr=0.5, n_iters=3, l2=l2,
                           reduction=reduction)
    w = fit["w"].clone().requires_grad_()
    objective = (torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(X @ w), y, reduction="sum")
        + l2 / 2 * (w[1:] ** 2).sum())
    (grad,) = torch.autograd.grad(objective, w)
    history = fit["history"]
    # same terms, possibly summed in another order: float64 rounding
    assert history["train_loss"][0] == pytest.approx(len(y) * math.log(2),
                                                     rel=1e-12)
    assert history["train_loss"][-1] == pytest.approx(objective.item(),
                                                      rel=1e-12)
    assert history["grad_norm"][-1] == pytest.approx(
        grad.abs().max().item(), rel=1e-12)


def change(**updates):
    return lambda kwargs: kwargs | updates


def with_entry(name, index, value):
    def change(kwargs):
        data = kwargs[name].clone()
        data[index] = value
        return kwargs | {name: data}
    return change


@pytest.mark.parametrize("bad, error, message", [
    (change(lr=0.0), ValueError, r"^lr must be finite and > 0"),
    (change(lr=-0.1), ValueError, r"^lr must be finite and > 0"),
    (change(lr=math.nan), ValueError, r"^lr must be finite"),
    (change(lr=True), TypeError, r"^lr must be a real number, got bool"),
    (change(l2=-1.0), ValueError, r"^l2 must be finite and >= 0"),
    (change(n_iters=-1), ValueError, r"^n_iters must be >= 0"),
    (change(n_iters=2.5), TypeError, r"^n_iters must be an int"),
    (change(tol=-1e-8), ValueError, r"^tol must be finite and >= 0"),
    (change(method="adam"), ValueError, r"^method must be one of"),
    (change(reduction="max"), ValueError, r"^reduction must be 'sum' or"),
    (with_entry("X", (3, 2), math.nan), ValueError, r"^X contains NaN or inf"),
    (with_entry("X", (0, 1), math.inf), ValueError, r"^X contains NaN or inf"),
    (with_entry("y", 5, 2.0), ValueError, r"^y must hold only the labels 0"),
    (with_entry("y", 5, -1.0), ValueError, r"^y must hold only the labels"),
    (lambda k: k | {"y": k["y"][:-1]}, ValueError,
     r"^y has 397 labels but X has 398 rows"),
    (lambda k: k | {"y_test": None}, ValueError,
     r"pass X_test and y_test together"),
    (lambda k: k | {"X_test": k["X_test"][:, :5]}, ValueError,
     r"^X_test must have X's 31 columns"),
    (with_entry("X_test", (1, 1), math.nan), ValueError,
     r"^X_test contains NaN or inf"),
    (with_entry("y_test", 0, 3.0), ValueError, r"^y_test must hold only"),
])
def test_bad_input_names_the_argument(hw2, cancer, bad, error, message):
    X, y, X_test, y_test = cancer
    kwargs = bad(dict(X=X, y=y, method="gd", n_iters=2, X_test=X_test,
                      y_test=y_test))
    with pytest.raises(error, match=message):
        hw2.fit_logistic(**kwargs)


def test_integer_bool_and_numpy_labels_give_the_same_fit(hw2, cancer):
    X, y, X_test, y_test = cancer
    run = lambda X, y, y_test: hw2.fit_logistic(
        X, y, "newton", lr=1.0, n_iters=5, l2=1.0, X_test=X_test,
        y_test=y_test)
    reference = run(X, y, y_test)
    for labels in (lambda v: v.long(),  # scikit-learn's targets are int64
                   lambda v: v.bool(),
                   lambda v: v.numpy().astype(np.int64)):
        for design in (X, X.numpy()):
            fit = run(design, labels(y), labels(y_test))
            assert torch.equal(fit["w"], reference["w"])
            for key in ("train_loss", "test_loss", "test_acc", "grad_norm"):
                assert np.array_equal(fit["history"][key],
                                      reference["history"][key])


def test_gradient_descent_ending_above_its_start_warns(hw2):
    X, y, _ = random_problem(n=40, d=3, seed=5)  # not separable
    with pytest.warns(RuntimeWarning, match="above its start"):
        fit = hw2.fit_logistic(X, y, "gd", lr=10.0, n_iters=10)
    losses = fit["history"]["train_loss"]
    assert losses[-1] > losses[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        fit = hw2.fit_logistic(X, y, "gd", lr=0.01, n_iters=10)
    assert np.all(np.diff(fit["history"]["train_loss"]) < 0)
