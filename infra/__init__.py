"""Lambda Desk infrastructure: the CDK app, its stacks, constructs, config model and packaging.

Runtime code (``desk``, ``quant``, ``functions``) is referred to by path only, never imported.
"""
