import torch

# Small networks on a 2-core machine: one intra-op thread avoids oversubscription.
torch.set_num_threads(1)
