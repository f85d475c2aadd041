# train.py: the Azure ML "train-on-local" sweep (a submitted script run), written against the Azure
# ML SDK v1 and run unchanged by runbridge: `python submit.py`, or `runbridge run train.py`.

import os

import joblib
from azureml.core.run import Run
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

import mylib

os.makedirs("./outputs", exist_ok=True)

X, y = load_diabetes(return_X_y=True)

run = Run.get_context()

X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
data = {"train": {"X": X_train, "y": y_train},
        "test": {"X": X_test, "y": y_test}}

# list of numbers from 0.0 to 1.0 with a 0.05 interval
alphas = mylib.get_alphas()

for alpha in alphas:
    # Use Ridge algorithm to create a regression model
    reg = Ridge(alpha=alpha)
    reg.fit(data["train"]["X"], data["train"]["y"])

    preds = reg.predict(data["test"]["X"])
    mse = mean_squared_error(preds, data["test"]["y"])
    # log the alpha and mse values
    run.log("alpha", alpha)
    run.log("mse", mse)

    # save model in the outputs folder so it automatically gets uploaded
    model_file_name = "outputs/ridge_{0:.2f}.pkl".format(alpha)
    joblib.dump(value=reg, filename=model_file_name)

    # upload the model file explicitly into artifacts (the outputs/ upload at the end skips it)
    run.upload_file(name=model_file_name, path_or_stream=model_file_name)

    print("alpha is {0:.2f}, and mse is {1:0.2f}".format(alpha, mse))
