"""Training: self-supervised contrastive pretraining of the sparse backbone, checkpoints, resume, DDP."""
