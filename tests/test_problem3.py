"""Problem 3: closed forms, exact losses, the three methods, scikit-learn's
optimum, the data split, the timings, Figure 2 and the table.

Tolerances come from float64 rounding (EPS) or from the problem itself
(its solvers' distance to the optimum), never from the values of a run."""
import html.parser
import inspect
import math
import re
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from matplotlib.backends.backend_agg import FigureCanvasAgg

from drawing import drawn_texts

from project import MAX_OUTPUT_LINE

DTYPE = torch.float64
EPS = torch.finfo(DTYPE).eps


def random_problem(n=80, d=5, seed=0, scale=1.0):
    """A float64 problem with a ones column and labels drawn from the
    model (so not separable unless n is small)."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=DTYPE)
    X[:, 0] = 1.0
    w = scale * torch.randn(d, generator=gen, dtype=DTYPE)
    y = (torch.rand(n, generator=gen, dtype=DTYPE)
         < torch.sigmoid(X @ w)).to(DTYPE)
    return X, y, w


def separable_problem(n=120, d=4, seed=0, margin=0.5):
    """Labels of a hyperplane, points within `margin` of it dropped: the
    classes are linearly separable by construction."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(3 * n, d, generator=gen, dtype=DTYPE)
    X[:, 0] = 1.0
    w = torch.randn(d, generator=gen, dtype=DTYPE)
    z = X @ w / torch.linalg.vector_norm(w[1:])
    keep = z.abs() > margin
    return X[keep][:n], (z[keep][:n] > 0).to(DTYPE)


def overlapping_problem(n=400, d=4, seed=0, shift=0.6):
    """Two Gaussian classes whose means are 2 * shift apart: overlapping."""
    gen = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=gen, dtype=DTYPE) < 0.5).to(DTYPE)
    Z = torch.randn(n, d - 1, generator=gen, dtype=DTYPE)
    Z += shift * (2 * y[:, None] - 1)
    return torch.cat([torch.ones(n, 1, dtype=DTYPE), Z], dim=1), y


def reference_loss(w, X, y):
    """Independent of the notebook: sum of BCE from the logits."""
    return F.binary_cross_entropy_with_logits(X @ w, y, reduction="sum")


def softplus_sum(w, X, y):
    """Float64 reference sum_n softplus(z_n) - y_n z_n, z = X w, per term
    by numpy's logaddexp and summed exactly (math.fsum), with the bound on
    the rounding error of a float64 evaluation of the same sum: a few
    roundings of size |z_n| + 1 per term, plus summation (N EPS sum)."""
    z = (X @ w).numpy()
    terms = np.logaddexp(0.0, z) - y.numpy() * z
    value = math.fsum(terms)
    bound = EPS * (4 * np.sum(np.abs(z) + 1) + len(z) * np.sum(np.abs(terms)))
    return value, bound


@pytest.fixture(scope="module")
def cancer(hw2):
    return hw2.load_breast_cancer_split()


@pytest.fixture(scope="module")
def raw_cancer():
    data = load_breast_cancer()
    return data.data, data.target


# Loss, gradient, Hessian

@pytest.mark.parametrize("seed", [11, 12, 13])
def test_closed_forms_match_autograd(hw2, seed):
    """Gradient, Hessian and diag(H) in float64 against torch.autograd of
    an independent loss, within the notebook's own bar GRAD_BAR."""
    X, y, w = random_problem(seed=seed)
    grad = torch.func.grad(reference_loss)(w, X, y)
    hess = torch.autograd.functional.hessian(
        lambda v: reference_loss(v, X, y), w)
    for ours, ref in ((hw2.logistic_grad(w, X, y), grad),
                      (hw2.logistic_hessian(w, X), hess),
                      (hw2.logistic_hessian_diag(w, X), hess.diagonal())):
        assert ours.dtype == DTYPE and ours.shape == ref.shape
        assert ((ours - ref).abs().max() / ref.abs().max()).item() \
            < hw2.GRAD_BAR
    assert hw2.logistic_loss(w, X, y).item() == pytest.approx(
        reference_loss(w, X, y).item(), rel=hw2.GRAD_BAR)


def test_sigmoid_slope_has_no_cancellation(hw2):
    """s(1 - s) for |z| up to 700 to full relative precision, where
    s * (1 - s) computed naively is 0 or wrong."""
    z = torch.tensor([-700.0, -40.0, -5.0, 0.0, 5.0, 40.0, 700.0],
                     dtype=DTYPE)
    exact = torch.exp(-z.abs()) / (1 + torch.exp(-z.abs())) ** 2
    slope = hw2.sigmoid_slope(z)
    assert torch.all(slope > 0)
    assert ((slope - exact).abs() / exact).max() <= 8 * EPS
    assert torch.equal(slope, hw2.sigmoid_slope(-z))  # symmetric


def test_hessian_is_symmetric_positive_semidefinite(hw2):
    X, y, w = random_problem(n=4, d=6, seed=2)  # rank <= 4 < d: singular
    H = hw2.logistic_hessian(w, X)
    # symmetric up to the rounding of its sums: N EPS |X|^T S |X|
    S = hw2.sigmoid_slope(X @ w)
    bound = len(X) * EPS * (X.abs().T @ (S[:, None] * X.abs()))
    assert torch.all((H - H.T).abs() <= bound)
    eigenvalues = torch.linalg.eigvalsh(H)
    assert eigenvalues.min() >= -X.shape[1] * EPS * eigenvalues.max()


