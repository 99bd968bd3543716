"""The model every predictor pod serves: an SVC over scikit-learn's iris data.

A ``kserve.Model`` (KServe's custom-model interface, "Deploy a custom
Python model", kserve.github.io/website) that trains ``svm.SVC`` on
``sklearn.datasets.load_iris()`` when it loads, so nothing is downloaded.
It answers the v2 (Open Inference Protocol) request the seed sends, over
REST and gRPC alike, and the v1 ``instances`` form too: the first input
tensor is the feature matrix, the answer is one ``INT64`` class per row.

Test-only switches come from the container's environment, as KServe passes a
predictor's ``env`` to its container (see :mod:`.modelserver`).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InferenceError
from sklearn import datasets, svm


class IrisModel(Model):  # type: ignore[misc]  # kserve ships no type hints
    """An iris classifier; ``fail_rate`` of requests fail, each after ``delay`` seconds."""

    def __init__(self, name: str, *, fail_rate: float = 0.0, delay: float = 0.0) -> None:
        super().__init__(name)
        self.fail_rate = fail_rate
        self.delay = delay
        self._classifier: svm.SVC | None = None

    def load(self) -> bool:
        iris = datasets.load_iris()
        classifier = svm.SVC(gamma="scale")
        classifier.fit(iris.data, iris.target)
        self._classifier = classifier
        self.ready = True
        return True

    # Async so a delay sleeps without holding the server's event loop.
    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.fail_rate > 0 and random.random() < self.fail_rate:
            raise InferenceError("injected failure (DISVC_IRIS_FAIL_RATE)")
        if self._classifier is None:
            raise InferenceError("model not loaded")
        if isinstance(payload, InferRequest):
            if not payload.inputs:
                raise InferenceError("the request has no inputs")
            classes = self._classifier.predict(payload.inputs[0].as_numpy())
            return _v2_response(payload, self.name, np.asarray(classes, dtype=np.int64))
        rows = payload.get("instances", payload.get("inputs", []))
        return {"predictions": self._classifier.predict(np.asarray(rows)).tolist()}


def _v2_response(request: InferRequest, model_name: str, classes: np.ndarray[Any, Any]) -> InferResponse:
    output = InferOutput(name="output-0", shape=list(classes.shape), datatype="INT64")
    output.set_data_from_numpy(classes, binary_data=request.use_binary_outputs)
    return InferResponse(
        response_id=request.id or str(uuid.uuid4()),
        model_name=model_name,
        infer_outputs=[output],
        use_binary_outputs=request.use_binary_outputs,
    )
