"""Problem 3: closed forms, exact losses, the three solvers, and
scikit-learn's optimum."""
import math
import re
import warnings

import matplotlib

import numpy as np
import pytest
import torch

DTYPE = torch.float64


def random_problem(n=80, d=5, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=DTYPE)
    X[:, 0] = 1.0
    w = scale * torch.randn(d, generator=gen, dtype=DTYPE)
    y = (torch.rand(n, generator=gen, dtype=DTYPE)
         < torch.sigmoid(X @ w)).to(DTYPE)
    return X, y, w


def exact_bce_sum(w, X, y):
    """Independent reference: sum_n log(1 + exp(-m_n)), m_n = (2y_n - 1) z_n,
    per sample in Python floats (log1p, no overflow), summed with fsum."""
    margins = ((2 * y - 1) * (X @ w)).tolist()
    return math.fsum(math.log1p(math.exp(-m)) if m > 0
                     else -m + math.log1p(math.exp(m)) for m in margins)


@pytest.fixture(scope="module")
def cancer(hw2):
    return hw2.load_breast_cancer_split()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_closed_forms_match_autograd(hw2, seed):
    X, y, w = random_problem(seed=seed)
    grad_ref = torch.func.grad(hw2.logistic_loss)(w, X, y)
    hess_ref = torch.autograd.functional.hessian(
        lambda v: hw2.logistic_loss(v, X, y), w)
    error = hw2.max_relative_error(
        [hw2.logistic_grad(w, X, y), hw2.logistic_hessian(w, X),
         hw2.logistic_hessian_diag(w, X)],
        [grad_ref, hess_ref, hess_ref.diagonal()])
    assert error < 1e-12
    # where sigmoid does not saturate, it is the same sum as BCELoss's
    assert hw2.logistic_loss(w, X, y).item() == pytest.approx(
        hw2.bce_of_sigmoid(w, X, y).item(), rel=1e-12)


@pytest.mark.parametrize("scale", [1.0, 30.0, 300.0, 1000.0])
def test_reported_losses_are_exact_at_saturation(hw2, cancer, scale):
    """Weights with |z| up to about 1e3: the loss, and every loss a fit
    records, equals the exact sum to 1e-12 relative, while BCELoss of
    sigmoid(z) is clamped far from it."""
    X, y, X_test, y_test = cancer
    w = hw2.separating_hyperplane(X, y)
    w = scale * w / (X @ w).abs().max()  # max |z| on the training set
    wrong = y.clone()
    wrong[:40] = 1 - wrong[:40]  # 40 samples confidently wrong
    for data in ((X, y), (X, wrong), (X_test, y_test)):
        assert hw2.logistic_loss(w, *data).item() == pytest.approx(
            exact_bce_sum(w, *data), rel=1e-12)
    clamped, exact = hw2.bce_of_sigmoid(w, X, wrong).item(), exact_bce_sum(
        w, X, wrong)
    if scale == 1.0:  # no saturation: the same sum
        assert clamped == pytest.approx(exact, rel=1e-12)
    if scale >= 300:  # clamped at 100 per sample, off by far more than 1e-3
        assert abs(clamped - exact) > 1e-3 * exact
    fit = hw2.fit_logistic(X, y, "newton", n_iters=300, X_test=X_test,
                           y_test=y_test)
    assert (X_test @ fit["w"]).abs().max() > 36.7  # the saturated regime
    history = fit["history"]
    assert history["test_loss"][-1] == pytest.approx(
        exact_bce_sum(fit["w"], X_test, y_test), rel=1e-12)
    assert history["train_loss"][-1] == pytest.approx(
        exact_bce_sum(fit["w"], X, y), rel=1e-12)  # about 1e-10 in all


def test_hessian_is_positive_semidefinite(hw2):
    X, y, w = random_problem(n=4, d=6, seed=2)  # rank <= 4 < d: singular
    eigenvalues = torch.linalg.eigvalsh(hw2.logistic_hessian(w, X))
    assert eigenvalues.min() > -1e-12 * eigenvalues.max()