def test_closed_form_errors_reports_a_wrong_gradient(hw2, monkeypatch):
    """The notebook's check is below its bar, and would catch an error."""
    errors = hw2.closed_form_errors()
    assert set(errors) >= {"gradient vs autograd", "Hessian", "diag(H)"}
    assert max(errors.values()) < hw2.GRAD_BAR
    monkeypatch.setattr(hw2, "logistic_grad",
                        lambda w, X, y: 1.001 * X.T @ (torch.sigmoid(X @ w)
                                                       - y))
    assert hw2.closed_form_errors()["gradient vs autograd"] > hw2.GRAD_BAR


# Exact losses at saturation

def saturated():
    """The smallest whole z at which float64 sigmoid(z) rounds to 1."""
    z = 1.0
    while torch.sigmoid(torch.tensor(z, dtype=DTYPE)).item() < 1.0:
        z += 1.0
    return z


def test_one_sample_losses_at_saturation(hw2):
    z_one = saturated()
    for z in (5.0, 30.0, z_one, 120.0, 800.0):
        clamped, exact = hw2.one_sample_losses(z)
        true = z + math.log1p(math.exp(-z))  # softplus(z), label 0
        assert exact == pytest.approx(true, rel=2 * EPS)
        if z >= z_one:  # BCELoss takes log(1 - 1): clamped at -100
            assert clamped == 100.0
        else:  # log(1 - s): 1 - s = sigmoid(-z) carries an error of EPS
            s_minus = torch.sigmoid(torch.tensor(-z, dtype=DTYPE)).item()
            assert abs(clamped - true) <= 2 * EPS / s_minus


@pytest.mark.parametrize("scale", [1.0, 30.0, 300.0, 3000.0])
def test_losses_exact_at_saturation(hw2, scale):
    """Logits up to |z| = scale, a sixth of the labels confidently wrong:
    logistic_loss equals the float64 reference softplus(z) - y z within
    the reference's rounding bound; BCELoss of sigmoid does not once
    sigmoid saturates."""
    X, y = separable_problem(seed=3)
    w = hw2.separating_hyperplane(X, y)
    w = scale * w / (X @ w).abs().max()
    wrong = y.clone()
    wrong[::6] = 1 - wrong[::6]
    for labels in (y, wrong):
        value, bound = softplus_sum(w, X, labels)
        assert abs(hw2.logistic_loss(w, X, labels).item() - value) <= bound
    value, bound = softplus_sum(w, X, wrong)
    clamped = hw2.bce_of_sigmoid(w, X, wrong).item()
    if scale >= 300:  # far past saturation: off by far more than rounding
        assert abs(clamped - value) > 1e6 * bound
    if scale == 1.0:  # no saturation: the same sum (notebook's bar)
        assert clamped == pytest.approx(value, rel=hw2.GRAD_BAR)


def test_recorded_losses_exact_at_saturation(hw2):
    """On data separable by construction, Newton drives logits past
    saturation; the losses fit_logistic records still equal the float64
    reference at the returned w."""
    X, y = separable_problem(seed=4)
    X_test, y_test = X[:30], 1 - y[:30]  # every test sample wrong
    w, h = hw2.fit_logistic(X, y, "newton", X_test, y_test, lr=1.0,
                            n_iters=40)
    assert (X_test @ w).abs().max().item() > saturated()
    for recorded, (A, b) in ((h["train_loss"][-1], (X, y)),
                             (h["test_loss"][-1], (X_test, y_test))):
        value, bound = softplus_sum(w, A, b)
        assert abs(recorded - value) <= bound
    assert abs(hw2.bce_of_sigmoid(w, X_test, y_test).item()
               - h["test_loss"][-1]) > 1e-3 * h["test_loss"][-1]


# The update rules

REFERENCE_STEPS = {  # direction d of w <- w - lr * d, from autograd's g, H
    "gd": lambda g, H: g,
    "newton": lambda g, H: torch.linalg.solve(H, g),
    "diag_newton": lambda g, H: g / H.diagonal(),
}


def test_single_steps_follow_the_update_rules(hw2):
    X, y, w = random_problem(seed=4)
    g = torch.func.grad(reference_loss)(w, X, y)
    H = torch.autograd.functional.hessian(lambda v: reference_loss(v, X, y), w)
    # well conditioned: GRAD_BAR is far above cond(H) EPS
    assert torch.linalg.cond(H).item() * EPS < 1e-3 * hw2.GRAD_BAR
    lr = 0.37
    for method in hw2.METHODS:
        assert method in REFERENCE_STEPS, f"no reference rule for {method}"
        expected = w - lr * REFERENCE_STEPS[method](g, H)
        step = hw2.update(method, w, X, y, lr=lr)
        assert step.dtype == DTYPE and step.shape == w.shape
        assert ((step - expected).abs().max()
                / (expected - w).abs().max()).item() < hw2.GRAD_BAR, method
        assert torch.equal(hw2.update(method, w, X, y),
                           hw2.update(method, w, X, y, lr=hw2.LEARNING_RATE))


