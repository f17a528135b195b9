"""The served model as MLflow loads it: export logs this file (models-from-code) instead of a pickled
python_model, and loading a registered version runs it.

MLflow runs it as a file of its own, outside the package, hence the absolute import.
"""

from mlflow.models import set_model

from pipelines.serving.pyfunc import TextModel

set_model(TextModel())
