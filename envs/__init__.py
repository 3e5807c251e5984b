"""Benchmark task definitions, installed as ``hapo_rl.envs``.

Each module here defines one task family group: which Gymnasium ids belong to it, the alias
each family resolves to, how its observations are presented to the policy and how an
episode's success is read.
"""
