"""Nearest-neighbour indexes over cover embeddings and the index folder that holds them."""
