"""The registered model's code file (MLflow "models from code"): loading the model runs this file, no pickle."""

from mlflow.models import set_model

from training.registry import ChurnModel

set_model(ChurnModel())
