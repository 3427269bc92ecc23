"""Learning-free baselines of the paper's Table 1: mesh segments and HDBSCAN clusters as instances."""

from unscene3d.baselines.felzenszwalb import felzenszwalb_instances
from unscene3d.baselines.hdbscan import hdbscan_instances

__all__ = ["felzenszwalb_instances", "hdbscan_instances"]