def test_damped_solve(hw2):
    """H^{-1} g where H is regular; where H is singular, finite, with the
    residual (H + mu I) p = g of the first damping mu (1e-10 of the largest
    diagonal entry, which already exceeds any rounding-level negative
    eigenvalue of a PSD matrix)."""
    X, y, w = random_problem(seed=6)
    H, g = hw2.logistic_hessian(w, X), hw2.logistic_grad(w, X, y)
    p = hw2.damped_solve(H, g)
    cond = torch.linalg.cond(H).item()
    torch.testing.assert_close(p, torch.linalg.solve(H, g),
                               rtol=8 * cond * EPS, atol=0)
    # a column of zeros: H has a zero row and column, Cholesky fails
    Xs = torch.cat([X, torch.zeros(len(X), 1, dtype=DTYPE)], dim=1)
    ws = torch.cat([w, torch.zeros(1, dtype=DTYPE)])
    Hs, gs = hw2.logistic_hessian(ws, Xs), hw2.logistic_grad(ws, Xs, y)
    assert torch.linalg.cholesky_ex(Hs).info.item() != 0
    ps = hw2.damped_solve(Hs, gs)
    assert torch.isfinite(ps).all()
    mu = 1e-10 * max(Hs.diagonal().abs().max().item(), 1.0)
    residual = torch.linalg.vector_norm(Hs @ ps + mu * ps - gs).item()
    assert residual <= 64 * EPS * (torch.linalg.matrix_norm(Hs).item()
                                   * torch.linalg.vector_norm(ps).item()
                                   + torch.linalg.vector_norm(gs).item())
    assert ps[-1] == 0.0  # no gradient along the zero column, no step


def test_unknown_method_is_refused(hw2, cancer):
    X, y, X_test, y_test = cancer
    labels = [label for label in hw2.METHODS.values()
              if label not in hw2.METHODS]
    for method in ["adam", *labels]:  # labels are not method keys
        with pytest.raises(ValueError, match=r"^method must be one of "
                           + re.escape(str(tuple(hw2.METHODS)))
                           + f", got {re.escape(repr(method))}$"):
            hw2.fit_logistic(X, y, method, X_test, y_test, n_iters=1)


# fit_logistic

def test_fit_follows_update_and_records_every_step(hw2, cancer):
    X, y, X_test, y_test = cancer
    n_iters = 4
    for method in hw2.METHODS:
        w, h = hw2.fit_logistic(X, y, method, X_test, y_test, n_iters=n_iters)
        assert set(h) == {"train_loss", "test_loss", "test_errors", "w_norm"}
        ws = [torch.zeros(X.shape[1], dtype=DTYPE)]
        for _ in range(n_iters):
            ws.append(hw2.update(method, ws[-1], X, y))
        assert torch.equal(w, ws[-1])
        for key, values in h.items():
            assert isinstance(values, np.ndarray), key
            assert values.shape == (n_iters + 1,), key
        for t, w_t in enumerate(ws):
            assert h["train_loss"][t] == pytest.approx(
                reference_loss(w_t, X, y).item(), rel=hw2.GRAD_BAR)
            assert h["test_loss"][t] == pytest.approx(
                reference_loss(w_t, X_test, y_test).item(), rel=hw2.GRAD_BAR)
            assert h["test_errors"][t] == int(
                ((X_test @ w_t > 0).to(DTYPE) != y_test).sum())
            assert h["w_norm"][t] == pytest.approx(
                torch.linalg.vector_norm(w_t).item(), rel=4 * EPS)
        # w = 0 predicts class 0 for all; its loss is N log 2
        assert h["train_loss"][0] == pytest.approx(len(y) * math.log(2),
                                                   rel=len(y) * EPS)
        assert h["test_errors"][0] == int(y_test.sum())
        assert h["w_norm"][0] == 0.0


def test_zero_iterations(hw2, cancer):
    X, y, X_test, y_test = cancer
    w, h = hw2.fit_logistic(X, y, "gd", X_test, y_test, n_iters=0)
    assert torch.equal(w, torch.zeros(X.shape[1], dtype=DTYPE))
    assert all(len(values) == 1 for values in h.values())


def test_defaults_are_the_parameters(hw2):
    defaults = lambda f: {name: p.default for name, p in
                          inspect.signature(f).parameters.items()
                          if p.default is not inspect.Parameter.empty}
    assert defaults(hw2.update) == {"lr": hw2.LEARNING_RATE}
    assert defaults(hw2.fit_logistic) == {"lr": hw2.LEARNING_RATE,
                                          "n_iters": hw2.N_ITERS}
    assert defaults(hw2.time_updates) == {"rounds": hw2.TIMING_ROUNDS,
                                          "n_iters": hw2.N_ITERS}
    assert defaults(hw2.load_breast_cancer_split) == {
        "test_size": hw2.TEST_SIZE, "seed": hw2.SPLIT_SEED}


def change(**updates):
    return lambda kwargs: kwargs | updates


def with_entry(name, index, value):
    def change(kwargs):
        data = kwargs[name].clone()
        data[index] = value
        return kwargs | {name: data}
    return change


