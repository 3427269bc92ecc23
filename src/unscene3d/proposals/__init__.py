"""A learned model of objects: candidate masks from several partitions of a scan's segments, ranked by a small
network trained on generated scenes (no human labels), so that whole objects come first."""

from unscene3d.proposals.candidates import Candidates, ProposalConfig, propose
from unscene3d.proposals.features import FEATURE_NAMES, candidate_features
from unscene3d.proposals.ranker import (
    SHIPPED_RANKER,
    RankedScan,
    Ranker,
    RankerConfig,
    SelectionConfig,
    load_ranker,
    rank_candidates,
    select_candidates,
)

__all__ = [
    "FEATURE_NAMES",
    "SHIPPED_RANKER",
    "Candidates",
    "ProposalConfig",
    "RankedScan",
    "Ranker",
    "RankerConfig",
    "SelectionConfig",
    "candidate_features",
    "load_ranker",
    "propose",
    "rank_candidates",
    "select_candidates",
]
