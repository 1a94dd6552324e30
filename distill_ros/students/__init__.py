"""Student networks. A new architecture is one module plus one line in `ARCHITECTURES`."""

ARCHITECTURES = ("mlp", "transformer")