BAD_INPUTS = [  # (change, error, message); n = len(y), d = X.shape[1]
    (change(lr=0.0), ValueError, r"^lr must be > 0.0, got 0.0$"),
    (change(lr=-0.1), ValueError, r"^lr must be > 0"),
    (change(lr=math.nan), ValueError, r"^lr must be > 0.0, got nan$"),
    (change(lr=True), TypeError, r"^lr must be a real number, got bool$"),
    (change(lr="0.1"), TypeError, r"^lr must be a real number, got str$"),
    (change(n_iters=-1), ValueError, r"^n_iters must be >= 0"),
    (change(n_iters=2.5), TypeError, r"^n_iters must be an int, got float$"),
    (change(method="adam"), ValueError, r"^method must be one of"),
    (with_entry("X", (3, 2), math.nan), ValueError, r"^X must be finite"),
    (with_entry("X", (0, 1), math.inf), ValueError, r"^X must be finite"),
    (lambda k: k | {"X": k["X"].float()}, TypeError,
     r"^X must be torch.float64"),
    (lambda k: k | {"X": k["X"][:, 0]}, ValueError,
     r"^X must be of shape \(\*, \*\)"),
    (lambda k: k | {"X": k["X"][:0], "y": k["y"][:0]}, ValueError,
     r"^X must be non-empty .*got 0 rows$"),
    # X * X overflows: diagonal Newton's step would silently be 0
    (lambda k: k | {"X": k["X"] * 1e200}, ValueError,
     r"^X must be non-empty with finite squares \(standardize its columns\)"),
    (with_entry("y", 5, 2.0), ValueError,
     r"^y must be labels in \(0, 1\), got \[2.0\]$"),
    (with_entry("y", 5, -1.0), ValueError, r"^y must be labels in"),
    (with_entry("y", 5, 0.5), ValueError, r"^y must be labels in .*0.5"),
    (lambda k: k | {"y": k["y"][:-1]}, ValueError,
     lambda n, d: rf"^y must be of shape \({n},\), got \({n - 1},\)$"),
    # a column of labels would broadcast to a (d, n) gradient
    (lambda k: k | {"y": k["y"][:, None]}, ValueError,
     lambda n, d: rf"^y must be of shape \({n},\), got \({n}, 1\)$"),
    (lambda k: k | {"y": [0, 1]}, TypeError,
     r"^y must be numeric labels, got list$"),
    (lambda k: k | {"y": k["y"].to(torch.complex128)}, TypeError,
     r"^y must be numeric labels"),
    (lambda k: k | {"X_test": None}, TypeError,
     r"^X_test must be a floating-point tensor, got NoneType$"),
    (lambda k: k | {"y_test": None}, TypeError,
     r"^y_test must be numeric labels, got NoneType$"),
    (lambda k: k | {"X_test": k["X_test"][:, :5]}, ValueError,
     lambda n, d: rf"^X_test must be of shape \(\*, {d}\)"),
    (lambda k: k | {"X_test": k["X_test"].float()}, TypeError,
     r"^X_test must be torch.float64"),
    (with_entry("X_test", (1, 1), math.nan), ValueError,
     r"^X_test must be finite"),
    (with_entry("y_test", 0, 3.0), ValueError, r"^y_test must be labels"),
]


@pytest.mark.parametrize("bad, error, message", BAD_INPUTS)
def test_bad_input_names_the_argument(hw2, cancer, bad, error, message):
    X, y, X_test, y_test = cancer
    kwargs = bad(dict(X=X, y=y, method="gd", n_iters=2, X_test=X_test,
                      y_test=y_test))
    if callable(message):
        message = message(len(y), X.shape[1])
    with pytest.raises(error, match=message):
        hw2.fit_logistic(**kwargs)


def test_integer_bool_and_numpy_labels_give_the_same_fit(hw2, cancer):
    X, y, X_test, y_test = cancer
    run = lambda X, y, y_test: hw2.fit_logistic(X, y, "newton", X_test,
                                                y_test, n_iters=5)
    w_ref, h_ref = run(X, y, y_test)
    for labels in (lambda v: v.long(),  # scikit-learn's targets are int64
                   lambda v: v.bool(),
                   lambda v: v.to(torch.int32),
                   lambda v: v.numpy().astype(np.int64),
                   lambda v: v.numpy().astype(bool)):
        for design in (X, X.numpy()):
            w, h = run(design, labels(y), labels(y_test))
            assert torch.equal(w, w_ref)
            for key, values in h_ref.items():
                assert np.array_equal(h[key], values), key


def separable_with_duplicate_column(n=60, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=gen, dtype=DTYPE)
    y = (X[:, 0] + X[:, 1] > 0).to(DTYPE)
    X = torch.cat([torch.ones(n, 1, dtype=DTYPE), X, X[:, :1]], dim=1)
    return X, y


@pytest.mark.parametrize("lr", ["LEARNING_RATE", 1.0])
def test_no_nan_on_separable_data_with_duplicate_column(hw2, lr):
    """X^T S X is singular (two equal columns) and the loss has no
    minimizer: damping keeps every method finite."""
    X, y = separable_with_duplicate_column()
    assert hw2.separating_hyperplane(X, y) is not None
    H0 = hw2.logistic_hessian(torch.zeros(X.shape[1], dtype=DTYPE), X)
    assert torch.linalg.matrix_rank(H0).item() < X.shape[1]
    lr = getattr(hw2, lr) if isinstance(lr, str) else lr
    for method in hw2.METHODS:
        w, h = hw2.fit_logistic(X, y, method, X, y, lr=lr, n_iters=60)
        assert torch.isfinite(w).all(), method
        for key, values in h.items():
            assert np.isfinite(values).all(), (method, key)
        assert h["train_loss"][-1] < h["train_loss"][0], method


def test_diagonal_newton_damps_a_zero_column(hw2):
    """A column of zeros has H_jj = 0: the step stays finite and leaves
    that weight at 0."""
    X, y, _ = random_problem(n=50, d=4, seed=7)
    X = torch.cat([X, torch.zeros(len(X), 1, dtype=DTYPE)], dim=1)
    for method in hw2.METHODS:
        w, h = hw2.fit_logistic(X, y, method, X, y, lr=0.5, n_iters=5)
        assert torch.isfinite(w).all() and w[-1] == 0.0, method
        assert np.isfinite(h["train_loss"]).all()