@pytest.mark.parametrize("l2", [1.0, 0.5])
def test_ridge_solution_matches_sklearn(hw2, cancer, l2):
    X, y, _, _ = cancer
    ridge = hw2.ridge_weights(X.shape[1], l2)
    # lbfgs: a solver independent of the notebook's newton-cholesky
    w_ref = hw2.sklearn_ridge_solution(X, y, l2, solver="lbfgs")
    reference = hw2.objective(w_ref, X, y, ridge).item()
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
    X, y, w = random_problem(seed=4)
    ridge = hw2.ridge_weights(X.shape[1], 0.7)
    g = hw2.logistic_grad(w, X, y) + ridge * w
    H = hw2.logistic_hessian(w, X) + torch.diag(ridge)
    steps = {method: hw2.update(method, w, 0.1, X, y, ridge)
             for method in hw2.METHODS}
    torch.testing.assert_close(steps["gd"][0], w - 0.1 * g)
    torch.testing.assert_close(steps["newton"][0],
                               w - 0.1 * torch.linalg.solve(H, g))
    torch.testing.assert_close(steps["diag_newton"][0],
                               w - 0.1 * g / H.diagonal())
    assert all(mu == 0.0 for _, mu in steps.values())  # H is regular here


def test_unknown_method_is_refused(hw2):
    X, y, w = random_problem(seed=4)
    ridge = hw2.ridge_weights(X.shape[1], 0.0)
    with pytest.raises(ValueError, match=r"^method must be one of"):
        hw2.update("adam", w, 0.1, X, y, ridge)
    with pytest.raises(ValueError, match=r"^method must be one of"):
        hw2.fit_logistic(X, y, "Newton")  # labels are not method keys


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
                                   "grad_norm", "w_norm"}
    for values in fit["history"].values():
        assert values.shape == (8,)  # iterates 0..7
    assert 0 <= fit["history"]["test_acc"].min() <= 1


def test_without_test_set_only_training_metrics(hw2, cancer):
    X, y, _, _ = cancer
    fit = hw2.fit_logistic(X, y, "gd", lr=0.001, n_iters=3)
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


def test_history_is_of_the_objective(hw2, cancer):
    """train_loss is sum BCE + (l2/2)||w[1:]||^2 and grad_norm the max-norm
    of its gradient, both from torch.autograd on BCEWithLogitsLoss."""
    X, y, _, _ = cancer
    l2 = 1.0
    fit = hw2.fit_logistic(X, y, "newton", lr=0.5, n_iters=3, l2=l2)
    w = fit["w"].clone().requires_grad_()
    objective = (torch.nn.functional.binary_cross_entropy_with_logits(
        X @ w, y, reduction="sum") + l2 / 2 * (w[1:] ** 2).sum())
    (grad,) = torch.autograd.grad(objective, w)
    history = fit["history"]
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
    (change(lr=0.0), ValueError, r"^lr must be > 0.0, got 0.0"),
    (change(lr=-0.1), ValueError, r"^lr must be > 0"),
    (change(lr=math.nan), ValueError, r"^lr must be > 0.0, got nan"),
    (change(lr=True), TypeError, r"^lr must be a real number, got bool"),
    (change(l2=-1.0), ValueError, r"^l2 must be >= 0"),
    (change(n_iters=-1), ValueError, r"^n_iters must be >= 0"),
    (change(n_iters=2.5), TypeError, r"^n_iters must be an int"),
    (change(tol=-1e-8), ValueError, r"^tol must be >= 0"),
    (change(method="adam"), ValueError, r"^method must be one of"),
    (with_entry("X", (3, 2), math.nan), ValueError, r"^X must be finite"),
    (with_entry("X", (0, 1), math.inf), ValueError, r"^X must be finite"),
    (with_entry("y", 5, 2.0), ValueError, r"^y must be labels in \(0, 1\)"),
    (with_entry("y", 5, -1.0), ValueError, r"^y must be labels in"),
    (with_entry("y", 5, 0.5), ValueError, r"^y must be integral"),
    (lambda k: k | {"y": k["y"][:-1]}, ValueError,
     r"^y must be of shape \(398,\), got \(397,\)"),
    # a column vector of labels used to broadcast to a (31, 398) gradient
    (lambda k: k | {"y": k["y"][:, None]}, ValueError,
     r"^y must be of shape \(398,\), got \(398, 1\)"),
    (lambda k: k | {"y_test": None}, ValueError,
     r"^X_test and y_test must be given together"),
    (lambda k: k | {"X_test": k["X_test"][:, :5]}, ValueError,
     r"^X_test must be of shape \(\*, 31\)"),
    (lambda k: k | {"X_test": k["X_test"].float()}, TypeError,
     r"^X_test must be torch.float64"),
    (with_entry("X_test", (1, 1), math.nan), ValueError,
     r"^X_test must be finite"),
    (with_entry("y_test", 0, 3.0), ValueError, r"^y_test must be labels"),
    # X * X overflows: diagonal Newton's step would be 0 with only a warning
    (lambda k: k | {"X": k["X"] * 1e200}, ValueError,
     r"^X must be non-empty with finite squares \(standardize its columns\)"),
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


