"""Turns posters into genre probabilities and 100-dimensional feature vectors: a Keras VGG-16
transfer model, how it is trained, saved and loaded, and the feature index of a catalog."""