def test_newton_invariant_to_linear_change_of_features(hw2):
    """Exact Newton gives the same logits under any invertible change of
    features; diagonal Newton only under per-feature scaling, with or
    without a reordering of the features."""
    X, y, _ = random_problem(n=200, d=4, seed=8, scale=0.5)
    gen = torch.Generator().manual_seed(9)
    mixing = torch.eye(4, dtype=DTYPE) + 0.5 * torch.randn(
        4, 4, generator=gen, dtype=DTYPE)
    scaling = torch.diag(torch.tensor([1.0, 3.0, 0.2, 7.0], dtype=DTYPE))
    order = [2, 0, 3, 1]  # column j of X @ P is scaling[j] * X[:, order[j]]
    permuted_scaling = torch.eye(4, dtype=DTYPE)[order].T @ scaling

    def logits(method, A):
        w, _ = hw2.fit_logistic(X @ A, y, method, X @ A, y, lr=1.0, n_iters=4)
        return X @ A @ w

    base = {m: logits(m, torch.eye(4, dtype=DTYPE))
            for m in ("newton", "diag_newton")}
    torch.testing.assert_close(logits("newton", mixing), base["newton"])
    for A in (scaling, permuted_scaling):
        torch.testing.assert_close(logits("diag_newton", A),
                                   base["diag_newton"])
    assert not torch.allclose(logits("diag_newton", mixing),
                              base["diag_newton"], rtol=1e-3)


def test_steps_to(hw2):
    assert hw2.steps_to([3.0, 2.0, 1.0, 0.5, 0.2], 1.0) == 2  # <= counts
    assert hw2.steps_to(np.array([3.0, 0.5, 2.0, 0.1]), 1.0) == 1  # first
    assert hw2.steps_to([3.0, 2.0], 1.0) is None
    assert hw2.steps_to([], 1.0) is None
    assert type(hw2.steps_to(np.array([0.0]), 1.0)) is int


# scikit-learn's optimum, on data that has one

def cancer_few_features(cancer):
    X, y, _, _ = cancer
    return X[:, :3], y  # the ones column, mean radius, mean texture


def sklearn_optimum(X, y):
    """Unpenalized logistic regression by L-BFGS (a different algorithm),
    the ones column as intercept; converged by its own criterion."""
    model = LogisticRegression(C=np.inf, fit_intercept=False, solver="lbfgs",
                               tol=1e-12, max_iter=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X.numpy(), y.numpy())
    assert model.n_iter_[0] < model.max_iter
    return torch.from_numpy(model.coef_[0].copy())


@pytest.mark.parametrize("data", ["cancer_few_features", "overlapping"])
@pytest.mark.parametrize("lr", [1.0, "LEARNING_RATE"])
def test_newton_converges_to_sklearn_optimum(hw2, cancer, data, lr):
    """On data that is not linearly separable (checked by the notebook's
    LP) the loss has a unique minimizer w*. Newton from fit_logistic and
    scikit-learn's L-BFGS each land near it; each one's distance to w* is
    estimated by its Newton correction |H^{-1} g| (autograd's g and H), so
    the two agree within twice the sum of these (the factor covers the
    neglected second-order term), and their losses within g^T H^{-1} g
    (twice the quadratic model's gap) plus the loss's rounding bound."""
    X, y = (cancer_few_features(cancer) if data != "overlapping"
            else overlapping_problem())
    assert hw2.separating_hyperplane(X, y) is None
    lr = getattr(hw2, lr) if isinstance(lr, str) else lr
    # damped Newton shrinks the error by |1 - lr| per step near w*: enough
    # steps for that factor to reach EPS, plus 20 to get near w* from 0
    factor = abs(1 - lr)
    assert factor < 1, "Newton with lr >= 2 does not converge"
    n_iters = 20 + (0 if factor == 0 else
                    math.ceil(math.log(EPS) / math.log(factor)))
    w_nt, h = hw2.fit_logistic(X, y, "newton", X, y, lr=lr, n_iters=n_iters)
    w_sk = sklearn_optimum(X, y)
    H = torch.autograd.functional.hessian(lambda v: reference_loss(v, X, y),
                                          w_nt)
    grad = lambda w: torch.func.grad(reference_loss)(w, X, y)
    g_nt, g_sk = grad(w_nt), grad(w_sk)
    d_nt = torch.linalg.vector_norm(torch.linalg.solve(H, g_nt)).item()
    d_sk = torch.linalg.vector_norm(torch.linalg.solve(H, g_sk)).item()
    # Newton converged to float64 accuracy: its gradient is within the
    # rounding bound of the gradient X^T (s - y) itself (|s - y| <= 1)
    assert torch.all(g_nt.abs() <= len(y) * EPS * X.abs().sum(0))
    distance = torch.linalg.vector_norm(w_nt - w_sk).item()
    assert distance <= 2 * (d_nt + d_sk)
    loss_nt, bound = softplus_sum(w_nt, X, y)
    loss_sk, _ = softplus_sum(w_sk, X, y)
    gap = (g_sk @ torch.linalg.solve(H, g_sk)).item()
    assert -2 * bound <= loss_sk - loss_nt <= gap + 2 * bound
    assert h["train_loss"][-1] == pytest.approx(loss_nt, abs=bound)


# The separability LP and the curvature

def test_separating_hyperplane(hw2):
    X, y = separable_problem(seed=5)
    w = hw2.separating_hyperplane(X, y)
    assert w is not None and w.dtype == DTYPE
    # HiGHS meets the constraints to its feasibility tolerance, 1e-7
    margins = (2 * y - 1) * (X @ w)
    assert margins.min() >= 1 - 1e-7 * max(1.0, (X.abs() @ w.abs()).max())
    xor = torch.tensor([[1, 0, 0], [1, 1, 1], [1, 0, 1], [1, 1, 0]],
                       dtype=DTYPE)
    assert hw2.separating_hyperplane(
        xor, torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=DTYPE)) is None


