"""The kill-switch function (handler: ``functions.kill_switch.handler.lambda_handler``)."""
