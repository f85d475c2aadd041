# runbridge's stand-in: a pkgutil namespace, so other azureml.* distributions still import.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