def test_largest_curvature(hw2, cancer):
    X, _, _, _ = cancer
    gram = X.numpy().T @ X.numpy() / 4  # H at w = 0: S = I / 4
    expected = np.linalg.eigvalsh(gram)[-1]
    assert hw2.largest_curvature(X) == pytest.approx(
        expected, rel=16 * X.shape[1] * EPS)


# The data

def test_breast_cancer_split(hw2, cancer, raw_cancer):
    data, target = raw_cancer
    X, y, X_test, y_test = cancer
    n, features = data.shape
    n_test = math.ceil(hw2.TEST_SIZE * n)  # scikit-learn's rounding
    assert X.shape == (n - n_test, features + 1)
    assert X_test.shape == (n_test, features + 1)
    assert y.shape == (n - n_test,) and y_test.shape == (n_test,)
    for t in (X, y, X_test, y_test):
        assert t.dtype == DTYPE
    assert torch.all(X[:, 0] == 1) and torch.all(X_test[:, 0] == 1)
    # standardized by the training set: its columns have mean 0, std 1
    columns = X[:, 1:]
    assert columns.mean(0).abs().max() <= 4 * n * EPS
    assert (columns.std(0, correction=0) - 1).abs().max() <= 4 * n * EPS
    # stratified: the test set's count of class 1 within one of its share
    assert abs(y_test.sum().item() - n_test * target.mean()) <= 1


def test_split_is_a_partition_of_the_data(hw2, cancer, raw_cancer):
    """Undoing one standardization (the affine map fitted column by column
    on the sorted values) turns train and test rows back into the data's
    rows, each once, each with its own label."""
    data, target = raw_cancer
    X, y, X_test, y_test = cancer
    rows = torch.cat([X, X_test])[:, 1:].numpy()
    labels = torch.cat([y, y_test]).numpy()
    assert rows.shape == data.shape
    restored = np.empty_like(rows)
    for j in range(data.shape[1]):
        a = np.vstack([np.sort(rows[:, j]), np.ones(len(rows))]).T
        (scale, shift), *_ = np.linalg.lstsq(a, np.sort(data[:, j]),
                                             rcond=None)
        restored[:, j] = scale * rows[:, j] + shift
    # rounding of standardizing and undoing it: a few EPS of each column's
    # largest magnitude
    tolerance = 64 * EPS * np.abs(data).max(0)
    match = [np.flatnonzero(np.all(np.abs(data - row) <= tolerance, axis=1))
             for row in restored]
    assert all(len(m) == 1 for m in match)
    index = np.array([m[0] for m in match])
    assert sorted(index) == list(range(len(data)))  # each row once
    assert np.array_equal(labels, target[index])


def test_split_follows_its_arguments(hw2, cancer, raw_cancer):
    n = len(raw_cancer[1])
    again = hw2.load_breast_cancer_split()
    assert all(torch.equal(a, b) for a, b in zip(again, cancer))
    other = hw2.load_breast_cancer_split(seed=hw2.SPLIT_SEED + 1)
    assert not torch.equal(other[3], cancer[3]) \
        or not torch.equal(other[2], cancer[2])
    half = hw2.load_breast_cancer_split(test_size=0.5)
    assert len(half[3]) == math.ceil(0.5 * n)


# Timings

def test_time_updates_gives_seconds_per_iteration_per_round(hw2, cancer):
    X, y, _, _ = cancer
    seconds = hw2.time_updates(X, y, rounds=2, n_iters=3)
    assert list(seconds) == list(hw2.METHODS.values())
    for values in seconds.values():
        assert isinstance(values, np.ndarray)
        assert values.shape == (2,) and np.all(values > 0)
        assert np.all(np.isfinite(values))


def test_time_updates_divides_and_skips_the_warm_up(hw2, cancer,
                                                    monkeypatch):
    """With a fake clock that advances a known cost per update: every
    round's value is that cost, and one warm-up round runs first."""
    X, y, _, _ = cancer
    clock = [0.0]
    cost = {method: 1e-3 * (k + 1) for k, method in enumerate(hw2.METHODS)}
    calls = {method: 0 for method in hw2.METHODS}
    update = hw2.update

    def timed_update(method, w, X, y, *args, **kwargs):
        calls[method] += 1
        clock[0] += cost[method]
        return update(method, w, X, y, *args, **kwargs)

    monkeypatch.setattr(hw2, "update", timed_update)
    monkeypatch.setattr(hw2, "time",
                        types.SimpleNamespace(perf_counter=lambda: clock[0]))
    rounds, n_iters = 3, 2
    seconds = hw2.time_updates(X, y, rounds=rounds, n_iters=n_iters)
    for method, label in hw2.METHODS.items():
        assert calls[method] == (rounds + 1) * n_iters
        np.testing.assert_allclose(seconds[label], cost[method],
                                   rtol=1e3 * EPS)
        assert seconds[label].shape == (rounds,)


# Figure 2

@pytest.fixture(scope="module")
def runs(hw2, cancer):
    """The notebook's comparison, with a short timing."""
    X, y, X_test, y_test = cancer
    hist = {label: hw2.fit_logistic(X, y, method, X_test, y_test)[1]
            for method, label in hw2.METHODS.items()}
    return hist, hw2.time_updates(X, y, rounds=2, n_iters=3), len(y_test)


