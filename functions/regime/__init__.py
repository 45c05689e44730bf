"""The regime function (handler: ``functions.regime.handler.lambda_handler``)."""
