"""unscene3d: unsupervised 3D instance segmentation of indoor scans."""

__version__ = "0.1.0"