def draw_figure2(hw2, hist, seconds, n_test):
    figures = []
    save = hw2.save_figure
    hw2.save_figure = lambda fig, name: figures.append(fig)
    try:
        hw2.plot_comparison(hist, seconds, n_test)
    finally:
        hw2.save_figure = save
    (fig,) = figures
    FigureCanvasAgg(fig)  # measured in pixels, whatever backend is set
    return fig, drawn_texts(fig)


@pytest.fixture(scope="module")
def figure2(hw2, runs):
    fig, texts = draw_figure2(hw2, *runs)
    yield fig, texts
    hw2.plt.close(fig)


@pytest.fixture(scope="module")
def figure2_four(hw2, runs):
    """A fourth method, a copy of one run under a new, longer label."""
    hist, seconds, n_test = runs
    label = next(iter(hist))
    new = "Newton with a line search (copy)"
    fig, texts = draw_figure2(hw2, hist | {new: hist[label]},
                              seconds | {new: seconds[label]}, n_test)
    yield fig, texts, new
    hw2.plt.close(fig)


def print_scale(hw2, fig):
    """The PDF shrinks a figure wider than the text width to fit."""
    width = fig.get_tightbbox(fig.canvas.get_renderer()).width
    return min(1.0, hw2.TEXT_WIDTH / width)


MATHTEXT_SHRINK = 0.7  # Matplotlib sets a superscript this much smaller
PANEL_HEIGHT = 1.6  # inches, printed: each panel of Figure 2 at least


def assert_readable(hw2, fig, texts):
    """Every text 8 pt or more as printed (superscripts included), none
    overlapping another."""
    scale = print_scale(hw2, fig)
    assert texts
    for text, _ in texts:
        size = text.get_fontsize() * scale
        if "^" in text.get_text():
            size *= MATHTEXT_SHRINK
        assert size >= 8, text.get_text()
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1:]:
            assert not box_a.overlaps(box_b), (a.get_text(), b.get_text())


def test_figure2_text_is_readable_and_apart(hw2, figure2):
    assert_readable(hw2, *figure2)


def test_figure2_draws_the_runs(hw2, figure2, runs):
    """Panels: training loss vs t, test loss vs t, test errors vs t from
    t = 1, training loss vs elapsed time (t times the median seconds)."""
    hist, seconds, n_test = runs
    fig, _ = figure2
    train, test, wrong, clock = fig.axes
    for ax, key, start in ((train, "train_loss", 0), (test, "test_loss", 0),
                           (wrong, "test_errors", 1)):
        lines = {line.get_label(): line for line in ax.get_lines()}
        for label, h in hist.items():
            x, values = lines[label].get_data()
            assert np.array_equal(x, np.arange(start, len(h[key])))
            assert np.array_equal(values, h[key][start:])
    lines = {line.get_label(): line for line in clock.get_lines()}
    for label, h in hist.items():
        x, values = lines[label].get_data()
        t = np.arange(len(h["train_loss"]))
        np.testing.assert_allclose(x, 1e3 * t * np.median(seconds[label]),
                                   rtol=4 * EPS)
        assert np.array_equal(values, h["train_loss"])
    assert str(n_test) in wrong.get_ylabel()
    assert "time" in clock.get_xlabel()
    assert all(ax.get_yscale() == "log" for ax in (train, test, clock))


def test_figure2_errors_axis_has_integer_ticks(figure2):
    fig, _ = figure2
    wrong = fig.axes[2]
    low, high = wrong.get_ylim()
    assert low == 0
    ticks = [t for t in wrong.get_yticks() if low <= t <= high]
    assert len(ticks) >= 2
    assert all(float(t).is_integer() for t in ticks)


def test_figure2_legend_covers_no_curve(figure2, runs):
    """The legend names every method, inside the training-loss panel where
    no point of any curve is drawn."""
    hist, _, _ = runs
    fig, _ = figure2
    train = fig.axes[0]
    legend = train.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(hist)
    box = legend.get_window_extent(fig.canvas.get_renderer())
    for line in train.get_lines():
        if line.get_label() in hist:
            points = train.transData.transform(np.column_stack(line.get_data()))
            assert not box.count_contains(points), line.get_label()


def test_figure2_has_four_tall_enough_panels(hw2, figure2):
    fig, _ = figure2
    assert len(fig.axes) == 4
    for ax in fig.axes:
        height = ax.get_position().height * fig.get_figheight()
        assert height * print_scale(hw2, fig) >= PANEL_HEIGHT, height


