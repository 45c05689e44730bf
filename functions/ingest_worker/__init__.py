"""The ingest_worker function (handler: ``functions.ingest_worker.handler.lambda_handler``)."""
