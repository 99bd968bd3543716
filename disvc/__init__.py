"""disvc: a Kubernetes controller that scales a KServe InferenceService out
into N replica InferenceServices behind one stable endpoint."""

__version__ = "0.1.0"
