"""A stand-in for the Azure ML SDK v1 ``azureml.core`` package, put first on PYTHONPATH only in
scripts started by ``runbridge run`` when the real SDK is not installed. Never imported otherwise."""
