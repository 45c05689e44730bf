"""Thin boto3 helpers: one cached client factory, the event bus, queues and Step Functions executions."""
