"""Building and opening indexes: the atomic build store and the engines behind the engine seam."""
