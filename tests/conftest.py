from hapo_rl.common.runtime import tune_process

# Small networks on a 2-core machine: the same process settings as a training run.
tune_process()
