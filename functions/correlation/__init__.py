"""The correlation function (handler: ``functions.correlation.handler.lambda_handler``)."""
