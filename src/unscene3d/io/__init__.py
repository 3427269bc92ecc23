"""Readers and writers: PLY meshes, ScanNet scene folders and exported frames, segments, atomic output."""
