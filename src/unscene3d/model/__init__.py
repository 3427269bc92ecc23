"""Neural networks: the sparse-voxel Res16UNet backbone and its spconv backend."""
