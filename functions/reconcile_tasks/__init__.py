"""The reconcile_tasks function (handler: ``functions.reconcile_tasks.handler.handler``)."""
