"""Lambda entry points: one package per function (see topology.json)."""
