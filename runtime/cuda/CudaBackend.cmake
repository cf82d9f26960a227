# PENDING: the CUDA backend's sources are added here.
