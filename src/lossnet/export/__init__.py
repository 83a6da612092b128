"""Export trained networks for use outside lossnet."""
