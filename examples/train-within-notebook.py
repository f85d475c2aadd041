# train-within-notebook.py: the interactive variant of the "train-on-local" sweep (a notebook cell, or a script):
# start_logging, log alpha and mse, upload the model, complete.

import os

import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from runbridge import Experiment, Workspace

ws = Workspace.from_config()

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
data = {"train": {"X": X_train, "y": y_train},
        "test": {"X": X_test, "y": y_test}}

# Get an experiment object
experiment = Experiment(workspace=ws, name="train-within-notebook")

# Create a run object in the experiment
run = experiment.start_logging()
# Log the algorithm parameter alpha to the run
run.log("alpha", 0.03)

# Create, fit, and test the scikit-learn Ridge regression model
regression_model = Ridge(alpha=0.03)
regression_model.fit(data["train"]["X"], data["train"]["y"])
preds = regression_model.predict(data["test"]["X"])

# Output the Mean Squared Error to the notebook and to the run
print("Mean Squared Error is", mean_squared_error(data["test"]["y"], preds))
run.log("mse", mean_squared_error(data["test"]["y"], preds))

# Save the model to the outputs directory for capture
os.makedirs("outputs", exist_ok=True)
model_file_name = "outputs/model.pkl"

joblib.dump(value=regression_model, filename=model_file_name)

# upload the model file explicitly into artifacts
run.upload_file(name=model_file_name, path_or_stream=model_file_name)

# Complete the run
run.complete()
print(run.get_metrics(), run.get_file_names(), run.get_portal_url())
