"""Turns posters into genre probabilities, an era (decade, year, rating) and 100-dimensional feature vectors: a Keras
VGG-16 transfer model, how it is trained, evaluated, exported to ONNX (float32 and checked int8) and served with ONNX
Runtime, the poster detector, occlusion maps, and the feature index of a catalog."""