@pytest.fixture(scope="module")
def figure2_short(hw2, cancer, runs):
    """Figure 2 from shorter runs (a tenth of N_ITERS), as when trying the
    notebook out with a smaller N_ITERS."""
    X, y, X_test, y_test = cancer
    n_iters = max(1, hw2.N_ITERS // 10)
    hist = {label: hw2.fit_logistic(X, y, method, X_test, y_test,
                                    n_iters=n_iters)[1]
            for method, label in hw2.METHODS.items()}
    fig, texts = draw_figure2(hw2, hist, runs[1], len(y_test))
    yield fig, texts
    hw2.plt.close(fig)


def test_figure2_from_shorter_runs_is_readable(hw2, figure2_short):
    assert_readable(hw2, *figure2_short)


def test_figure2_with_a_fourth_method(hw2, figure2_four, runs):
    """A new label without a style of its own still draws, in all four
    panels and the legend, and the texts stay readable and apart."""
    fig, texts, new = figure2_four
    for ax in fig.axes:
        assert new in [line.get_label() for line in ax.get_lines()]
    legend = fig.axes[0].get_legend()
    assert new in [t.get_text() for t in legend.get_texts()]
    assert_readable(hw2, fig, texts)


# The table

def table_rows(hw2, runs, us):
    hist, _, n_test = runs
    return {label: [h["train_loss"][-1], h["test_loss"][-1],
                    1 - h["test_errors"][-1] / n_test, h["w_norm"][-1],
                    hw2.steps_to(h["train_loss"], hw2.TARGET_LOSS), us]
            for label, h in hist.items()}


@pytest.fixture
def shown(hw2, monkeypatch):
    """show_table's display calls, captured."""
    calls = []
    monkeypatch.setattr(hw2, "display",
                        lambda data, **kwargs: calls.append((data, kwargs)))
    return calls


SLOW = np.array([1230.0, 1870.0, 860.0, 12500.0])  # us: a slow machine


class Cells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


@pytest.fixture(params=["measured", "slow"])
def table(request, hw2, runs, shown):
    """show_table's output for the notebook's rows, with this machine's
    timings or a slow machine's (1000+ us per iteration)."""
    hist, seconds, n_test = runs
    us = {label: 1e6 * seconds[label] if request.param == "measured"
          else SLOW for label in hist}
    rows = {label: row[:-1] + [us[label]]
            for label, row in table_rows(hw2, runs, None).items()}
    hw2.show_table(rows, n_test, len(next(iter(us.values()))))
    ((data, _),) = shown
    assert set(data) == {"text/plain", "text/latex", "text/html"}
    return data, rows


def test_table_latex_is_booktabs_with_a_row_per_method(table):
    data, rows = table
    tex = data["text/latex"]
    top, mid, bottom = (tex.index(rule) for rule in
                        (r"\toprule", r"\midrule", r"\bottomrule"))
    assert top < mid < bottom
    columns = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex)[1]
    header = tex[top + len(r"\toprule"):mid]
    body = [line.strip() for line in
            tex[mid + len(r"\midrule"):bottom].split("\\\\")
            if line.strip()]
    assert [line.split(" & ")[0] for line in body] == list(rows)
    assert header.count(" & ") == len(columns) - 1
    assert all(line.count(" & ") == len(columns) - 1 for line in body)


def test_table_html_has_a_row_per_method_with_its_values(hw2, table):
    """One <tr> per method plus the header, as many cells as the header;
    the values to the precision printed, in their columns."""
    data, rows = table
    parser = Cells()
    parser.feed(data["text/html"])
    assert data["text/html"].count("<tr>") == len(rows) + 1
    header, *body = parser.rows
    assert [r[0] for r in body] == list(rows)
    assert all(len(r) == len(header) for r in body)
    for cells, (train, test, acc, norm, steps, us) in zip(body,
                                                         rows.values()):
        assert float(cells[1]) == pytest.approx(train, rel=5e-3)  # 3 digits
        assert abs(float(cells[2]) - test) <= 0.05 + 1e-12  # 1 decimal
        assert abs(float(cells[3]) - acc) <= 5e-4 + 1e-12
        assert abs(float(cells[4]) - norm) <= 0.5 + 1e-12
        assert cells[5] == (f"> {hw2.N_ITERS}" if steps is None
                            else str(steps))


def test_table_timing_column_is_median_min_max(table):
    data, rows = table
    lines = data["text/plain"].splitlines()
    for label, row in rows.items():
        median, low, high = (f"{float(f'{v:.2g}'):g}" for v in (
            np.median(row[-1]), np.min(row[-1]), np.max(row[-1])))
        cell = f"{median} [{low}-{high}]"
        assert cell in next(line for line in lines if line.startswith(label))
        assert f"<td>{cell}</td>" in data["text/html"]


def test_table_steps_not_reached_and_special_characters(hw2, runs, shown):
    hist, _, n_test = runs
    rows = table_rows(hw2, runs, SLOW)
    label = next(iter(rows))
    odd = "Newton & <co> 100%"
    rows = {odd: rows[label][:4] + [None, SLOW]}
    hw2.show_table(rows, n_test, len(SLOW))
    ((data, _),) = shown
    assert f"> {hw2.N_ITERS}" in data["text/plain"]
    assert r"Newton \& <co> 100\%" in data["text/latex"]
    assert "Newton &amp; &lt;co&gt; 100%" in data["text/html"]
    assert f"&gt; {hw2.N_ITERS}" in data["text/html"]


def test_table_plain_text_fits_the_page(table):
    data, rows = table
    lines = data["text/plain"].splitlines()
    assert [next(label for label in rows if line.startswith(label))
            for line in lines[1:len(rows) + 1]] == list(rows)
    assert [line for line in lines if len(line) > MAX_OUTPUT_LINE] == []


def test_best_accuracy_is_the_first_step_any_method_reaches_it(hw2):
    """The Comment's 'best ..., at t = ... (methods)': the fewest errors of
    any method, the first step one reaches them, and who reaches them then."""
    hist = {"a": {"test_errors": np.array([9, 5, 4, 4])},
            "b": {"test_errors": np.array([9, 4, 6, 4])},
            "c": {"test_errors": np.array([9, 4, 4, 5])}}
    assert hw2.best_accuracy(hist, 10) == (0.6, 1, ["b", "c"])
    hist["b"]["test_errors"][1] = 3
    assert hw2.best_accuracy(hist, 10) == (0.7, 1, ["b"])


def test_highest_at_end_names_every_method_tied_for_it(hw2):
    hist = {"a": {"loss": np.array([1.0, 3.0])},
            "b": {"loss": np.array([5.0, 3.0])},
            "c": {"loss": np.array([9.0, 2.0])}}
    assert hw2.highest_at_end(hist, "loss") == ["a", "b"]
