"""The methods of tinygradattn.Tensor beyond its core, one themed mixin per module (math,
reductions, sorting, shape, indexing, inplace); tensor.py's Tensor inherits them all.
Package-private: use them through Tensor. They sit below tensor.py and never import it.
"""
