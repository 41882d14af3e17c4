"""From a model and an image to probabilities, labels, regions to check and measurements, any size.
May use the model, never training."""
