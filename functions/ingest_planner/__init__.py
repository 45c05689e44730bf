"""The ingest_planner function (handler: ``functions.ingest_planner.handler.lambda_handler``)."""
