"""The source article's own forms work as written: a plot given positionally to `log_image`, and
a one-value pandas Series (the designer example's `dataframe1['Mean_Absolute_Error']`) logged
with `log`."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from runbridge import Experiment, Run, Workspace  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(tmp_path):
    run = Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "article").start_logging(outputs=None)
    yield run
    run.complete()


def test_log_image_takes_pyplot_a_figure_or_axes_positionally(run, tmp_path):
    plt.plot([0, 1], [0, 1])
    run.log_image("ROC", plt)                       # the article's form
    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    run.log_image("figure", figure)
    run.log_image("axes", axes)
    metrics = Run(run.experiment, run.id).get_metrics()
    for name in ("ROC", "figure", "axes"):
        file_name = metrics[name].split("/", 3)[-1]
        target = run.download_file(file_name, tmp_path / f"{name}.png")
        assert open(target, "rb").read().startswith(PNG), name


def test_a_wrong_image_argument_names_the_argument_and_logs_nothing(run):
    with pytest.raises(TypeError, match="path must be a file path .* got int"):
        run.log_image("ROC", 5)
    with pytest.raises(TypeError, match="plot must be a matplotlib Figure, Axes or the matplotlib.pyplot module"):
        run.log_image("ROC", plot="not a plot")
    assert run.get_metrics() == {}


def test_a_one_value_series_or_array_is_its_scalar_and_a_longer_one_points_to_log_list(run):
    frame = pd.DataFrame({"Mean_Absolute_Error": [1.5]})
    run.log("Mean_Absolute_Error", frame["Mean_Absolute_Error"])  # the designer example
    run.log("count", np.array([3]))
    with pytest.raises(TypeError, match="value is a Series of 2 values .* log a sequence with log_list"):
        run.log("two", pd.Series([1.0, 2.0]))
    run.flush()
    assert Run(run.experiment, run.id).get_metrics() == {"Mean_Absolute_Error": 1.5, "count": 3}
