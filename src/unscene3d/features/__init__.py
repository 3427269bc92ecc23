"""Per-vertex and per-segment features: 3D backbone, back-projected 2D encoder, handcrafted."""
