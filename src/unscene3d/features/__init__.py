"""Per-vertex and per-segment features: 3D backbone, back-projected 2D encoder, handcrafted."""

from unscene3d.features.features2d import (
    FeatureMap,
    ImageEncoder,
    backproject_features,
    encoder_vertex_features,
    load_encoder,
)
from unscene3d.features.handcrafted import handcrafted_segment_features
from unscene3d.features.pooling import pool_segment_features

__all__ = [
    "FeatureMap",
    "ImageEncoder",
    "backproject_features",
    "encoder_vertex_features",
    "handcrafted_segment_features",
    "load_encoder",
    "pool_segment_features",
]
