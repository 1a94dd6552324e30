"""One-Step Diffusion Policy (OneDP): diffusion teacher over action chunks -> one-step generator."""
