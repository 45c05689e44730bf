"""The order-tasks function (handler: ``functions.order_tasks.handler.lambda_handler``)."""
