"""The running controller: informers, workqueue, workers, leader election,
metrics and health around the pure builders (``disvc.builders``)."""