def test_time_updates_gives_seconds_per_iteration_per_round(hw2, cancer):
    X, y, _, _ = cancer
    seconds = hw2.time_updates(X, y, rounds=2, n_iters=3)
    assert list(seconds) == list(hw2.METHODS.values())
    for values in seconds.values():
        assert values.shape == (2,) and np.all(values > 0)


def test_results_table_columns_stay_apart_with_slow_timings(hw2, cancer):
    """A slow machine (1000+ us per iteration) widens the time column; every
    column still stands apart, and every line fits the page."""
    X, y, X_test, y_test = cancer
    fits = {label: hw2.fit_logistic(X, y, method, lr=0.01, n_iters=2,
                                    X_test=X_test, y_test=y_test)
            for method, label in hw2.METHODS.items()}
    seconds = {label: np.array([1.23e-3, 1.87e-3, 0.86e-3, 12.5e-3])
               for label in fits}
    table = hw2.results_table(fits, seconds, len(y_test))
    rows = table.splitlines()[1:4]
    for row in rows:  # label, 4 numbers, then "median [min-max]"
        assert len(re.split(r"\s{2,}", row.strip())) == 6, row
        assert row.endswith("1600 [860-12000]")  # median 1550 us
    assert max(map(len, table.splitlines())) <= 76


@pytest.fixture(scope="module")
def comparison(hw2, cancer):
    """Figure 2, drawn from short runs."""
    X, y, X_test, y_test = cancer
    fits = {label: hw2.fit_logistic(X, y, method, n_iters=20, X_test=X_test,
                                    y_test=y_test)
            for method, label in hw2.METHODS.items()}
    figures = []
    save = hw2.save_figure
    hw2.save_figure = lambda fig, name: figures.append(fig)
    try:
        hw2.plot_comparison(fits, hw2.time_updates(X, y, rounds=2, n_iters=2))
    finally:
        hw2.save_figure = save
    (fig,) = figures
    fig.canvas.draw()
    yield fig
    hw2.plt.close(fig)


MATHTEXT_SHRINK = 0.7  # a superscript is set this much smaller


def test_figure2_answers_loss_accuracy_and_runtime_readably(hw2, comparison):
    """One panel each for test loss, test accuracy and runtime, each 1.6 in
    tall or more, every text 8 pt or more at print size (superscripts
    included), curves told apart by line style and marker too."""
    fig = comparison
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["test loss", "test accuracy (from t = 1)",
                      "runtime per iteration"]
    for ax in fig.axes:
        assert ax.get_position().height * fig.get_figheight() >= 1.6
        assert ax.get_ylabel()
    assert all(ax.get_xlabel() == "iteration t" for ax in fig.axes[:2])
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == [
        label.replace(" ", "\n") for label in hw2.METHODS.values()]
    assert "this machine" in fig.axes[2].get_ylabel()
    texts = [t for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip()]
    for text in texts:
        size = text.get_fontsize()
        if "^" in text.get_text():  # mathtext exponent
            size *= MATHTEXT_SHRINK
        assert size >= 8, text.get_text()
    accuracy_ticks = [t for t in fig.axes[1].get_yticklabels()
                      if t.get_text() and 0 <= t.get_position()[1]]
    assert len(accuracy_ticks) >= 3
    lines = fig.axes[0].get_lines()
    assert len({(l.get_linestyle(), l.get_marker()) for l in lines}) == len(
        hw2.METHODS)
